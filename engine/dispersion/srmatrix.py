"""The source-receptor matrix S and the forward concentration fields consistent with it.

``S[i, j]`` [ug m-3 per g m-2 s-1] is the exposure-weighted mean over receptor city ``i`` of
the concentration that a unit area-emission intensity (1 g m-2 s-1) on source ``j`` causes,
with city ``i``'s met. Sources are every city footprint (``c<city_id>``) and every rest of
province (``r<province_id>``, the province shape minus all its cities). A scenario's city
exposure is then ``C = S @ q`` (linearity of the plume model in the emission rate).

Which sources a receptor city sees (``[dispersion] source_set``):

* ``own`` -- the city itself and its rest of province (the model of the first releases);
* ``province`` -- the city, every other city of its province and its rest of province: the
  paper's "rest of province" seen from that city (province minus the city);
* ``nation`` -- also the cities and rests of province of other provinces, for the part of
  them inside a square of half side ``source_reach_m`` about the city centre.

The adjoint (why one correlation per receptor city gives a whole row)
----------------------------------------------------------------------
The forward model of :mod:`engine.dispersion.fields` is linear: on the fine lattice (spacing h) the field
of a source raster ``m`` is ``F = K_h * m`` (discrete convolution, ``F(r) = sum_c m(c)
K_h(r - c)``); beyond the fine grid the source is rasterised on the coarse lattice (spacing H),
convolved with ``K_H`` and interpolated bilinearly to the fine receptors, ``F = A_y (K_H * m)
A_x^T`` restricted to the window around the fine grid (``A_y``, ``A_x`` the bilinear weight
matrices). With ``w`` the receptor weights normalised to sum 1, the exposure mean is
``<w, F>``; moving the linear maps to the other side of the inner product (their adjoints),

.. math::

    <w, K_h * m> = <K_h \\star w, m>, \\qquad
    <w, A_y (K_H * m) A_x^T> = <K_H \\star (A_y^T w A_x), m>

where ``*`` is convolution and ``\\star`` correlation (convolution with the kernel flipped in
both axes). So per receptor city one fine and one coarse correlation give the sensitivity maps
``G_h = K_h \\star w`` and ``G_H = K_H \\star (A_y^T w A_x)``, and every source costs only
``S[i, j] = <G_h, m_j^h> + <G_H, m_j^H>`` -- whatever the number of sources. The forward
fields (written to NetCDF) use the same rasters and kernels, so their exposure mean equals the
row of ``S @ q`` to round-off (tested), and ``source_set = "own"`` reproduces the per-city
``F_city``, ``F_rop`` means of :func:`engine.dispersion.fields.compute_city_field` to round-off.

Units: S [ug m-3 per g m-2 s-1]; q [g m-2 s-1]; concentrations [ug m-3]; lengths [m].
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.dispersion import fields as fl
from engine.dispersion import geometry as geo
from engine.dispersion import spectra as sp
from engine.constants import SOURCE_SETS
from engine.output.persist import load_verified_npz, save_verified_npz

__all__ = [
    "Source",
    "source_table",
    "sources_for_receptor",
    "receptor_lattices",
    "sr_kernel_plan",
    "ReceptorResult",
    "compute_receptor",
    "ReceptorPart",
    "compute_receptor_parts",
    "bilinear_matrix",
    "same_convolution_batch",
    "mosaic_values",
    "merge_mosaic_values",
]

SR_ALGORITHM_VERSION = "sr-v1"


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Source:
    """One area source: a city footprint or a rest of province.

    Attributes
    ----------
    label : str            ``c<city_id>`` or ``r<province_id>``
    kind : str             ``city`` or ``rop``
    id : int               city_id or province_id
    province_id : int
    shape : Disc, Polygon or Region
    lat, lon : float       centre [degrees]
    extent_m : float       radius of a circle about the centre containing the shape [m]
    """

    label: str
    kind: str
    id: int
    province_id: int
    shape: object
    lat: float
    lon: float
    extent_m: float

    def key(self):
        return (self.label, self.shape.key())


def _shape_extent_m(shape, lat, lon):
    if isinstance(shape, geo.Disc):
        return float(geo.great_circle_distance_m(lat, lon, shape.lat, shape.lon)) + shape.radius_m
    x0, x1, y0, y1 = _bbox_xy(shape, lat, lon)
    return float(max(abs(x0), abs(x1), abs(y0), abs(y1)) * math.sqrt(2.0))


def _bbox_xy(shape, lat0, lon0):
    if isinstance(shape, geo.Region):
        return shape.include.bbox_xy(lat0, lon0)
    return shape.bbox_xy(lat0, lon0)


def source_table(geometries):
    """Every source of a data set: its cities (by id), then its rests of province (by id).

    Parameters
    ----------
    geometries : dict {city_id: engine.dispersion.geometry.CityGeometry}
        Geometries of **all** cities of the data set (a city not in the run still emits).

    Returns
    -------
    list of :class:`Source`
    """
    out = []
    provinces = {}
    for cid in sorted(geometries):
        g = geometries[cid]
        fp = g.footprint
        out.append(Source(f"c{cid}", "city", int(cid), int(g.province_id), fp, g.centre_lat, g.centre_lon,
                          _shape_extent_m(fp, g.centre_lat, g.centre_lon)))
        provinces.setdefault(int(g.province_id), g)
    for pid in sorted(provinces):
        g = provinces[pid]
        p = g.province
        lat, lon = (p.lat, p.lon) if isinstance(p, geo.Disc) else (g.centre_lat, g.centre_lon)
        out.append(Source(f"r{pid}", "rop", pid, pid, g.rop, lat, lon, _shape_extent_m(p, lat, lon)))
    return out


def sources_for_receptor(geom, sources, source_set="province", source_reach_m=300_000.0):
    """Indices into ``sources`` that receptor city ``geom`` sees (module docstring)."""
    if source_set not in SOURCE_SETS:
        raise ValueError(f"source_set = {source_set!r}; allowed: {', '.join(SOURCE_SETS)}")
    own_city, own_rop = f"c{geom.city_id}", f"r{geom.province_id}"
    idx = []
    for k, s in enumerate(sources):
        if s.label in (own_city, own_rop):
            idx.append(k)
        elif source_set == "own":
            continue
        elif s.province_id == geom.province_id and s.kind == "city":
            idx.append(k)
        elif source_set == "nation":
            d = float(geo.great_circle_distance_m(geom.centre_lat, geom.centre_lon, s.lat, s.lon))
            # the square of half side R about the centre lies inside the circle of radius R*sqrt(2)
            if d - s.extent_m <= source_reach_m * math.sqrt(2.0):
                idx.append(k)
    return idx


# --------------------------------------------------------------------------- lattices
def receptor_lattices(geom, sources=(), *, source_set="own", source_reach_m=300_000.0):
    """Fine receptor grid and coarse source lattice of a receptor city.

    ``own``: the coarse lattice of :func:`engine.dispersion.geometry.coarse_grid` (the province's bounding
    box and one ring beyond the fine grid). ``province`` extends it to the bounding boxes of the
    province's city footprints (a border city's disc may stick out of the province disc);
    ``nation`` also to the reach square ``[-R, R]^2`` about the city centre.

    Returns
    -------
    fine, coarse : engine.dispersion.geometry.CityGrid
    block : (j0, i0, nj, ni)  the fine grid's position in the coarse lattice [coarse cells]
    """
    fine = geo.city_grid(geom)
    coarse = geo.coarse_grid(geom, fine)
    if source_set != "own":
        H = geom.coarse_spacing_m
        x0 = coarse.x_first - 0.5 * H
        y0 = coarse.y_first - 0.5 * H
        x1, y1 = x0 + coarse.nx * H, y0 + coarse.ny * H
        for s in sources:
            if s.kind == "rop" and s.province_id == geom.province_id:
                continue  # already covered: the province's bounding box
            bx0, bx1, by0, by1 = _bbox_xy(s.shape, geom.centre_lat, geom.centre_lon)
            if source_set == "nation":
                R = source_reach_m
                bx0, bx1, by0, by1 = max(bx0, -R), min(bx1, R), max(by0, -R), min(by1, R)
                if bx0 >= bx1 or by0 >= by1:
                    continue
            x0, x1, y0, y1 = min(x0, bx0), max(x1, bx1), min(y0, by0), max(y1, by1)
        X0, X1 = geo.snap_out(x0, x1, H)
        Y0, Y1 = geo.snap_out(y0, y1, H)
        coarse = geo.CityGrid(geom.centre_lat, geom.centre_lon, H, int(round((X1 - X0) / H)),
                              int(round((Y1 - Y0) / H)), X0 + 0.5 * H, Y0 + 0.5 * H)
    f = geom.coarse_factor
    i0 = int(round((fine.x_first - 0.5 * fine.spacing_m - (coarse.x_first - 0.5 * coarse.spacing_m)) / coarse.spacing_m))
    j0 = int(round((fine.y_first - 0.5 * fine.spacing_m - (coarse.y_first - 0.5 * coarse.spacing_m)) / coarse.spacing_m))
    return fine, coarse, (j0, i0, fine.ny // f, fine.nx // f)


def sr_kernel_plan(geometries, met_digest_of, lattices, *, release_height_m=0.0, initial_sigma_z_m=0.0,
                   urban_classes=None):
    """The transfer kernels a set of receptor cities needs, ``{(met_digest, 'fine'|'coarse'): KernelSpec}``.

    Like :func:`engine.dispersion.fields.kernel_plan`, each kernel as wide as the widest lattice among the
    cities sharing that met; ``lattices`` maps city_id to :func:`receptor_lattices`' result.
    ``urban_classes`` (``[dispersion] urban``): ``{city_id: urban populations}``, the node
    populations (:func:`engine.dispersion.fields.urban_node_weights`) of the city sources a
    receptor city sees; each adds the urban kernels ``(met_digest, kind, population)`` of that
    city's met, as wide as its rural kernels.
    """
    need = {}
    for cid, g in geometries.items():
        fine, coarse, _ = lattices[cid]
        d = met_digest_of[cid]
        for kind, sp, n in (("fine", g.spacing_m, max(fine.nx, fine.ny) - 1),
                            ("coarse", g.coarse_spacing_m, max(coarse.nx, coarse.ny) - 1)):
            k = (d, kind)
            if k in need and need[k].spacing_m != sp:
                raise ValueError("cities sharing met must share grid spacings")
            cur = need[k].n_half if k in need else -1
            need[k] = fl.KernelSpec(d, float(sp), max(cur, n), float(release_height_m), float(initial_sigma_z_m))
    for cid, pops in (urban_classes or {}).items():
        d = met_digest_of[cid]
        for kind in ("fine", "coarse"):
            rural = need[(d, kind)]
            for p in pops:
                need[(d, kind, float(p))] = dataclasses.replace(rural, urban_population=float(p))
    return need


# --------------------------------------------------------------------------- rasters
def _window(grid, shape, *, subsamples=5, exclude=None):
    """Coverage of ``shape`` on the part of ``grid`` its bounding box touches.

    Returns ``(j0, i0, frac)`` with ``frac`` the (nj, ni) coverage (as
    :func:`engine.dispersion.geometry.coverage_fraction`), or None when the shape misses the grid.
    ``exclude`` = (j0, i0, nj, ni) block of cells that get 0 (the fine grid inside the coarse
    lattice).
    """
    h = grid.spacing_m
    bx0, bx1, by0, by1 = _bbox_xy(shape, grid.lat0, grid.lon0)
    gx0 = grid.x_first - 0.5 * h
    gy0 = grid.y_first - 0.5 * h
    i0 = max(0, int(math.floor((bx0 - gx0) / h)) - 1)
    i1 = min(grid.nx, int(math.ceil((bx1 - gx0) / h)) + 1)
    j0 = max(0, int(math.floor((by0 - gy0) / h)) - 1)
    j1 = min(grid.ny, int(math.ceil((by1 - gy0) / h)) + 1)
    if i0 >= i1 or j0 >= j1:
        return None
    sub = geo.CityGrid(grid.lat0, grid.lon0, h, i1 - i0, j1 - j0, grid.x_first + i0 * h, grid.y_first + j0 * h)
    mask = None
    if exclude is not None:
        ej, ei, enj, eni = exclude
        mask = np.ones(sub.shape, dtype=bool)
        a, b = max(ej - j0, 0), min(ej + enj - j0, j1 - j0)
        c, d = max(ei - i0, 0), min(ei + eni - i0, i1 - i0)
        if a < b and c < d:
            mask[a:b, c:d] = False
        if not mask.any():
            return None
    frac = geo.coverage_fraction(sub, shape, subsamples=subsamples, mask=mask)
    if not frac.any():
        return None
    return j0, i0, frac


def same_convolution_batch(kernel, stack):
    """:func:`engine.dispersion.fields.same_convolution` of a stack of grids (b, ny, nx) with one kernel.

    Zero-padded linear convolution by real FFTs of a 2-3-5-smooth size >= ny + 2h (h the
    kernel half width used: min(kernel's, max(ny, nx) - 1), as ``same_convolution`` cuts it), so
    there is no wrap-around; the kernel is transformed once for the whole stack. Kernel and
    grids are non-negative, so negative round-off is clipped to 0.
    """
    stack = np.asarray(stack, dtype=float)
    b, ny, nx = stack.shape
    n = kernel.shape[0] // 2
    h = min(max(ny, nx) - 1, n)
    k = kernel[n - h:n + h + 1, n - h:n + h + 1]
    shape = sp.fft_shape((ny, nx), h)
    spec = np.fft.rfft2(stack, s=shape, axes=(-2, -1)) * np.fft.rfft2(k, s=shape)[None]
    full = np.fft.irfft2(spec, s=shape, axes=(-2, -1))
    return np.maximum(full[:, h:h + ny, h:h + nx], 0.0)


def bilinear_matrix(first, spacing, points, n):
    """Weights ``A`` (len(points), n) of linear interpolation from a lattice to ``points``.

    Lattice values sit at ``first + k * spacing`` (k = 0..n-1); a point between lattice nodes
    k and k+1 gets weights (1 - t, t); points beyond the ends extrapolate linearly from the end
    pair, as :func:`engine.dispersion.fields._bilinear` does. A 2-D bilinear interpolation of ``V`` is
    ``A_y @ V @ A_x.T``, whose adjoint maps receptor weights ``w`` to ``A_y.T @ w @ A_x``.
    """
    t = (np.asarray(points, dtype=float) - first) / spacing
    k = np.clip(np.floor(t).astype(int), 0, n - 2)
    a = t - k
    A = np.zeros((t.size, n))
    rows = np.arange(t.size)
    A[rows, k] = 1.0 - a
    A[rows, k + 1] = a
    return A


@dataclass
class ReceptorResult:
    """One receptor city's row of S, and (when emissions were given) its fields.

    Attributes
    ----------
    city_id : int
    labels : tuple of str           sources of the row
    row : (n_src,) ndarray          S[i, j] [ug m-3 per g m-2 s-1]
    exposure : str                  population_weighted | area_mean | area_mean_no_population
    city_area_km2, rop_area_km2 : float  rasterised areas [km2]
    grid : CityGrid or None         fine grid of the fields
    city_fraction : (ny, nx)        footprint fraction of the fine cells
    exposure_weight : (ny, nx)      receptor weights of the exposure mean
    unit_city, unit_rop : (ny, nx)  unit-response fields of the city and its own ROP
    pm25 : (n_scenario, ny, nx)     scenario fields [ug m-3], K * sum_j q_j m_j
    mosaic : dict                   contribution to the national mosaic (:func:`mosaic_values`)
    from_cache : bool               whether the row was read from the cache
    season_rows : (n_season, n_src) c_s times the row of each season's met (seasonal met only;
                                    ``row`` is then the row of a flat, all-year emission)
    height_rows, season_height_rows  the same per emission-height class (see below)
    """

    city_id: int
    labels: tuple
    row: np.ndarray
    exposure: str
    city_area_km2: float
    rop_area_km2: float
    grid: object = None
    city_fraction: object = None
    exposure_weight: object = None
    unit_city: object = None
    unit_rop: object = None
    pm25: object = None
    mosaic: object = None
    from_cache: bool = False
    timings: dict = None
    season_rows: object = None
    #: ``[dispersion] emission_heights = "sector"``: (n_height, n_src) rows of a flat all-year
    #: emission in each height class, and (n_season, n_height, n_src) c_s times each season's
    #: (``row`` / ``season_rows`` are then the ground class's)
    height_rows: object = None
    season_height_rows: object = None


def _row_key(geom, src, lattices, met_digest, options):
    fine, coarse, _ = lattices
    s = repr((SR_ALGORITHM_VERSION, geom.key(), fine.key(), coarse.key(), tuple(x.key() for x in src), met_digest,
              float(options["release_height_m"]), float(options["initial_sigma_z_m"]), options["population_key"],
              int(options.get("subsamples", 5)), fl.code_fingerprint(), _own_fingerprint())
             + ((options["urban_key"],) if options.get("urban_key") else ()))
    return hashlib.sha256(s.encode()).hexdigest()[:32]


_OWN = None


def _own_fingerprint():
    global _OWN
    if _OWN is None:
        # this module and the spectral pass that computes the rows (engine.dispersion.spectra)
        h = hashlib.sha256(Path(__file__).read_bytes())
        h.update((Path(__file__).parent / "spectra.py").read_bytes())
        _OWN = h.hexdigest()[:16]
    return _OWN


def _load_row(path, labels):
    """The cached row at ``path`` (checksum-verified), or None when absent, corrupt or for other sources."""
    out = load_verified_npz(path, ("labels", "row", "exposure", "scalars"))
    if out is None:
        return None
    if tuple(str(x) for x in out["labels"]) != tuple(labels) or out["row"].shape != (len(labels),) \
            or not np.isfinite(out["row"]).all():
        return None
    return out


def _kernel_terms(sk):
    """``source_kernels`` entry -> tuple of ``(weight, kernel_fine, kernel_coarse)``."""
    if len(sk) == 2 and isinstance(sk[0], np.ndarray):
        return ((1.0, sk[0], sk[1]),)
    return tuple(sk)


def _flip(k):
    return np.ascontiguousarray(k[::-1, ::-1])


def _kernel_groups(source_kernels):
    """Sources grouped by kernel pair: ``{id: (kernel_fine, kernel_coarse, [(source index, weight)])}``;
    a source with several weighted terms (``compute_receptor``'s ``source_kernels``) is in several."""
    groups = {}
    for k, sk in enumerate(source_kernels):
        for w, kf, kc in _kernel_terms(sk):
            groups.setdefault((id(kf), id(kc)), (kf, kc, []))[2].append((k, w))
    return groups


def _adjoint_row(groups, rasters, wn, Ay, Ax, coarse_shape, block, n_src):
    """Row S[i, :] by the adjoint: per kernel pair, the sensitivity map (the flipped kernel convolved
    with the receptor weights ``wn``, and on the coarse lattice with their restriction
    ``Ay.T wn Ax``), then one inner product with each source raster, times the source's weight
    for that pair (summed over its pairs)."""
    j0, i0, nj, ni = block
    row = np.zeros(n_src)
    wc = None
    for kf, kc, members in groups.values():
        g_fine = fl.same_convolution(_flip(kf), wn)
        g_coarse = None
        if any(rasters[k][1] is not None for k, _ in members):
            if wc is None:
                wc = np.zeros(coarse_shape)
                wc[j0 - 1:j0 + nj + 1, i0 - 1:i0 + ni + 1] = Ay.T @ wn @ Ax
            g_coarse = fl.same_convolution(_flip(kc), wc)
        for k, w in members:
            rf, rc = rasters[k]
            v = 0.0
            if rf is not None:
                a, b, m = rf
                v += float(np.sum(g_fine[a:a + m.shape[0], b:b + m.shape[1]] * m))
            if rc is not None:
                a, b, m = rc
                v += float(np.sum(g_coarse[a:a + m.shape[0], b:b + m.shape[1]] * m))
            row[k] += v if w == 1.0 else w * v
    return row


def _forward_fields(q, groups, rasters, city, rop_c, k_city, k_rop, fine_shape, coarse_shape, block, Ay, Ax):
    """Forward fields on the fine lattice with the same rasters and kernels: the scenarios' emission
    grids (``q`` (n_scenario, n_src) [g m-2 s-1]), then the city alone and its ROP alone (unit
    intensity), convolved in one batch per kernel pair, each source's rasters times its weight for
    that pair. Returns (n_scenario + 2, ny, nx)."""
    ns = q.shape[0]
    j0, i0, nj, ni = block
    rop_f = rasters[k_rop][0]
    out = np.zeros((ns + 2,) + fine_shape)
    for kf, kc, members in groups.values():
        ef = np.zeros((ns + 2,) + fine_shape)
        ec = np.zeros((ns + 2,) + coarse_shape)
        for k, w in members:
            rf, rc = rasters[k]
            qk = q[:, k] if w == 1.0 else w * q[:, k]
            for r, stack in ((rf, ef), (rc, ec)):
                if r is None:
                    continue
                a, b, m = r
                stack[:ns, a:a + m.shape[0], b:b + m.shape[1]] += qk[:, None, None] * m[None]
            if k == k_city:
                ef[ns] = city if w == 1.0 else w * city
            if k == k_rop:
                ef[ns + 1] = rop_f[2] if w == 1.0 else w * rop_f[2]
                if rop_c is not None:
                    a, b, m = rop_c
                    ec[ns + 1, a:a + m.shape[0], b:b + m.shape[1]] = m if w == 1.0 else w * m
        out += same_convolution_batch(kf, ef)
        if ec.any():
            fc = same_convolution_batch(kc, ec)[:, j0 - 1:j0 + nj + 1, i0 - 1:i0 + ni + 1]
            out += np.einsum("yj,bji,xi->byx", Ay, fc, Ax, optimize=True)
    return out


def compute_receptor(geom, src, kernel_fine, kernel_coarse, *, lattices=None, population=None,
                     population_key="", q=None, mosaic=None, use_cache=True, subsamples=5,
                     release_height_m=0.0, initial_sigma_z_m=0.0, met_digest="", source_set="own",
                     source_reach_m=300_000.0, raster_memo=None, source_kernels=None, urban_key=""):
    """Row ``S[i, :]`` of receptor city ``geom`` by the adjoint, and its forward fields.

    Parameters
    ----------
    geom : engine.dispersion.geometry.CityGeometry
    src : list of Source
        The sources this city sees (:func:`sources_for_receptor`); must include ``c<city_id>``
        and ``r<province_id>``.
    kernel_fine, kernel_coarse : (2n+1, 2n+1) ndarray [ug m-3 per g m-2 s-1]
        Transfer kernels for cell = spacing = h and = H.
    population : callable (lat, lon) -> density [km-2], optional
    q : (n_scenario, n_src) ndarray [g m-2 s-1], optional
        Emission intensities of ``src`` per scenario; given, the forward fields are computed.
    mosaic : engine.dispersion.fields.MosaicSpec, optional
        With ``q``: also the city's contribution to the national mosaic.
    use_cache : bool
        Read/write the row in the cache (``sr/<key>.npz``) when no fields are asked for.
    raster_memo : dict, optional
        Shared by calls for the same city, sources and lattices with other kernels (the seasons
        of a seasonal met): the source rasters and receptor weights are computed once.
    source_kernels : list, optional
        Per source of ``src``, its kernels: a pair ``(kernel_fine, kernel_coarse)``, or a tuple
        of terms ``(weight, kernel_fine, kernel_coarse)`` whose weighted sum is the source's
        kernel (``[dispersion] urban``: an urban city's node kernels, interpolated in log
        population; rural ones for a rest of province); default ``kernel_fine``,
        ``kernel_coarse`` for every source. The adjoint takes one sensitivity map per distinct
        kernel pair, and a source's entry is the weighted sum of its terms' inner products
        (linearity in the kernel).
    urban_key : str
        Identifies ``source_kernels`` in the row cache key ("" = all rural).

    Returns
    -------
    ReceptorResult
    """
    t0 = time.perf_counter()
    lattices = lattices or receptor_lattices(geom, src, source_set=source_set, source_reach_m=source_reach_m)
    fine, coarse, block = lattices
    labels = tuple(s.label for s in src)
    options = {"release_height_m": release_height_m, "initial_sigma_z_m": initial_sigma_z_m,
               "population_key": population_key if population is not None else "", "subsamples": subsamples,
               "urban_key": urban_key if source_kernels is not None else ""}
    if source_kernels is None:
        source_kernels = [(kernel_fine, kernel_coarse)] * len(src)
    groups = _kernel_groups(source_kernels)
    cacheable = use_cache and (population is None or bool(population_key))
    path = fl.cache_dir("sr") / f"{_row_key(geom, src, lattices, met_digest, options)}.npz"
    cached = _load_row(path, labels) if cacheable and path.exists() else None
    if cached is not None and q is None:
        sc = cached["scalars"]
        return ReceptorResult(geom.city_id, labels, np.asarray(cached["row"], dtype=float),
                              str(cached["exposure"][()]), float(sc[0]), float(sc[1]), from_cache=True,
                              timings={"receptor_s": time.perf_counter() - t0})
    own_city, own_rop = f"c{geom.city_id}", f"r{geom.province_id}"
    memo = raster_memo if raster_memo is not None else {}
    if "rasters" not in memo:
        memo.update(_receptor_rasters(geom, src, fine, coarse, block, population, subsamples))
    city, rasters, weight, exposure = memo["city"], memo["rasters"], memo["weight"], memo["exposure"]
    wn, Ay, Ax = memo["wn"], memo["Ay"], memo["Ax"]
    t_raster = time.perf_counter() - t0
    # ---- the adjoint: sensitivity maps, then one inner product per source
    if cached is not None:  # the row is known; only the fields are wanted
        row = np.asarray(cached["row"], dtype=float)
    else:
        row = _adjoint_row(groups, rasters, wn, Ay, Ax, coarse.shape, block, len(src))
    h2 = fine.spacing_m**2 / 1e6
    H2 = coarse.spacing_m**2 / 1e6
    k_rop = labels.index(own_rop)
    rop_f, rop_c = rasters[k_rop]
    rop_area = float(rop_f[2].sum() * h2 + (rop_c[2].sum() * H2 if rop_c is not None else 0.0))
    city_area = float(city.sum() * h2)
    t_adj = time.perf_counter() - t0 - t_raster
    if cacheable and cached is None:
        save_verified_npz(path, labels=np.array(labels), row=row, exposure=np.array(exposure),
                             scalars=np.array([city_area, rop_area]))
    res = ReceptorResult(geom.city_id, labels, row, exposure, city_area, rop_area, from_cache=cached is not None,
                         timings={"raster_s": t_raster, "adjoint_s": t_adj})
    if q is None:
        res.timings["receptor_s"] = time.perf_counter() - t0
        return res
    # ---- forward fields with the same rasters and kernels: the scenarios' emission grids,
    # the city alone and its ROP alone, convolved in one batch per lattice
    q = np.atleast_2d(np.asarray(q, dtype=float))
    ns = q.shape[0]
    out = _forward_fields(q, groups, rasters, city, rop_c, labels.index(own_city), k_rop, fine.shape,
                          coarse.shape, block, Ay, Ax)
    res.grid = fine
    res.city_fraction = city
    res.exposure_weight = weight
    res.unit_city = out[ns]
    res.unit_rop = out[ns + 1]
    res.pm25 = out[:ns]
    if mosaic is not None:
        res.mosaic = mosaic_values(fine, city, res.pm25, mosaic)
    res.timings["receptor_s"] = time.perf_counter() - t0
    return res



@dataclass
class ReceptorPart:
    """One (season, emission-height class) part of a receptor city, for :func:`compute_receptor_parts`.

    Attributes
    ----------
    kernel_fine, kernel_coarse : (2n+1, 2n+1) ndarray   the part's rural kernels
    source_kernels : list or None   per source its kernels (as :func:`compute_receptor`'s)
    met_digest : str                the part's met (row cache key)
    urban_key : str                 identifies ``source_kernels`` in the row cache key
    q : (n_scenario, n_src) ndarray or None   the part's emission intensities [g m-2 s-1]
    unit_weight : (float, float)    weights of the part's unit-city and unit-ROP fields in the sums
    """

    kernel_fine: np.ndarray
    kernel_coarse: np.ndarray
    source_kernels: object = None
    met_digest: str = ""
    urban_key: str = ""
    q: object = None
    unit_weight: tuple = (1.0, 1.0)


def compute_receptor_parts(geom, src, parts, *, lattices=None, population=None, population_key="", use_cache=True,
                           subsamples=5, release_height_m=0.0, initial_sigma_z_m=0.0, source_set="own",
                           source_reach_m=300_000.0, raster_memo=None):
    """Rows of S of every part of a receptor city, and the sums of the parts' forward fields.

    Equal to :func:`compute_receptor` called once per part (same rasters, kernels, row cache
    entries), with ``pm25`` summed over the parts and the unit fields weighted by each part's
    ``unit_weight``, to round-off -- but every spectrum is computed once
    (:mod:`engine.dispersion.spectra`): the receptor weights' and sources' per city, a kernel's
    per padded shape (kept across cities), the adjoint maps of a part in one batched inverse
    transform, and the fields of all parts summed in spectral space before one inverse transform
    per lattice.

    Parameters
    ----------
    geom, src, lattices, population, population_key, use_cache, subsamples, release_height_m,
    initial_sigma_z_m, source_set, source_reach_m, raster_memo :
        As :func:`compute_receptor`.
    parts : list of :class:`ReceptorPart`
        With ``q`` on every part, the fields are computed (``q`` on none: rows only).

    Returns
    -------
    results : list of ReceptorResult
        Per part, its row (no fields), ``from_cache`` per part; the first holds the timings.
    fields : dict or None
        ``grid``, ``city_fraction``, ``exposure_weight``, ``unit_city``, ``unit_rop`` (ny, nx) and
        ``pm25`` (n_scenario, ny, nx) [ug m-3], the sums over the parts.
    """
    t0 = time.perf_counter()
    lattices = lattices or receptor_lattices(geom, src, source_set=source_set, source_reach_m=source_reach_m)
    fine, coarse, block = lattices
    labels = tuple(s.label for s in src)
    with_fields = parts[0].q is not None
    cacheable = use_cache and (population is None or bool(population_key))
    paths, cached = [], []
    for p in parts:
        options = {"release_height_m": release_height_m, "initial_sigma_z_m": initial_sigma_z_m,
                   "population_key": population_key if population is not None else "", "subsamples": subsamples,
                   "urban_key": p.urban_key if p.source_kernels is not None else ""}
        path = fl.cache_dir("sr") / f"{_row_key(geom, src, lattices, p.met_digest, options)}.npz"
        paths.append(path)
        cached.append(_load_row(path, labels) if cacheable and path.exists() else None)
    if not with_fields and all(c is not None for c in cached):
        out = [ReceptorResult(geom.city_id, labels, np.asarray(c["row"], dtype=float), str(c["exposure"][()]),
                              float(c["scalars"][0]), float(c["scalars"][1]), from_cache=True,
                              timings={"receptor_s": 0.0}) for c in cached]
        out[0].timings["receptor_s"] = time.perf_counter() - t0
        return out, None
    memo = raster_memo if raster_memo is not None else {}
    if "rasters" not in memo:
        memo.update(_receptor_rasters(geom, src, fine, coarse, block, population, subsamples))
    city, rasters, weight, exposure = memo["city"], memo["rasters"], memo["weight"], memo["exposure"]
    Ay, Ax = memo["Ay"], memo["Ax"]
    lat_f, lat_c = _lattice_spectra(memo, fine, coarse, block)
    t_raster = time.perf_counter() - t0
    k_city, k_rop = labels.index(f"c{geom.city_id}"), labels.index(f"r{geom.province_id}")
    h2, H2 = fine.spacing_m**2 / 1e6, coarse.spacing_m**2 / 1e6
    rop_f, rop_c = rasters[k_rop]
    rop_area = float(rop_f[2].sum() * h2 + (rop_c[2].sum() * H2 if rop_c is not None else 0.0))
    city_area = float(city.sum() * h2)
    ns = parts[0].q.shape[0] if with_fields else 0
    sum_f, sum_c = (sp.FieldSum(lat_f, ns + 2), sp.FieldSum(lat_c, ns + 2)) if with_fields else (None, None)
    results, t_adj = [], 0.0
    for p, c, path in zip(parts, cached, paths):
        groups = _kernel_groups(p.source_kernels or [(p.kernel_fine, p.kernel_coarse)] * len(src))
        t1 = time.perf_counter()
        if c is not None:
            row = np.asarray(c["row"], dtype=float)
        else:
            row = sp.spectral_row(groups, rasters, lat_f, lat_c, len(src))
            if cacheable:
                save_verified_npz(path, labels=np.array(labels), row=row, exposure=np.array(exposure),
                                  scalars=np.array([city_area, rop_area]))
        t_adj += time.perf_counter() - t1
        results.append(ReceptorResult(geom.city_id, labels, row, exposure, city_area, rop_area,
                                      from_cache=c is not None, timings={"raster_s": 0.0, "adjoint_s": 0.0,
                                                                         "fields_s": 0.0, "receptor_s": 0.0}))
        if with_fields:
            sp.add_part_fields(sum_f, sum_c, groups, rasters, np.atleast_2d(np.asarray(p.q, dtype=float)),
                               p.unit_weight, k_city, k_rop)
    fields = None
    if with_fields:
        j0, i0, nj, ni = block
        out = sum_f.fields()
        if not sum_c.empty:
            fc = sum_c.fields()  # the block and its ring: the lattice's receptor window
            out += np.einsum("yj,bji,xi->byx", Ay, fc, Ax, optimize=True)
        fields = {"grid": fine, "city_fraction": city, "exposure_weight": weight, "unit_city": out[ns],
                  "unit_rop": out[ns + 1], "pm25": out[:ns]}
    results[0].timings.update({"raster_s": t_raster, "adjoint_s": t_adj,
                               "fields_s": time.perf_counter() - t0 - t_raster - t_adj,
                               "receptor_s": time.perf_counter() - t0})
    return results, fields


def _lattice_spectra(memo, fine, coarse, block):
    """The city's :class:`engine.dispersion.spectra.LatticeSpectra` (fine, coarse), memoised in ``memo``:
    the fine lattice with the normalised receptor weights, the coarse one with their restriction
    ``Ay.T wn Ax`` (:func:`_adjoint_row`)."""
    if "spectra" not in memo:
        j0, i0, nj, ni = block
        wc = np.zeros(coarse.shape)
        wc[j0 - 1:j0 + nj + 1, i0 - 1:i0 + ni + 1] = memo["Ay"].T @ memo["wn"] @ memo["Ax"]
        # the half width a kernel at least as wide as the lattice is cut to (narrower ones are framed
        # by zeros: engine.dispersion.spectra.KernelSpectra)
        memo["spectra"] = (sp.LatticeSpectra(fine.shape, max(fine.shape) - 1, memo["wn"]),
                           sp.LatticeSpectra(coarse.shape, max(coarse.shape) - 1, wc,
                                             window=(j0 - 1, nj + 2, i0 - 1, ni + 2)))
    return memo["spectra"]


def _receptor_rasters(geom, src, fine, coarse, block, population, subsamples):
    """Source rasters (fine window or None, coarse window or None) and receptor weights of a city."""
    own_city, own_rop = f"c{geom.city_id}", f"r{geom.province_id}"
    city = geo.coverage_fraction(fine, geom.footprint, subsamples=subsamples)
    rasters = []
    for s in src:
        if s.label == own_city:
            rasters.append(((0, 0, city), None))
        elif s.label == own_rop:
            near = geo.coverage_fraction(fine, s.shape, subsamples=subsamples)
            outside = np.ones(coarse.shape, dtype=bool)
            j0, i0, nj, ni = block
            outside[j0:j0 + nj, i0:i0 + ni] = False
            far = geo.coverage_fraction(coarse, s.shape, subsamples=subsamples, mask=outside)
            rasters.append(((0, 0, near), (0, 0, far) if far.any() else None))
        else:
            rasters.append((_window(fine, s.shape, subsamples=subsamples),
                            _window(coarse, s.shape, subsamples=subsamples, exclude=block)))
    weight, exposure = fl.exposure_weights(fine, city, population)
    j0, i0, nj, ni = block
    return {"city": city, "rasters": rasters, "weight": weight, "exposure": exposure,
            "wn": weight / weight.sum(),
            "Ay": bilinear_matrix(coarse.y[j0 - 1], coarse.spacing_m, fine.y, nj + 2),
            "Ax": bilinear_matrix(coarse.x[i0 - 1], coarse.spacing_m, fine.x, ni + 2)}

# --------------------------------------------------------------------------- mosaic
def mosaic_values(grid, city_fraction, values, spec):
    """A city's fields averaged into the national mosaic cells its grid touches.

    Parameters
    ----------
    grid : CityGrid
    city_fraction : (ny, nx)
    values : (n, ny, nx)   fields to average (e.g. one per scenario)
    spec : engine.dispersion.fields.MosaicSpec

    Returns
    -------
    dict with ``index`` (flat mosaic cell index), ``values`` (n, n_cells) means of the fine
    cells in each mosaic cell, ``coverage`` (mean city fraction) and ``distance_m`` (mosaic
    cell centre to the city centre).
    """
    lat, lon = grid.latlon()
    j = np.floor((lat - (spec.lat_first - spec.step_deg / 2)) / spec.step_deg).astype(np.int64)
    i = np.floor((lon - (spec.lon_first - spec.step_deg / 2)) / spec.step_deg).astype(np.int64)
    ok = (j >= 0) & (j < spec.nlat) & (i >= 0) & (i < spec.nlon)
    flat = (j * spec.nlon + i)[ok]
    uniq, inv = np.unique(flat, return_inverse=True)
    cnt = np.bincount(inv).astype(float)
    vals = np.stack([np.bincount(inv, weights=v[ok]) / cnt for v in np.asarray(values)])
    cj, ci = uniq // spec.nlon, uniq % spec.nlon
    dist = geo.great_circle_distance_m(grid.lat0, grid.lon0, spec.lat[cj], spec.lon[ci])
    return {"index": uniq, "values": vals, "coverage": np.bincount(inv, weights=city_fraction[ok]) / cnt,
            "distance_m": dist}


def merge_mosaic_values(contributions, spec):
    """Owner of every mosaic cell and its values (the owner's means), as
    the national mosaic: largest footprint coverage, then nearest centre, then
    smallest city_id -- a total order, independent of the order cities finish in.

    Returns
    -------
    owner : (nlat, nlon) int64, -1 where no city grid reaches
    values : (n, nlat, nlon) float, NaN where owner is -1
    """
    n = spec.nlat * spec.nlon
    owner = np.full(n, -1, dtype=np.int64)
    cov = np.full(n, -np.inf)
    dist = np.full(n, np.inf)
    nv = next(iter(contributions.values()))["values"].shape[0] if contributions else 0
    vals = np.full((nv, n), np.nan)
    for cid in sorted(contributions):
        c = contributions[cid]
        idx = c["index"]
        better = (c["coverage"] > cov[idx]) | ((c["coverage"] == cov[idx]) & (c["distance_m"] < dist[idx]))
        better |= (c["coverage"] == cov[idx]) & (c["distance_m"] == dist[idx]) & (cid < owner[idx])
        sel = idx[better]
        owner[sel] = cid
        cov[sel] = c["coverage"][better]
        dist[sel] = c["distance_m"][better]
        vals[:, sel] = c["values"][:, better]
    return owner.reshape(spec.nlat, spec.nlon), vals.reshape(nv, spec.nlat, spec.nlon)
