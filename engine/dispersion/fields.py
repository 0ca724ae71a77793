"""Transfer kernels, their cache, and the per-city unit fields F_city and F_rop.

The national run computes its source-receptor matrix and fields in :mod:`engine.dispersion.srmatrix`
(every city and rest of province as a source) on these kernels and lattices; the two-source
fields below are the ``source_set = "own"`` special case, kept as its reference.

For flat terrain and spatially uniform met, the period-mean concentration at receptor r from
an area-source raster S (emitting fraction per cell, 1 g m-2 s-1 over the emitting part) is a
discrete convolution with the period-average transfer kernel K (``engine.dispersion.area.period_kernel``):

.. math:: F(r) = \\sum_c S(c)\\, K(r - c)

The kernel depends only on the met climatology, the cell size and the lattice spacing, so it is
computed once per (met, resolution) and reused by every city (:func:`kernel_plan`).

Two-level source raster per city (see :mod:`engine.dispersion.geometry`):

* **fine** (spacing h, default 1 km) over the city grid: the city footprint and the part of the
  ROP inside the grid. ``F_city = K_h * S_city``; ``F_rop,near = K_h * S_rop,near``.
* **coarse** (spacing H = f h, default 5 km) over the whole province: the ROP outside the city
  grid. ``F_rop,far = K_H * S_rop,far`` is evaluated on the coarse lattice and bilinearly
  interpolated to the fine receptors. The nearest coarse source is ``city_margin_m`` (default
  10 km) from any city receptor, where the far field is smooth on the scale H.

``F_rop = F_rop,near + F_rop,far``. A scenario's field is ``q_city F_city + q_rop F_rop`` with q
in g m-2 s-1 (linearity; no field is recomputed for a new scenario, emission or health setting).

Exposure: the mean over the city footprint weighted by footprint fraction x (population
density, if a population grid is given, else 1). A receptor's footprint fraction includes the
cell's true area, so the weight is the number of people living in its part of the city (the
density of the population-grid cell the receptor's centre falls in x that area): the
population-weighted mean. Receptors outside the grid or on missing cells count as unpopulated;
a city with no population at all falls back to the area mean. :attr:`CityField.exposure` says
which one was used (``population_weighted``, ``area_mean`` or ``area_mean_no_population``).

Units: F fields are ug m-3 per (g m-2 s-1); q in g m-2 s-1; concentrations ug m-3.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.constants import URBAN_ROUGHNESS_M
from engine.dispersion import geometry as geo
from engine.dispersion import urban as _urban
from engine.dispersion.urban import URBAN_ROUGHNESS_M
from engine.output.persist import load_verified_npz, save_verified_npz

__all__ = [
    "FIELD_ALGORITHM_VERSION",
    "CityField",
    "KernelSpec",
    "MosaicSpec",
    "cache_dir",
    "code_fingerprint",
    "kernel_plan",
    "compute_kernel",
    "compute_kernels",
    "compute_city_field",
    "exposure_weights",
    "same_convolution",
    "URBAN_ROUGHNESS_M",
    "urban_node_weights",
]

FIELD_ALGORITHM_VERSION = "fields-v1"
_CODE_FILES = ("engine/dispersion/fields.py", "engine/dispersion/geometry.py", "engine/dispersion/sphere.py",
               "engine/dispersion/population.py", "engine/dispersion/area.py", "engine/dispersion/met.py",
               "engine/dispersion/plumerise.py", "engine/dispersion/urban.py", "engine/dispersion/symmetry.py",
               "engine/dispersion/footprints.py",
               *(f"engine/dispersion/climatology/{m}.py" for m in ("__init__", "regions", "golder", "star", "classes",
                                                                   "checks", "tables", "aermet", "files", "shares",
                                                                   "spec")),
               # the compiled kernels a field depends on: kernels.plume and every kernels module it
               # imports, the convolution, the rasters (rows) and the spectral products (tests check
               # that each kernels module these import, at any depth, is named here)
               *(f"kernels/{m}.py" for m in ("__init__", "constants", "plume", "profiles", "similarity", "sigmas",
                                             "xtable", "edges", "areain", "quadrature", "hour_setup",
                                             "convolve", "coverage", "spectral")))


# --------------------------------------------------------------------------- cache
def cache_dir(kind=None):
    """The cache folder: ``$COBENEFITS_CACHE_DIR``, else the platform's user cache dir."""
    env = os.environ.get("COBENEFITS_CACHE_DIR")
    if env:
        root = Path(env)
    elif sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "cobenefits" / "Cache"
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "cobenefits"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cobenefits"
    path = root / kind if kind else root
    path.mkdir(parents=True, exist_ok=True)
    return path


_FINGERPRINT = None


def code_fingerprint():
    """Hash of the source files that determine a field (a code change invalidates the cache)."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        root = Path(__file__).resolve().parents[2]
        h = hashlib.sha256(FIELD_ALGORITHM_VERSION.encode())
        for rel in _CODE_FILES:
            p = root / rel
            h.update(rel.encode())
            h.update(p.read_bytes() if p.exists() else b"<absent>")
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


def _atomic_save_npz(path, **arrays):
    """Cache entry ``path`` (.npz) written atomically with its SHA-256 sidecar (engine.output.persist)."""
    save_verified_npz(path, **arrays)


# --------------------------------------------------------------------------- kernels
def urban_node_weights(population):
    """Node populations and weights of a city's urban kernel (:func:`engine.dispersion.urban.urban_node_weights`)."""
    return _urban.urban_node_weights(population)


@dataclass(frozen=True)
class KernelSpec:
    """One transfer kernel: met identity, lattice spacing = cell size [m], half width [cells].

    ``urban_population`` > 0 [persons]: AERMOD's urban boundary layer for a city of that
    population (a node population, :func:`urban_node_weights`) with roughness
    :data:`URBAN_ROUGHNESS_M`; 0: rural (the key is then the same as before urban existed).
    """

    met_digest: str
    spacing_m: float
    n_half: int
    release_height_m: float = 0.0
    initial_sigma_z_m: float = 0.0
    urban_population: float = 0.0
    #: an emission-height class's stack (engine.dispersion.plumerise.Stack): the kernel is the
    #: area kernel at each met class's effective height (plume rise); None: at release_height_m
    stack: object = None

    def key(self):
        s = (f"{self.met_digest}|{self.spacing_m:.6f}|{self.n_half}|{self.release_height_m:.6f}|"
             f"{self.initial_sigma_z_m:.6f}|{code_fingerprint()}")
        if self.urban_population > 0:
            s += f"|urban={self.urban_population:.1f}|z0u={URBAN_ROUGHNESS_M:.3f}"
        if self.stack is not None:
            s += f"|{self.stack.key()}"
        return hashlib.sha256(s.encode()).hexdigest()[:24]


def kernel_plan(geometries, met_digest_of, *, release_height_m=0.0, initial_sigma_z_m=0.0):
    """The kernels a set of cities needs: ``{(met_digest, 'fine'|'coarse'): KernelSpec}``.

    Each kernel is as wide as the widest city grid (fine) or province lattice (coarse) among the
    cities sharing that met; smaller cities use its centre (``kernel[n-m:n+m+1, n-m:n+m+1]`` is
    the kernel of half width m), so results do not depend on which cities run together.
    """
    need = {}
    for cid, g in geometries.items():
        d = met_digest_of[cid]
        fine = geo.city_grid(g)
        coarse = geo.coarse_grid(g, fine)
        nf = max(fine.nx, fine.ny) - 1
        nc = max(coarse.nx, coarse.ny) - 1
        for kind, sp, n in (("fine", g.spacing_m, nf), ("coarse", g.coarse_spacing_m, nc)):
            k = (d, kind)
            if k in need and need[k].spacing_m != sp:
                raise ValueError("cities sharing met must share grid spacings")
            cur = need[k].n_half if k in need else -1
            need[k] = KernelSpec(d, float(sp), max(cur, n), float(release_height_m), float(initial_sigma_z_m))
    return need


#: half width [cells] of the exactly computed centre of every kernel level
EXACT_HALF_WIDTH = 32
#: spacing ratio between kernel levels
LEVEL_RATIO = 5


def _interp_coarse_kernel(kc, ratio, n_half):
    """Fine-lattice kernel of half width ``n_half`` from a kernel ``kc`` on a lattice ``ratio``
    times coarser: bilinear interpolation of ``kc / ratio**2``.

    Far from a cell, the period-mean concentration is proportional to the cell's emission
    (area x 1 g m-2 s-1), so a fine cell's kernel is the coarse cell's divided by ratio**2; the
    coarse kernel is cell-integrated over the coarse cell, so this is the fine kernel smoothed
    over one coarse cell, which is what a smooth far field needs.
    """
    nc = kc.shape[0] // 2
    t = np.arange(-n_half, n_half + 1) / ratio + nc
    i0 = np.clip(np.floor(t).astype(int), 0, kc.shape[0] - 2)
    w = t - i0
    # bilinear = linear along y, then along x (separable: two small gathers instead of four large)
    rows = (1 - w)[:, None] * kc[i0, :] + w[:, None] * kc[i0 + 1, :]
    k = (1 - w)[None, :] * rows[:, i0] + w[None, :] * rows[:, i0 + 1]
    return k / ratio**2


def compute_kernel(spec, met, *, kernel_fn=None, use_cache=True, exact_half_width=None, ratio=LEVEL_RATIO):
    """Period-average transfer kernel of ``spec`` (cached as ``kernels/<key>.npz`` with a SHA-256 sidecar).

    Multi-level ("pyramid") evaluation: offsets within ``exact_half_width`` cells (default
    :data:`EXACT_HALF_WIDTH`) of the cell are computed exactly by ``engine.dispersion.area.period_kernel``;
    farther offsets are interpolated from the kernel of a lattice ``ratio`` times coarser
    (itself built the same way), see :func:`_interp_coarse_kernel`. The cost is then
    ~ levels x (2*exact_half_width+1)**2 x classes instead of (2*n_half+1)**2 x classes.
    ``exact_half_width >= n_half`` computes everything exactly.
    """
    ex = EXACT_HALF_WIDTH if exact_half_width is None else int(exact_half_width)
    path = cache_dir("kernels") / f"{spec.key()}-x{ex}-r{ratio}.npz"
    if use_cache:
        z = load_verified_npz(path, ("kernel",))  # None if absent; corrupt entries are deleted
        if z is not None and z["kernel"].shape == (2 * spec.n_half + 1,) * 2:
            return z["kernel"]
    urban = ({"urban_population": spec.urban_population, "urban_roughness_m": URBAN_ROUGHNESS_M}
             if spec.urban_population > 0 else {})
    if kernel_fn is None and urban:
        # the urban hours only, the others shared with the other nodes (engine.dispersion.urban)
        kernel_fn = _urban.split_period_kernel
    elif kernel_fn is None:
        from engine.dispersion.area import period_kernel as kernel_fn

    if spec.stack is None:
        parts = [(met, spec.release_height_m, spec.initial_sigma_z_m, 1.0)]
    else:
        # a stack class: each met class's mass at its effective height(s), grouped in height bins
        from dataclasses import replace

        from engine.dispersion.plumerise import height_groups

        parts = [(replace(met.select(rows), weight=w), h, sz, share)
                 for rows, w, h, sz, share in height_groups(met, spec.stack)]

    def exact(spacing, n):
        k = np.zeros((2 * n + 1, 2 * n + 1))
        for m, h, sz, share in parts:
            k += share * np.asarray(kernel_fn(m, cell_size_m=spacing, spacing_m=spacing, n_half=n,
                                              release_height_m=h, initial_sigma_z_m=sz, **urban), dtype=np.float64)
        return np.ascontiguousarray(k)

    def build(spacing, n):
        if n <= ex:
            return exact(spacing, n)
        nc = int(math.ceil(n / ratio)) + 1
        k = _interp_coarse_kernel(build(spacing * ratio, nc), ratio, n)
        k[n - ex:n + ex + 1, n - ex:n + ex + 1] = exact(spacing, ex)
        return k

    k = build(spec.spacing_m, spec.n_half)
    save_verified_npz(path, kernel=k)
    return k


# --------------------------------------------------------------------------- kernel families
def _family_parts(met, spec):
    """The (met rows, release height, BID sigma-z, weights) parts of a family's kernels: the whole
    met at the spec's release height, or a stack class's height groups
    (:func:`engine.dispersion.plumerise.height_groups`); weights are normalised over the valid
    hours of ``met`` (a part's kernel is ``sum_rows w * kernel(row)``), rows with weight 0 dropped."""
    w = np.where(met.valid, met.weight, 0.0)
    tot = w.sum()
    if tot <= 0:
        return []
    if spec.stack is None:
        rows = np.flatnonzero(w > 0)
        return [(met.select(rows), float(spec.release_height_m), float(spec.initial_sigma_z_m), w[rows] / tot)]
    from engine.dispersion.plumerise import height_groups

    out = []
    from engine.dispersion.area import MAX_RELEASE_HEIGHT_M

    for rows, wm, h, sz, _share in height_groups(met, spec.stack):
        if not (0.0 <= h <= MAX_RELEASE_HEIGHT_M):
            raise ValueError(f"stack {spec.stack}: effective height {h:g} m outside 0..{MAX_RELEASE_HEIGHT_M:g} m "
                             "(the top of the gridded profiles)")
        keep = wm > 0
        out.append((met.select(rows[keep]), h, sz, wm[keep] / tot))
    return out


def _family_rows(met, spec, pops):
    """Hour rows of a family (one met, one emission height, rural and urban nodes ``pops``).

    Returns ``(rural, weights, code, urban)``: the rural tables (ln g, ln sigma-y, wind
    direction) of every part's rows stacked, their weights, per row a bit code (bit j set: the
    urban boundary layer of ``pops[j]`` changes the row) and per population the urban tables
    of its urban rows with their weights. Urban tables are built only for the rows
    :func:`engine.dispersion.urban.urban_candidate_hours` admits (the others are rural bit for bit).
    """
    from engine.dispersion.area import hour_tables

    lng, lnsy, wd, wts, code = [], [], [], [], []
    urb = {p: ([], [], [], []) for p in pops}
    for m, h, sz, w in _family_parts(met, spec):
        r = hour_tables(m, h, sz)
        lng.append(r[0])
        lnsy.append(r[1])
        wd.append(r[2])
        wts.append(w)
        c = np.zeros(len(m), dtype=np.int64)
        for j, p in enumerate(pops):
            cand = np.flatnonzero(_urban.urban_candidate_hours(m, p))
            if cand.size == 0:
                continue
            u = hour_tables(m.select(cand), h, sz, 0.0, p, URBAN_ROUGHNESS_M)
            d = _urban.tables_differ(u, (r[0][cand], r[1][cand], r[2][cand]))
            c[cand[d]] |= 1 << j
            for acc, a in zip(urb[p], (u[0][d], u[1][d], u[2][d], w[cand[d]])):
                acc.append(a)
        code.append(c)
    if not wts:
        return None

    def cat(a, shape):
        return np.ascontiguousarray(np.concatenate(a)) if a else np.zeros(shape)

    from kernels import plume

    rural = (cat(lng, (0, plume.NX)), cat(lnsy, (0, plume.NX + 2)), cat(wd, (0,)))
    urban = {p: ((cat(a[0], (0, plume.NX)), cat(a[1], (0, plume.NX + 2)), cat(a[2], (0,))), cat(a[3], (0,)))
             for p, a in urb.items()}
    return rural, cat(wts, (0,)), cat(code, (0,)), urban


def _exact_levels(n_half, spacing, ex, ratio, out):
    """Add to ``out`` {spacing: half width} the exact levels :func:`compute_kernel` evaluates."""
    if n_half <= ex:
        out[spacing] = max(out.get(spacing, -1), n_half)
        return
    _exact_levels(int(math.ceil(n_half / ratio)) + 1, spacing * ratio, ex, ratio, out)
    out[spacing] = max(out.get(spacing, -1), ex)


def _family_sets(rows):
    """The row sets of equal urban code of a family's rural rows, ``{code: (tables, weights)}``, made once
    for all pyramid levels (so each set's symmetry plan is found once: engine.dispersion.symmetry)."""
    rural, w, code, _ = rows
    sets = {}
    for c in np.unique(code):
        sel = code == c
        if c == 0 and sel.all():
            sets[int(c)] = (rural, w)
        else:
            sets[int(c)] = (tuple(np.ascontiguousarray(a[sel]) for a in rural), w[sel])
    return sets


def _family_exact(rows, pops, spacing, n, inner=-1, sets=None):
    """Exact kernels of half width ``n`` at one level: ``{0.0: rural, p: urban node p}``.

    The rural kernel is summed over the row sets of equal urban code (each computed once,
    :func:`_family_sets`); an urban node's kernel is the rural sets it leaves rural plus its urban
    rows' urban kernel.
    """
    _, _, _, urban = rows
    sets = _family_sets(rows) if sets is None else sets
    parts = {c: _urban.weighted_kernel(tab, wt, spacing, spacing, n, inner) for c, (tab, wt) in sets.items()}
    order = sorted(parts)
    out = {0.0: _sum([parts[c] for c in order], n)}
    for j, p in enumerate(pops):
        tab, wu = urban[p]
        urban_part = _urban.weighted_kernel(tab, wu, spacing, spacing, n, inner)
        out[p] = _sum([parts[c] for c in order if not c >> j & 1] + [urban_part], n)
    return out


def _sum(terms, n):
    k = np.zeros((2 * n + 1, 2 * n + 1))
    for t in terms:
        k += t
    return k


def compute_kernels(specs, met, *, use_cache=True, exact_half_width=None, ratio=LEVEL_RATIO, write=None):
    """The kernels of one *family* at once: ``{key: kernel}`` for ``specs`` ``{key: KernelSpec}``
    that share met, release height, sigma-z and stack class (fine and coarse, rural and urban
    nodes), each equal to :func:`compute_kernel`'s to round-off (summation order) and cached
    under the same name.

    Shared work (docs/dispersion.md, "Cost"): the per-hour tables of every part (a stack class's
    height groups) are built once for all levels, kinds and nodes, and the groups are summed in
    one kernel call; each exact pyramid level (spacing, half width) is computed once at the
    largest half width any spec needs and the others take its centre (the 5 km level is shared
    by the fine and the coarse kernel); the rural hours are computed once for the rural kernel
    and every urban node (each node adds only its urban hours); urban tables are built only
    for the hours the urban boundary layer can change (:func:`engine.dispersion.urban.urban_candidate_hours`).

    ``write``: ``write(path, kernel=k)`` stores a cache entry in the caller's way (a thread that
    writes while the caller computes on, :func:`engine.pipeline.transfer_kernels`); None:
    :func:`engine.output.persist.save_verified_npz` before returning.
    """
    ex = EXACT_HALF_WIDTH if exact_half_width is None else int(exact_half_width)
    out, todo = {}, {}
    for key, spec in specs.items():
        path = cache_dir("kernels") / f"{spec.key()}-x{ex}-r{ratio}.npz"
        z = load_verified_npz(path, ("kernel",)) if use_cache else None
        if z is not None and z["kernel"].shape == (2 * spec.n_half + 1,) * 2:
            out[key] = z["kernel"]
        else:
            todo[key] = (spec, path)
    if not todo:
        return out
    first = next(iter(todo.values()))[0]
    for spec, _ in todo.values():
        if (spec.met_digest, spec.release_height_m, spec.initial_sigma_z_m, spec.stack) != \
                (first.met_digest, first.release_height_m, first.initial_sigma_z_m, first.stack):
            raise ValueError("compute_kernels: specs of one family share met, release height, sigma-z and stack")
    pops = sorted({float(s.urban_population) for s, _ in todo.values() if s.urban_population > 0}, reverse=True)
    levels = {}
    for spec, _ in todo.values():
        _exact_levels(spec.n_half, spec.spacing_m, ex, ratio, levels)
    rows = _family_rows(met, first, pops)
    memo = {}
    own = {float(spec.spacing_m) for spec, _ in todo.values()}
    # a level that is no kernel's own spacing is only interpolated from, outside the square of
    # +-ex cells the finer level replaces: its cells within (ex + 1) // ratio - 1 of the centre are
    # never read (_interp_coarse_kernel) and are not integrated (left NaN, checked below)
    unused = (ex + 1) // ratio - 1
    sets = None if rows is None else _family_sets(rows)
    for spacing, n in levels.items():
        if rows is None:
            memo[spacing] = {p: np.zeros((2 * n + 1,) * 2) for p in [0.0, *pops]}
        else:
            memo[spacing] = _family_exact(rows, pops, spacing, n, -1 if float(spacing) in own else unused, sets)

    def build(variant, spacing, n):
        if n <= ex:
            return np.ascontiguousarray(_centre(memo[spacing][variant], n))
        nc = int(math.ceil(n / ratio)) + 1
        k = _interp_coarse_kernel(build(variant, spacing * ratio, nc), ratio, n)
        k[n - ex:n + ex + 1, n - ex:n + ex + 1] = _centre(memo[spacing][variant], ex)
        return k

    for key, (spec, path) in todo.items():
        k = build(float(spec.urban_population) if spec.urban_population > 0 else 0.0, spec.spacing_m, spec.n_half)
        if not np.isfinite(k).all():  # a skipped cell read: a bug, never a silently wrong kernel
            raise RuntimeError(f"kernel {key}: non-finite values (a pyramid level's skipped centre was read)")
        (save_verified_npz if write is None else write)(path, kernel=k)
        out[key] = k
    return out


def _centre(kernel, m):
    n = kernel.shape[0] // 2
    if m > n:
        raise ValueError(f"kernel half width {n} < required {m}")
    return kernel[n - m:n + m + 1, n - m:n + m + 1]


def same_convolution(kernel, emission, *, convolve_fn=None):
    """Receptors at the emission cells' centres: ``out[j, i] = sum S[j', i'] K[j - j', i - i']``.

    The kernel is cut to the half width the grid needs (``max(ny, nx) - 1``), then the full
    linear convolution (``engine.dispersion.area.convolve``) is sliced to the grid.
    """
    ny, nx = emission.shape
    m = max(ny, nx) - 1
    k = _centre(kernel, min(m, kernel.shape[0] // 2))
    if convolve_fn is None:
        from engine.dispersion.area import convolve as convolve_fn
    full = convolve_fn(k, emission)
    h = k.shape[0] // 2
    return np.ascontiguousarray(full[h:h + ny, h:h + nx])


def _bilinear(values, x_first, y_first, spacing, x, y):
    """Bilinear interpolation of ``values`` (lattice centres at x_first + i*spacing) at x (nx,), y (ny,)."""
    tx = (np.asarray(x) - x_first) / spacing
    ty = (np.asarray(y) - y_first) / spacing
    i0 = np.clip(np.floor(tx).astype(int), 0, values.shape[1] - 2)
    j0 = np.clip(np.floor(ty).astype(int), 0, values.shape[0] - 2)
    wx = tx - i0
    wy = ty - j0
    v00 = values[np.ix_(j0, i0)]
    v01 = values[np.ix_(j0, i0 + 1)]
    v10 = values[np.ix_(j0 + 1, i0)]
    v11 = values[np.ix_(j0 + 1, i0 + 1)]
    wx = wx[None, :]
    wy = wy[:, None]
    return (1 - wy) * ((1 - wx) * v00 + wx * v01) + wy * ((1 - wx) * v10 + wx * v11)


# --------------------------------------------------------------------------- fields
@dataclass
class CityField:
    """Unit response fields of one city on its fine grid.

    Attributes
    ----------
    city_id : int
    grid : engine.dispersion.geometry.CityGrid
    city_fraction : (ny, nx) emitting fraction of the city footprint [1]
    unit_city : (ny, nx) F_city [ug m-3 per g m-2 s-1]
    unit_rop : (ny, nx) F_rop [ug m-3 per g m-2 s-1]
    exposure_weight : (ny, nx) weights of the exposure mean (fraction x population density)
    mean_city, mean_rop : weighted means of F_city and F_rop over the city
    exposure : str
        ``population_weighted``, ``area_mean`` (no population grid) or
        ``area_mean_no_population`` (a grid with nobody in the city)
    city_area_km2, rop_area_km2 : rasterised areas [km2]
    from_cache : whether the fields were read from the cache
    """

    city_id: int
    grid: geo.CityGrid
    city_fraction: np.ndarray
    unit_city: np.ndarray
    unit_rop: np.ndarray
    exposure_weight: np.ndarray
    mean_city: float
    mean_rop: float
    city_area_km2: float
    rop_area_km2: float
    from_cache: bool = False
    timings: dict = field(default_factory=dict)
    exposure: str = "area_mean"


def exposure_weights(grid, city_fraction, population=None):
    """Receptor weights of a city's exposure mean, and which mean they give.

    Parameters
    ----------
    grid : engine.dispersion.geometry.CityGrid
    city_fraction : (ny, nx) footprint fraction of the cells (x spherical area factor)
    population : callable (lat, lon) -> density [km-2], optional; NaN or <= 0 = nobody

    Returns
    -------
    weight : (ny, nx)  fraction x density (population-weighted), or the fraction (area mean)
    exposure : str     ``population_weighted``, ``area_mean`` or ``area_mean_no_population``
                       (a grid with nobody in the city falls back to the area mean)
    """
    if population is None:
        return city_fraction.copy(), "area_mean"
    lat, lon = grid.latlon()
    dens = np.asarray(population(lat, lon), dtype=float)
    weight = city_fraction * np.where(np.isfinite(dens) & (dens > 0), dens, 0.0)
    if weight.sum() <= 0:
        return city_fraction.copy(), "area_mean_no_population"
    return weight, "population_weighted"


def compute_city_field(geom, kernel_fine, kernel_coarse, *, population=None, convolve_fn=None,
                       subsamples=5):
    """F_city and F_rop of one city (module docstring).

    Parameters
    ----------
    geom : engine.dispersion.geometry.CityGeometry
    kernel_fine : (2n+1, 2n+1) kernel for cell = spacing = h [ug m-3 per g m-2 s-1]
    kernel_coarse : (2n+1, 2n+1) kernel for cell = spacing = H
    population : callable (lat, lon) -> population density [km-2], optional
        For instance an :class:`engine.dispersion.geometry.PopulationGrid`; NaN or <= 0 = nobody.
    """
    r = geo.rasterise_city(geom, subsamples=subsamples)
    fine, coarse = r["fine"], r["coarse"]
    f_city = same_convolution(kernel_fine, r["city"], convolve_fn=convolve_fn)
    f_near = same_convolution(kernel_fine, r["rop_near"], convolve_fn=convolve_fn)
    far = r["rop_far"]
    if far.any():
        j0, i0, nj, ni = r["fine_in_coarse"]
        f_far_c = same_convolution(kernel_coarse, far, convolve_fn=convolve_fn)
        # only the ring around the fine grid is needed; interpolate to fine cell centres
        sub = f_far_c[j0 - 1:j0 + nj + 1, i0 - 1:i0 + ni + 1]
        f_far = _bilinear(sub, coarse.x[i0 - 1], coarse.y[j0 - 1], coarse.spacing_m, fine.x, fine.y)
    else:
        f_far = np.zeros(fine.shape)
    f_rop = f_near + f_far
    weight, exposure = exposure_weights(fine, r["city"], population)
    wsum = weight.sum()
    h2 = fine.spacing_m**2 / 1e6
    return CityField(
        city_id=geom.city_id, grid=fine, city_fraction=r["city"], unit_city=f_city, unit_rop=f_rop,
        exposure_weight=weight,
        mean_city=float((f_city * weight).sum() / wsum), mean_rop=float((f_rop * weight).sum() / wsum),
        city_area_km2=float(r["city"].sum() * h2),
        rop_area_km2=float(r["rop_near"].sum() * h2 + far.sum() * coarse.spacing_m**2 / 1e6),
        exposure=exposure,
    )


# --------------------------------------------------------------------------- mosaic
@dataclass(frozen=True)
class MosaicSpec:
    """Regular national lat-lon grid: cell centres lat_first + j*step, lon_first + i*step [deg]."""

    lat_first: float
    lon_first: float
    step_deg: float
    nlat: int
    nlon: int

    @classmethod
    def covering(cls, lat_min, lat_max, lon_min, lon_max, step_deg):
        lat0 = math.floor(lat_min / step_deg) * step_deg
        lon0 = math.floor(lon_min / step_deg) * step_deg
        nlat = int(math.ceil((lat_max - lat0) / step_deg)) + 1
        nlon = int(math.ceil((lon_max - lon0) / step_deg)) + 1
        return cls(round(lat0 + step_deg / 2, 10), round(lon0 + step_deg / 2, 10), step_deg, nlat, nlon)

    @property
    def lat(self):
        return self.lat_first + self.step_deg * np.arange(self.nlat)

    @property
    def lon(self):
        return self.lon_first + self.step_deg * np.arange(self.nlon)
