"""Products of spectra summed in place: the forward fields of the receptor pass in spectral space.

``engine.dispersion.spectra.FieldSum`` adds, for each part and kernel pair, ``K * E[f]`` to the
running spectrum of field ``rows[f]``, with the emission spectrum ``E`` either transformed from
the emission grids or combined from the member sources' spectra, ``E[f] = sum_j coef[f, j] S[j]``
(the DFT is linear). NumPy does that in three passes over memory with two temporaries (the
combination, the product, the gathered sum); these loops do it in one pass per frequency, without
the GIL. Serial on purpose: the city tasks are the parallel layer (forked workers may not start
numba parallel regions under GNU OpenMP).
"""

from numba import njit

from kernels import FASTMATH

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


@njit(**_JIT)
def add_products(total, rows, kernel, emission):
    """``total[rows[f]] += kernel * emission[f]`` for every f: total (n, P, Q), rows (m,) int,
    kernel (P, Q), emission (m, P, Q), all complex."""
    for f in range(rows.shape[0]):
        r = rows[f]
        for a in range(kernel.shape[0]):
            for b in range(kernel.shape[1]):
                total[r, a, b] += kernel[a, b] * emission[f, a, b]


@njit(**_JIT)
def add_combined_products(total, rows, kernel, coef, sources):
    """``total[rows[f]] += kernel * sum_j coef[f, j] sources[j]`` for every f: coef (m, s) real,
    sources (s, P, Q) complex, the rest as :func:`add_products`."""
    nf = rows.shape[0]
    ns = coef.shape[1]
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            k = kernel[a, b]
            for f in range(nf):
                e = 0j
                for j in range(ns):
                    e += coef[f, j] * sources[j, a, b]
                total[rows[f], a, b] += k * e
