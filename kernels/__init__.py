"""Pure numba kernels: SI float arrays in, preallocated ``out`` arrays written. No I/O,
no pandas or xarray, no validation (that lives in ``engine``)."""

#: the restricted fastmath flag set used by every kernel (never the blanket True setting:
#: it breaks NaN handling). See docs/design.md, rule 11.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
