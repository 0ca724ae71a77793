"""Spectra shared by the parts of a receptor city: one padded lattice, many kernels.

With seasonal met, emission-height classes and urban node kernels a receptor city needs, per
(season, height class, kernel group), one adjoint correlation (its row of S,
:mod:`engine.dispersion.srmatrix`) and one forward convolution (its fields) on each of its two
lattices. Every one of them is the zero-padded linear convolution of
:func:`engine.dispersion.srmatrix.same_convolution_batch` read on the lattice's receptor cells: the
kernel cut to the half width the receptor-source offsets need and both factors padded to a
2-3-5-smooth shape (:func:`fast_length`) no smaller than the overlap-save bound of
:func:`window_padding`, so that whatever wraps around lands on cells that are never read (the fine
lattice: ``2n - 1`` per axis instead of the ``n + 2h = 3n - 2`` of the whole linear convolution; the
coarse lattice, read on the city's block only: about ``n + b``). By the
convolution theorem (DFT of a linear convolution padded beyond its support, Oppenheim & Schafer
2010, *Discrete-Time Signal Processing*, 3rd ed., section 8.7) the work per part then reduces to
products of spectra that are each computed once:

* the receptor weights' spectrum ``W`` -- once per city and lattice (:class:`LatticeSpectra`);
* each kernel's spectrum ``K`` -- once per kernel and padded shape, kept across cities
  (:data:`KERNEL_SPECTRA`; the same kernel serves every city of that met);
* a source raster's spectrum ``M_j`` -- once per city, used where a kernel group holds few
  sources (:data:`FEW_SOURCES`); a group with more sources transforms its emission stack instead.

The adjoint map of a kernel is the correlation ``G = K \\star w``; for a real kernel the DFT of the
correlation is ``conj(K) W`` (correlation theorem), so ``G`` is one inverse transform, read at the
offsets ``j - h`` (mod ``P``) of the receptor cells (:meth:`LatticeSpectra.adjoint_maps`). The
forward fields are linear in the parts, so the spectra ``K_p E_p`` of all parts are summed before
a single inverse transform per lattice (:class:`FieldSum`) instead of one per part.

Where a kernel has zero cells, the former direct/FFT convolution (``kernels.convolve.convolve``)
set every output cell that no non-zero kernel cell reaches to exactly 0; the adjoint maps do
the same with the spectra of the 0/1 masks (integer counts survive round-off). Negative
round-off of non-negative products is clipped to 0 as there.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import scipy.fft as sfft

from kernels import spectral as ks

__all__ = ["fast_length", "fft_shape", "half_width", "window_padding", "KernelSpectra", "KERNEL_SPECTRA", "LatticeSpectra",
           "FieldSum", "FEW_SOURCES", "rfft2_window", "irfft2_rows", "spectral_row", "add_part_fields"]

#: a kernel group with at most this many sources on a lattice builds its emission spectrum from the
#: sources' spectra (a (n_field, n_source) x (n_source, F) product) instead of transforming its
#: n_field emission grids (three Hebei cities, sector + auto: 2.04 CPU s with 4, 2.37 s with every group
#: by the product)
FEW_SOURCES = 4


def fast_length(n):
    """Smallest 2-3-5-smooth integer >= n (fast FFT sizes)."""
    best = None
    p2 = 1
    while p2 < 2 * n:
        p3 = p2
        while p3 < 2 * n:
            p5 = p3
            while p5 < n:
                p5 *= 5
            best = p5 if best is None or p5 < best else best
            p3 *= 3
        p2 *= 2
    return best


def half_width(shape, kernel):
    """Half width ``h`` of the kernel a grid of ``shape`` uses: min(max(ny, nx) - 1, kernel's)."""
    return min(max(shape) - 1, kernel.shape[0] // 2)


def fft_shape(shape, h):
    """Padded transform shape of a grid with a kernel of half width ``h``: no wrap-around."""
    return fast_length(shape[0] + 2 * h), fast_length(shape[1] + 2 * h)


def rfft2_window(grids, a, b, fshape):
    """``numpy.fft.rfft2`` of grids (..., my, mx) placed at cell (a, b) of a zero (P_y, P_x) lattice.

    The same transform as padding and ``rfft2(x, s=fshape)`` (a real transform along x, then a
    complex one along y), but the x transforms run over the ``my`` rows that hold data only: the
    transforms of the zero rows are zero. Computed with :mod:`scipy.fft`: the same pocketfft
    algorithm as NumPy's (the same bits, checked on Hebei's rows and fields), but its transforms
    along y run several columns at once, where NumPy copies column by column (a stack of ten
    800 x 810 grids: 54 ms against 205 ms).
    """
    py, px = fshape
    my, mx = grids.shape[-2:]
    strip = np.zeros(grids.shape[:-2] + (my, px))
    strip[..., :, b:b + mx] = grids
    full = np.zeros(grids.shape[:-2] + (py, px // 2 + 1), dtype=complex)
    full[..., a:a + my, :] = sfft.rfft(strip, axis=-1)
    return sfft.fft(full, axis=-2, overwrite_x=True)


def irfft2_rows(spec, fshape, rows):
    """Rows ``rows`` of ``numpy.fft.irfft2(spec, s=fshape)``: the inverse along y over every column,
    then the real inverse along x over the wanted rows only (:mod:`scipy.fft`, as :func:`rfft2_window`;
    ``spec`` is left unchanged)."""
    return sfft.irfft(sfft.ifft(spec, axis=-2)[..., rows, :], n=fshape[1], axis=-1, overwrite_x=True)


class KernelSpectra:
    """Least-recently-used store of kernel spectra, ``(kernel, h, shape) -> (K, K_support or None)``.

    Keyed by the kernel array's identity (the entry holds the array, so its id cannot be reused
    while cached), the half width ``h`` and the padded shape; the kernel is cut to ``h`` (framed by
    zeros when narrower); ``K_support`` is the spectrum of its non-zero mask, None when every cell
    is non-zero. Kernels whose cut has the same non-zero mask share one ``K_support`` array (the
    parts of a city often do: 118 distinct masks among 529 kernels with zero cells in four
    provinces), so that :meth:`LatticeSpectra.adjoint_maps` finds their zero cells once.
    Thread-safe (Dask threads share it).
    """

    #: support spectra kept for sharing, by (packed mask, h, shape): most recent last
    MAX_SUPPORTS = 64

    def __init__(self, max_bytes=256 * 2**20):
        self.max_bytes = int(max_bytes)
        self._entries = OrderedDict()
        self._supports = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _support(self, nz, h, shape):
        """The spectrum of the 0/1 mask ``nz`` on ``shape``: one array per distinct mask (compared by
        its packed bits, byte for byte)."""
        bits = np.packbits(nz).tobytes()
        key = (hashlib.blake2b(bits, digest_size=16).digest(), int(h), tuple(shape))
        with self._lock:
            hit = self._supports.get(key)
            if hit is not None and hit[0] == bits:
                self._supports.move_to_end(key)
                return hit[1]
        sup = rfft2_window(nz.astype(np.float64), 0, 0, shape)
        with self._lock:
            self._supports[key] = (bits, sup)
            while len(self._supports) > self.MAX_SUPPORTS:
                self._supports.popitem(last=False)
        return sup

    def get(self, kernel, h, shape):
        key = (id(kernel), int(h), tuple(shape))
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] is kernel:
                self._entries.move_to_end(key)
                self.hits += 1
                return hit[1], hit[2]
        n = kernel.shape[0] // 2
        if n >= h:
            k = kernel[n - h:n + h + 1, n - h:n + h + 1]
        else:  # a narrower kernel: zero beyond its half width, as its own linear convolution
            k = np.zeros((2 * h + 1, 2 * h + 1))
            k[h - n:h + n + 1, h - n:h + n + 1] = kernel
        spec = rfft2_window(k, 0, 0, shape)
        nz = k != 0
        sup = None if nz.all() else self._support(nz, h, shape)
        size = spec.nbytes + (sup.nbytes if sup is not None else 0)
        with self._lock:
            self.misses += 1
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[3]
            self._entries[key] = (kernel, spec, sup, size)
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, ev = self._entries.popitem(last=False)
                self._bytes -= ev[3]
        return spec, sup

    def stats(self):
        """Counts: ``hits``, ``misses``, ``entries``, ``masked`` (kernels with zero cells), ``bytes``."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "entries": len(self._entries),
                    "masked": sum(e[2] is not None for e in self._entries.values()), "bytes": self._bytes}

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._supports.clear()
            self._bytes = 0


#: the process's kernel spectra (each worker process has its own)
KERNEL_SPECTRA = KernelSpectra()


def window_padding(n, a, b, h):
    """Kernel half width and padded length of one axis of a lattice of ``n`` cells whose receptors
    are the cells ``[a, a + b)`` (all sources anywhere in ``[0, n)``).

    Receptor-source offsets ``j - i`` lie in ``[a - n + 1, a + b - 1]``, so the kernel is needed to
    ``h_need = max(n - 1 - a, a + b - 1)`` (at most ``h``). A circular convolution (or correlation)
    of length ``P`` adds to a receptor the kernel at ``j - i +- P``; none of those lies within
    ``[-h, h]`` when ``P >= h + max(n - a, a + b)`` -- the "overlap-save" bound (Oppenheim & Schafer
    2010, section 8.7.3): a receptor window needs no padding beyond what wraps onto cells that are
    never read. For the whole lattice (a = 0, b = n, h = n - 1) that is ``2n - 1`` instead of the
    ``n + 2h = 3n - 2`` of a full linear convolution; for a city's block in the middle of its
    province's coarse lattice about ``n + b``.

    Returns
    -------
    h_need : int; P_min : int
    """
    h_need = min(int(h), max(n - 1 - a, a + b - 1, 0))
    return h_need, h_need + max(n - a, a + b)


class LatticeSpectra:
    """One lattice of a receptor city: its padded shape, receptor-weight and source spectra.

    Parameters
    ----------
    shape : (ny, nx)
        The lattice's cells.
    h : int
        Kernel half width (:func:`half_width`; the same for every kernel of the city, each being
        at least as wide as the city's lattice needs).
    weights : (ny, nx) ndarray
        Receptor weights of the adjoint (normalised exposure weights, or their restriction to
        the coarse lattice); zero outside ``window``.
    window : (a_y, b_y, a_x, b_x) or None
        The receptor cells ``[a_y, a_y + b_y) x [a_x, a_x + b_x)``: the only cells whose fields are
        read (:meth:`FieldSum.fields`) and where ``weights`` may be non-zero; None: the whole
        lattice. The kernel is cut to the offsets between these cells and the lattice
        (:func:`window_padding`) and the transforms are padded only as far as that needs.
    """

    def __init__(self, shape, h, weights, window=None):
        self.shape = tuple(shape)
        ny, nx = self.shape
        self.window = (0, ny, 0, nx) if window is None else tuple(int(v) for v in window)
        ay, by, ax, bx = self.window
        if not (0 <= ay and ay + by <= ny and 0 <= ax and ax + bx <= nx and by > 0 and bx > 0):
            raise ValueError(f"receptor window {self.window} outside the lattice {self.shape}")
        w = np.asarray(weights)
        outside = np.ones(self.shape, dtype=bool)
        outside[ay:ay + by, ax:ax + bx] = False
        if (w[outside] != 0).any():
            raise ValueError("receptor weights outside the receptor window")
        hy, py = window_padding(ny, ay, by, h)
        hx, px = window_padding(nx, ax, bx, h)
        self.h = max(hy, hx)  # one square cut of the kernel serves both axes
        # the bound for the common cut h, and room for the (2h + 1)-wide kernel itself
        self.fshape = (fast_length(max(py, self.h + max(ny - ay, ay + by), 2 * self.h + 1)),
                       fast_length(max(px, self.h + max(nx - ax, ax + bx), 2 * self.h + 1)))
        # then the widest cut the padded shape allows: h' <= (P_min - 1) // 2 (room for the cut) and
        # h' <= P - M on each axis (M = max(n - a, a + b): no wrap-around reaches a read cell); the
        # cells it adds lie at offsets no receptor-source pair has. Where the kernel is cut at the
        # lattice's need (M <= h + 1, so P >= 2M - 1 on both axes) that is (P_min - 1) // 2, a
        # function of the padded shape alone: lattices that pad alike (a province's cities, at one
        # met) then share their kernels' spectra (KERNEL_SPECTRA)
        self.h = max(self.h, min((min(self.fshape) - 1) // 2, self.fshape[0] - max(ny - ay, ay + by),
                                 self.fshape[1] - max(nx - ax, ax + bx)))
        self.w_spec = rfft2_window(w, 0, 0, self.fshape)
        self._w_support = w != 0
        self._w_support_spec = None
        self._zero_cells = {}
        self._sources = {}
        # receptor cell j of the correlation sits at index j - h (mod P) of the inverse transform
        self._rows = np.arange(-self.h, self.shape[0] - self.h) % self.fshape[0]
        self._cols = np.arange(-self.h, self.shape[1] - self.h) % self.fshape[1]

    def kernel(self, kernel, cache=KERNEL_SPECTRA):
        """``(K, K_support)`` of ``kernel`` on this lattice's padded shape (a kernel narrower than the
        lattice's half width is framed by zeros: the same linear convolution)."""
        return cache.get(kernel, self.h, self.fshape)

    def adjoint_maps(self, kernels, cache=KERNEL_SPECTRA):
        """Sensitivity maps ``K \\star w`` on the lattice's cells, one per kernel, (n, ny, nx).

        Uses the correlation theorem: DFT(K \\star w) = conj(K) W for real ``K`` (module docstring).
        """
        specs = [self.kernel(k, cache) for k in kernels]
        # conj(K) W of every kernel, written in place (the same operations as np.conj(K) * W, without
        # one temporary per kernel and the copy of a stack)
        prod = np.empty((len(specs),) + self.w_spec.shape, dtype=complex)
        for i, (s, _) in enumerate(specs):
            np.conjugate(s, out=prod[i])
            prod[i] *= self.w_spec
        maps = irfft2_rows(prod, self.fshape, self._rows)[:, :, self._cols]
        for i, (_, sup) in enumerate(specs):
            if sup is not None:  # cells no non-zero kernel cell reaches are exactly 0
                maps[i][self._unreached(sup)] = 0.0
        return np.maximum(maps, 0.0, out=maps)

    def _unreached(self, sup):
        """The lattice cells no non-zero cell of a kernel with support spectrum ``sup`` reaches from the
        receptors (the count of the masks' correlation < 1/2), memoised per support array (kernels
        with one mask share it: :class:`KernelSpectra`)."""
        hit = self._zero_cells.get(id(sup))
        if hit is not None and hit[0] is sup:
            return hit[1]
        if self._w_support_spec is None:
            self._w_support_spec = rfft2_window(self._w_support.astype(np.float64), 0, 0, self.fshape)
        cnt = irfft2_rows(np.conj(sup) * self._w_support_spec, self.fshape, self._rows)[:, self._cols]
        self._zero_cells[id(sup)] = (sup, cnt < 0.5)  # the entry holds sup: its id is not reused meanwhile
        return cnt < 0.5

    def source(self, j, raster):
        """Spectrum of source ``j``'s raster window ``(a, b, m)`` placed on the lattice (memoised)."""
        spec = self._sources.get(j)
        if spec is None:
            a, b, m = raster
            spec = self._sources[j] = rfft2_window(m, a, b, self.fshape)
        return spec

    def emission_spectrum(self, coef, members):
        """Spectrum of the emission grids ``E[f] = sum_j coef[f, j] m_j`` (n_field, P_y, P_x // 2 + 1).

        ``members``: per column of ``coef``, ``(j, raster)`` with ``raster`` the window
        ``(a, b, m)``. Few sources: the product of ``coef`` with their spectra (memoised per
        city); more: the grids are summed in space and transformed (linearity of the DFT).
        """
        if len(members) <= FEW_SOURCES:
            # a real matrix product on the spectra's (re, im) pairs: coef is real
            spec = np.stack([self.source(j, r) for j, r in members])
            flat = coef @ spec.view(np.float64).reshape(len(members), -1)
            return flat.view(complex).reshape((coef.shape[0],) + spec.shape[1:])
        grids = np.zeros((coef.shape[0],) + self.shape)
        for c, (_, (a, b, m)) in zip(coef.T, members):
            grids[:, a:a + m.shape[0], b:b + m.shape[1]] += c[:, None, None] * m[None]
        return rfft2_window(grids, 0, 0, self.fshape)


class FieldSum:
    """Sum over parts of forward convolutions on one lattice, ``sum_p K_p * E_p``, in spectral space.

    :meth:`add` accumulates ``K_p E_p``; :meth:`fields` inverts once and returns the (n_field, ny,
    nx) fields, negative round-off clipped to 0 (kernels and emissions are non-negative).
    """

    def __init__(self, lattice, n_field):
        self.lattice = lattice
        self.total = np.zeros((n_field, lattice.fshape[0], lattice.fshape[1] // 2 + 1), dtype=complex)
        self.empty = True

    def add(self, kernel, emission_spectrum, rows=None, cache=KERNEL_SPECTRA):
        """Add ``K E`` of ``kernel``; ``rows``: the fields ``emission_spectrum`` holds (default all),
        summed in place (:func:`kernels.spectral.add_products`)."""
        spec, _ = self.lattice.kernel(kernel, cache)
        rows = np.arange(self.total.shape[0]) if rows is None else rows
        ks.add_products(self.total, np.ascontiguousarray(rows, dtype=np.int64), spec,
                        np.ascontiguousarray(emission_spectrum))
        self.empty = False

    def add_sources(self, kernel, coef, members, rows, cache=KERNEL_SPECTRA):
        """Add ``K E`` for the emission ``E[f] = sum_j coef[f, j] m_j`` of ``members`` (as
        :meth:`LatticeSpectra.emission_spectrum`) to the fields ``rows`` (int array), each product
        summed in place in one pass (:mod:`kernels.spectral`): few sources combined from their
        spectra, more transformed from their summed grids."""
        coef = np.ascontiguousarray(coef, dtype=np.float64)
        if len(members) > FEW_SOURCES:
            self.add(kernel, self.lattice.emission_spectrum(coef, members), rows, cache)
            return
        spec, _ = self.lattice.kernel(kernel, cache)
        src = np.stack([self.lattice.source(j, r) for j, r in members])
        ks.add_combined_products(self.total, np.ascontiguousarray(rows, dtype=np.int64), spec, coef, src)
        self.empty = False

    def fields(self):
        """The (n_field, b_y, b_x) fields on the lattice's receptor window (the whole lattice without one)."""
        lat = self.lattice
        h = lat.h
        ay, by, ax, bx = lat.window
        # the linear convolution's cell j sits at index j + h (mod P: only cells that are never read wrap)
        full = irfft2_rows(self.total, lat.fshape, (np.arange(ay, ay + by) + h) % lat.fshape[0])
        return np.maximum(full[:, :, (np.arange(ax, ax + bx) + h) % lat.fshape[1]], 0.0)


def spectral_row(groups, rasters, lat_f, lat_c, n_src):
    """A part's row of S (n_src,), as the adjoint of :mod:`engine.dispersion.srmatrix`: per kernel pair
    its sensitivity maps on both lattices (:meth:`LatticeSpectra.adjoint_maps`, one batched inverse
    transform per lattice for all pairs), then one inner product with each member source's rasters,
    times the source's weight for that pair.

    Parameters
    ----------
    groups : dict {id: (kernel_fine, kernel_coarse, [(source index, weight)])}
    rasters : list of (fine window or None, coarse window or None), windows ``(a, b, m)``
    lat_f, lat_c : LatticeSpectra   the city's fine and coarse lattices
    n_src : int
    """
    glist = list(groups.values())
    g_fine = lat_f.adjoint_maps([kf for kf, _, _ in glist])
    need_c = [i for i, (_, _, members) in enumerate(glist) if any(rasters[k][1] is not None for k, _ in members)]
    g_coarse = dict(zip(need_c, lat_c.adjoint_maps([glist[i][1] for i in need_c]))) if need_c else {}
    row = np.zeros(n_src)
    for i, (_, _, members) in enumerate(glist):
        for k, w in members:
            rf, rc = rasters[k]
            v = 0.0
            if rf is not None:
                a, b, m = rf
                v += float(np.sum(g_fine[i, a:a + m.shape[0], b:b + m.shape[1]] * m))
            if rc is not None:
                a, b, m = rc
                v += float(np.sum(g_coarse[i][a:a + m.shape[0], b:b + m.shape[1]] * m))
            row[k] += v if w == 1.0 else w * v
    return row


def add_part_fields(sum_f, sum_c, groups, rasters, q, unit_weight, k_city, k_rop):
    """Add one part's forward fields, per kernel pair, to the spectral sums: the scenario grids
    (``q`` (n_scenario, n_src)), then the own city and the own ROP at unit intensity times
    ``unit_weight`` (as :func:`engine.dispersion.srmatrix._forward_fields`)."""
    ns = q.shape[0]
    for kf, kc, members in groups.values():
        for lattice, kernel, acc in ((0, kf, sum_f), (1, kc, sum_c)):
            mem = [(k, w) for k, w in members if rasters[k][lattice] is not None]
            if not mem:
                continue
            coef = np.zeros((ns + 2, len(mem)))
            for j, (k, w) in enumerate(mem):
                coef[:ns, j] = q[:, k] if w == 1.0 else w * q[:, k]
                if k == k_city and lattice == 0:
                    coef[ns, j] = w * unit_weight[0]
                if k == k_rop:
                    coef[ns + 1, j] = w * unit_weight[1]
            rows = np.flatnonzero(coef.any(axis=1))  # fields this pair adds to (e.g. no unit city on the coarse lattice)
            if rows.size:
                acc.add_sources(kernel, coef[rows], [(k, rasters[k][lattice]) for k, _ in mem], rows)
