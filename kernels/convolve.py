"""Zero-padded linear convolution of a transfer kernel with an emission grid.

Layout convention (shared with :func:`engine.dispersion.area.period_kernel`):

* ``kernel`` has shape ``(2*ny_half+1, 2*nx_half+1)``; ``kernel[iy, ix]`` is the concentration at
  a receptor offset ``((ix - nx_half) * d, (iy - ny_half) * d)`` from the centre of one cell
  (``d`` = receptor-lattice spacing).
* ``emission`` has shape ``(my, mx)``; cell ``(j, i)`` is centred on receptor-lattice point
  ``(j * stride, i * stride)`` (so ``cell size = stride * d`` for adjacent cells).
* the result has shape ``((my-1)*stride + 2*ny_half + 1, (mx-1)*stride + 2*nx_half + 1)``;
  ``out[oy, ox]`` is the receptor at lattice point ``(oy - ny_half, ox - nx_half)`` in the same
  index frame as the cells, i.e. ``out = sum_{j,i} emission[j, i] * kernel[oy - j*stride, ox - i*stride]``
  (terms with kernel indices outside the kernel are zero: a *linear*, not circular, convolution).

Two evaluation methods, same result: a direct gather sum (exact to round-off, ``prange`` over
output rows, float64 accumulation) and an FFT product with zero padding to a 2-3-5-smooth
size (``numpy.fft``). Outside the support (no kernel non-zero overlapping any emitting cell)
the FFT result is set to exactly 0 -- the support itself is found by convolving the two
0/1 masks, whose integer counts survive FFT round-off -- and negative round-off is clipped to 0.
"""

import numpy as np
from numba import njit, prange

from kernels import FASTMATH

__all__ = ["convolve_direct", "convolve_fft", "convolve", "output_shape"]


def output_shape(kernel_shape, emission_shape, stride=1):
    """Shape of the full linear convolution (see module docstring)."""
    ky, kx = kernel_shape
    my, mx = emission_shape
    return ((my - 1) * stride + ky, (mx - 1) * stride + kx)


@njit(parallel=True, nogil=True, cache=True, fastmath=FASTMATH)
def _direct(kernel, src_j, src_i, src_q, stride, out):
    ny, nx = out.shape
    ky, kx = kernel.shape
    ns = src_q.shape[0]
    for oy in prange(ny):
        for ox in range(nx):
            acc = 0.0
            for s in range(ns):
                iy = oy - src_j[s] * stride
                ix = ox - src_i[s] * stride
                if 0 <= iy < ky and 0 <= ix < kx:
                    acc += src_q[s] * kernel[iy, ix]
            out[oy, ox] = acc


def convolve_direct(kernel, emission, *, stride=1):
    """Direct-sum linear convolution (reference-exact; cost ~ n_out * n_nonzero_cells)."""
    kernel = np.ascontiguousarray(kernel, dtype=np.float64)
    emission = np.asarray(emission, dtype=np.float64)
    j, i = np.nonzero(emission)
    out = np.zeros(output_shape(kernel.shape, emission.shape, stride))
    if j.size:
        _direct(kernel, j.astype(np.int64), i.astype(np.int64), emission[j, i].copy(), int(stride), out)
    return out


def _smooth_size(n):
    """Smallest m >= n whose prime factors are 2, 3 and 5 (fast FFT length)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _upsample(emission, stride):
    my, mx = emission.shape
    dense = np.zeros(((my - 1) * stride + 1, (mx - 1) * stride + 1))
    dense[::stride, ::stride] = emission
    return dense


def convolve_fft(kernel, emission, *, stride=1):
    """FFT linear convolution with zero padding (no wrap-around); exact zeros off support."""
    kernel = np.asarray(kernel, dtype=np.float64)
    dense = _upsample(np.asarray(emission, dtype=np.float64), int(stride))
    shape = output_shape(kernel.shape, emission.shape, stride)
    fshape = (_smooth_size(shape[0]), _smooth_size(shape[1]))
    fk = np.fft.rfft2(kernel, fshape)
    out = np.fft.irfft2(fk * np.fft.rfft2(dense, fshape), fshape)[: shape[0], : shape[1]]
    # support: count of (kernel != 0, emission != 0) overlaps; integers survive round-off
    sk = np.fft.rfft2((kernel != 0).astype(np.float64), fshape)
    cnt = np.fft.irfft2(sk * np.fft.rfft2((dense != 0).astype(np.float64), fshape), fshape)
    cnt = cnt[: shape[0], : shape[1]]
    out[cnt < 0.5] = 0.0
    if (kernel >= 0).all() and (dense >= 0).all():
        np.maximum(out, 0.0, out=out)  # non-negative inputs: negatives are round-off
    return np.ascontiguousarray(out)


def convolve(kernel, emission, *, stride=1, method="auto"):
    """Full linear convolution of ``kernel`` with ``emission`` (see module docstring).

    ``method``: ``"direct"`` (gather sum), ``"fft"``, or ``"auto"`` (direct when
    n_out * n_nonzero_cells <= 2e7, else FFT).
    """
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    if stride < 1 or int(stride) != stride:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    emission = np.asarray(emission, dtype=np.float64)
    if method == "auto":
        shape = output_shape(np.shape(kernel), emission.shape, stride)
        cost = shape[0] * shape[1] * max(1, int(np.count_nonzero(emission)))
        method = "direct" if cost <= 2e7 else "fft"
    if method == "direct":
        return convolve_direct(kernel, emission, stride=int(stride))
    return convolve_fft(kernel, emission, stride=int(stride))

