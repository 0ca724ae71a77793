"""The spectral per-city pass (engine.dispersion.spectra, srmatrix.compute_receptor_parts).

A receptor city with seasons, emission-height classes and urban node kernels has many parts;
the spectral pass computes each spectrum once and sums the parts' fields before one inverse
transform. It must equal the former pass -- one ``compute_receptor`` per part, then
``_combine_parts`` (kept as ``parts_method = "per_part"``) -- to round-off: rows of every
season and class, the unit fields, the scenario fields and the mosaic; and it must read and
write the same row-cache entries, one per (season, height class, urban variant).
"""

import numpy as np
import pytest
import xarray as xr

import synthetic_nation as sn
from engine import parallel
from engine import pipeline as pl
from engine.commands.run import _mosaic_spec
from engine.config import load_config
from engine.dispersion import fields as fl
from engine.dispersion import spectra as sp
from engine.dispersion import srmatrix as srm
from kernels.convolve import convolve_direct

RTOL = 1e-10
_RUN_TASKS = parallel.run_tasks  # the real one (the passes below wrap it)


# --------------------------------------------------------------------------- spectra against direct sums
def _kernel(n, rng, zeros=False):
    k = rng.uniform(0.1, 1.0, (2 * n + 1, 2 * n + 1))
    if zeros:  # a kernel with a dead sector and a far rim of zeros (the support mask)
        k[:, :n - 1] = 0.0
        k[:2, :] = 0.0
    return k


@pytest.mark.parametrize("zeros", [False, True])
@pytest.mark.parametrize("shape,n", [((7, 5), 9), ((12, 12), 11), ((4, 9), 8)])
def test_adjoint_maps_are_the_flipped_kernel_correlation(shape, n, zeros):
    """LatticeSpectra.adjoint_maps = same_convolution(flip(K), w), the former adjoint, here with the
    direct gather sum (no FFT) as the reference; cells no kernel cell reaches are exactly 0."""
    rng = np.random.default_rng(1)
    w = rng.uniform(0.0, 1.0, shape)
    w[0, :] = 0.0
    kernels = [_kernel(n, rng, zeros), _kernel(n, rng)]
    lat = sp.LatticeSpectra(shape, sp.half_width(shape, kernels[0]), w)
    maps = lat.adjoint_maps(kernels, cache=sp.KernelSpectra())
    for k, g in zip(kernels, maps):
        ref = fl.same_convolution(np.ascontiguousarray(k[::-1, ::-1]), w,
                                  convolve_fn=lambda a, b: convolve_direct(a, b))
        np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-14 * ref.max())
        assert np.array_equal(g == 0.0, ref == 0.0)


def test_field_sum_is_the_sum_of_same_convolutions():
    """FieldSum over parts, emission spectra from source spectra (few sources) or from the grids
    (many), equals the sum of srmatrix.same_convolution_batch over the parts."""
    rng = np.random.default_rng(2)
    shape, n = (9, 11), 12
    rasters = [(1, 2, rng.uniform(0, 1, (3, 4))), (0, 0, rng.uniform(0, 1, shape)), (5, 6, rng.uniform(0, 1, (4, 5)))]
    rasters += [(j, j, rng.uniform(0, 1, (2, 2))) for j in range(sp.FEW_SOURCES + 1)]
    lat = sp.LatticeSpectra(shape, sp.half_width(shape, np.zeros((2 * n + 1, 2 * n + 1))), np.ones(shape))
    acc = sp.FieldSum(lat, 3)
    ref = np.zeros((3,) + shape)
    for members in (rasters[:3], rasters):  # few sources, then more than FEW_SOURCES
        k = _kernel(n, rng)
        coef = rng.uniform(0, 2, (3, len(members)))
        acc.add(k, lat.emission_spectrum(coef, list(enumerate(members))), cache=sp.KernelSpectra())
        grids = np.zeros((3,) + shape)
        for c, (a, b, m) in zip(coef.T, members):
            grids[:, a:a + m.shape[0], b:b + m.shape[1]] += c[:, None, None] * m
        ref += srm.same_convolution_batch(k, grids)
    np.testing.assert_allclose(acc.fields(), ref, rtol=1e-12)


@pytest.mark.parametrize("window", [(3, 4, 5, 3), (0, 2, 0, 3), (10, 4, 13, 4), (0, 14, 0, 17), (6, 8, 0, 17)],
                         ids=["middle", "corner", "far-corner", "whole", "band"])
@pytest.mark.parametrize("zeros", [False, True])
def test_receptor_window_pads_only_what_it_reads(window, zeros):
    """A coarse lattice whose receptors are a block: the transforms padded to the overlap-save
    bound (engine.dispersion.spectra.window_padding) give, on the block, the adjoint maps and the
    fields of the fully padded linear convolution (direct sums as the reference), with smaller
    transforms for a block inside the lattice."""
    rng = np.random.default_rng(11)
    shape, n = (14, 17), 20
    ay, by, ax, bx = window
    w = np.zeros(shape)
    w[ay:ay + by, ax:ax + bx] = rng.uniform(0.1, 1.0, (by, bx))
    k = _kernel(n, rng, zeros)
    h = sp.half_width(shape, k)
    lat = sp.LatticeSpectra(shape, h, w, window=window)
    whole = sp.fft_shape(shape, h)  # the whole linear convolution's padding (n + 2h)
    assert lat.fshape[0] * lat.fshape[1] < whole[0] * whole[1]
    if by < shape[0] // 2:  # a block inside the lattice pads less than the whole lattice's window
        inner = sp.LatticeSpectra(shape, h, np.ones(shape)).fshape
        assert lat.fshape[0] * lat.fshape[1] <= inner[0] * inner[1]
    direct = lambda a, b: convolve_direct(a, b)  # noqa: E731
    g = lat.adjoint_maps([k], cache=sp.KernelSpectra())[0]
    ref = fl.same_convolution(np.ascontiguousarray(k[::-1, ::-1]), w, convolve_fn=direct)
    np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-13 * ref.max())
    assert np.array_equal(g == 0.0, ref == 0.0)
    e = rng.uniform(0.0, 1.0, shape)  # sources anywhere on the lattice
    acc = sp.FieldSum(lat, 1)
    acc.add(k, lat.emission_spectrum(np.ones((1, 1)), [(0, (0, 0, e))]), cache=sp.KernelSpectra())
    ref_f = srm.same_convolution_batch(k, e[None])[0][ay:ay + by, ax:ax + bx]
    np.testing.assert_allclose(acc.fields()[0], ref_f, rtol=1e-12, atol=1e-13 * ref_f.max())
    with pytest.raises(ValueError, match="outside the receptor window"):
        sp.LatticeSpectra(shape, h, np.ones(shape), window=window) if by * bx < w.size else \
            sp.LatticeSpectra(shape, h, w, window=(0, 1, 0, 1))


def test_lattices_that_pad_alike_cut_the_kernel_alike_and_share_its_spectrum():
    """The kernel is cut as wide as the padded shape allows (engine.dispersion.spectra.LatticeSpectra):
    two coarse lattices of different sizes and receptor blocks whose transforms pad to the same
    shape take the same cut, so the second reuses the first's kernel spectrum, and both still give
    the fully padded linear convolution (direct sums as the reference) on their blocks."""
    rng = np.random.default_rng(17)
    k = _kernel(40, rng)
    store = sp.KernelSpectra()
    lats = []
    for shape, window in (((30, 33), (10, 6, 12, 7)), ((31, 30), (12, 5, 9, 8))):
        ay, by, ax, bx = window
        w = np.zeros(shape)
        w[ay:ay + by, ax:ax + bx] = rng.uniform(0.1, 1.0, (by, bx))
        lat = sp.LatticeSpectra(shape, max(shape) - 1, w, window=window)
        (py, px), h = lat.fshape, lat.h
        # the cut's bounds: room for it, no wrap-around onto a read cell, at least the need
        assert 2 * h + 1 <= min(py, px) and h + max(shape[0] - ay, ay + by) <= py and h + max(shape[1] - ax, ax + bx) <= px
        assert h >= max(shape[0] - 1 - ay, ay + by - 1, shape[1] - 1 - ax, ax + bx - 1)
        g = lat.adjoint_maps([k], cache=store)[0]
        ref = fl.same_convolution(np.ascontiguousarray(k[::-1, ::-1]), w, convolve_fn=convolve_direct)
        np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-13 * ref.max())
        e = rng.uniform(0.0, 1.0, shape)
        acc = sp.FieldSum(lat, 1)
        acc.add(k, lat.emission_spectrum(np.ones((1, 1)), [(0, (0, 0, e))]), cache=store)
        ref_f = srm.same_convolution_batch(k, e[None])[0][ay:ay + by, ax:ax + bx]
        np.testing.assert_allclose(acc.fields()[0], ref_f, rtol=1e-12, atol=1e-13 * ref_f.max())
        lats.append(lat)
    assert lats[0].fshape == lats[1].fshape and lats[0].h == lats[1].h
    assert store.misses == 1 and store.hits == 3  # one spectrum for both lattices' adjoint and fields


def test_spectral_products_summed_in_place_equal_numpy():
    """kernels.spectral: K * E[f] and K * sum_j coef[f, j] S[j] added to the fields rows[f] (in any
    order, fields not named untouched) equal the NumPy products to round-off."""
    from kernels import spectral as ks

    rng = np.random.default_rng(23)
    shape = (12, 7)
    c = lambda *s: rng.normal(size=s) + 1j * rng.normal(size=s)  # noqa: E731
    total, k, e, src = c(5, *shape), c(*shape), c(3, *shape), c(4, *shape)
    coef = rng.uniform(0, 2, (3, 4))
    rows = np.array([4, 0, 2])
    ref = total.copy()
    ref[rows] += k * e
    got = total.copy()
    ks.add_products(got, rows, k, e)
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-14)
    assert np.array_equal(got[[1, 3]], total[[1, 3]])
    ref2 = ref.copy()
    ref2[rows] += k * np.einsum("fj,jab->fab", coef, src)
    ks.add_combined_products(got, rows, k, coef, src)
    np.testing.assert_allclose(got, ref2, rtol=1e-13, atol=1e-13)
    assert np.array_equal(got[[1, 3]], total[[1, 3]])


def test_kernel_spectra_store_is_bounded_and_keyed_by_identity():
    rng = np.random.default_rng(3)
    k1, k2 = _kernel(4, rng), _kernel(4, rng)
    one = np.fft.rfft2(k1, s=(16, 16)).nbytes
    store = sp.KernelSpectra(max_bytes=int(1.5 * one))
    s1, sup = store.get(k1, 4, (16, 16))
    assert sup is None and store.get(k1, 4, (16, 16))[0] is s1 and store.hits == 1
    store.get(k2, 4, (16, 16))  # evicts k1 (the bound holds one spectrum)
    assert store.get(k1, 4, (16, 16))[0] is not s1 and store.misses == 3
    np.testing.assert_array_equal(store.get(k1, 4, (18, 16))[0], np.fft.rfft2(k1, s=(18, 16)))


def test_kernels_with_one_support_mask_share_its_spectrum_and_zero_cells():
    """Two kernels with the same zero cells get one support spectrum (compared by the mask, not by the
    values); a different mask gets its own; the adjoint maps, which find the unreached cells once per
    support, equal those of kernels transformed in separate stores."""
    rng = np.random.default_rng(11)
    n, shape = 6, (9, 7)
    a, b = _kernel(n, rng, zeros=True), _kernel(n, rng, zeros=True)
    other = a.copy()
    other[-1, :] = 0.0  # one more row of zeros: another mask
    store = sp.KernelSpectra()
    w = rng.uniform(0.0, 1.0, shape)
    lat = sp.LatticeSpectra(shape, sp.half_width(shape, a), w)
    (_, sa), (_, sb), (_, so) = (lat.kernel(k, store) for k in (a, b, other))
    assert sa is sb and so is not sa
    np.testing.assert_array_equal(sa, sp.rfft2_window((a[n - lat.h:n + lat.h + 1, n - lat.h:n + lat.h + 1] != 0)
                                                      .astype(float), 0, 0, lat.fshape))
    maps = lat.adjoint_maps([a, b, other], cache=store)
    assert len(lat._zero_cells) == 2  # one per distinct support
    for k, g in zip((a, b, other), maps):
        alone = sp.LatticeSpectra(shape, sp.half_width(shape, a), w).adjoint_maps([k], cache=sp.KernelSpectra())[0]
        assert np.array_equal(g, alone)
    store.clear()
    assert not store._supports


def test_a_narrower_kernel_is_its_own_convolution():
    """A kernel narrower than the lattice's half width (framed by zeros) gives the former adjoint
    and forward convolution with that kernel (direct sums as the reference)."""
    rng = np.random.default_rng(5)
    shape, wide, narrow = (8, 8), _kernel(9, rng), _kernel(3, rng)
    w = rng.uniform(0, 1, shape)
    lat = sp.LatticeSpectra(shape, sp.half_width(shape, wide), w)
    direct = lambda a, b: convolve_direct(a, b)  # noqa: E731
    g = lat.adjoint_maps([narrow], cache=sp.KernelSpectra())[0]
    ref = fl.same_convolution(np.ascontiguousarray(narrow[::-1, ::-1]), w, convolve_fn=direct)
    np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-14 * ref.max())
    assert np.array_equal(g == 0.0, ref == 0.0)
    acc = sp.FieldSum(lat, 1)
    acc.add(narrow, lat.emission_spectrum(np.ones((1, 1)), [(0, (0, 0, w))]), cache=sp.KernelSpectra())
    np.testing.assert_allclose(acc.fields()[0], srm.same_convolution_batch(narrow, w[None])[0], rtol=1e-12,
                               atol=1e-14)


# --------------------------------------------------------------------------- the pass, both ways
def _urban_nation():
    """sn.nation with urban populations; Border-B (100,000 on 150 km2 = 667 km-2) stays rural."""
    d = sn.nation()
    c = d.cities.copy()
    c.loc[410200, "population"] = 100_000
    c["urban_population"] = [2_500_000, 700_000, 9_000_000, 60_000]
    return type(d)(cities=c, provinces=d.provinces, rop=d.rop, grids=d.grids, source=d.source)


def _q(prep, rng):
    """Random emissions of two scenarios, random season and height shares (each summing to 1)."""
    ns, nsrc, nh, nse = 2, len(prep.sources), len(prep.height_classes), len(prep.seasons)
    hs = rng.uniform(0.1, 1.0, (nh, ns, nsrc))
    jh = rng.uniform(0.1, 1.0, (nse, nh, ns, nsrc))
    ss = rng.uniform(0.1, 1.0, (nse, ns, nsrc))
    coords = {"scenario": ["base", "cut"], "source": prep.source_labels, "season": list(prep.seasons),
              "height": list(prep.height_classes)}
    return xr.Dataset({"q": (("scenario", "source"), rng.uniform(0.2, 3.0, (ns, nsrc)) * 1e-7),
                       "height_share": (("height", "scenario", "source"), hs / hs.sum(0)),
                       "season_share": (("season", "scenario", "source"), ss / ss.sum(0)),
                       "season_height_share": (("season", "height", "scenario", "source"), jh / jh.sum((0, 1)))},
                      coords=coords)


def _kernel_fn(met, *, cell_size_m, spacing_m, n_half, release_height_m, initial_sigma_z_m, urban_population=0.0,
               **_):
    """A cheap stand-in for the period kernel (the two passes' equality does not depend on the
    physics): non-negative, asymmetric, different per met (season), release height, spacing and
    urban population, and for ground-level release zero upwind beyond two cells (the support
    mask of the former convolution)."""
    w = np.asarray(met.weight, dtype=float)
    tilt = float(np.dot(w, np.arange(w.size)) / max(w.sum(), 1e-300) / max(w.size, 1))
    y, x = np.mgrid[-n_half:n_half + 1, -n_half:n_half + 1] * spacing_m
    r = np.hypot(x, y) + 0.5 * spacing_m + initial_sigma_z_m
    length = 4000.0 * (1.0 + tilt) + 30.0 * release_height_m + 2e-3 * np.sqrt(urban_population)
    k = np.exp(-r / length) / r * (1.0 + 0.6 * (x > 0) + tilt * (y > 0))
    if release_height_m == 0.0:
        k[x < -2 * spacing_m] = 0.0
    return k


def _pass(prep, q, mosaic, method, monkeypatch, use_cache=False):
    def run_tasks(fn, items, shared=None, **kw):
        shared["options"]["parts_method"] = method
        return _RUN_TASKS(fn, items, shared=shared, **kw)

    monkeypatch.setattr(parallel, "run_tasks", run_tasks)
    res, _ = pl.receptor_pass(prep, q=q, mosaic=mosaic, use_cache=use_cache, quiet=True, workers=1,
                              kernel_fn=_kernel_fn)
    return res


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("COBENEFITS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        cfg = load_config(sn.write_configs(tmp_path_factory.mktemp("cfg"), extra_met='climatology = "default"',
                                           urban=None, emission_heights="sector"),
                          overrides={"dispersion": {"source_set": "province", "urban": "auto"}})
        prep = pl.prepare(cfg, data=_urban_nation())
        q = _q(prep, np.random.default_rng(7))
        mosaic = _mosaic_spec(prep, 0.05)
        out = {m: _pass(prep, q, mosaic, m, mp) for m in ("per_part", "spectral")}
        out["stats"] = sp.KERNEL_SPECTRA.stats()
        yield prep, q, mosaic, out
    finally:
        mp.undo()


def _close(a, b, what):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, what
    np.testing.assert_allclose(b, a, rtol=RTOL, atol=RTOL * np.abs(a).max(), err_msg=what)


def test_the_case_has_seasons_heights_and_urban_and_rural_cities(both):
    prep, _, _, _ = both
    assert len(prep.seasons) >= 2 and len(prep.height_classes) == 4
    urban = pl._urban_classes(prep)
    assert urban[410200] == 0.0 and all(urban[c] > 0 for c in (130100, 130200, 410100))


def test_spectral_pass_equals_per_part_pass(both):
    prep, _, _, out = both
    a, b = out["per_part"], out["spectral"]
    assert out["stats"]["masked"] > 0 and out["stats"]["hits"] > 0, out["stats"]  # the support mask and the store were used
    for c in prep.selected:
        for k in ("row", "season_rows", "height_rows", "season_height_rows", "unit_city", "unit_rop", "pm25",
                  "city_fraction", "exposure_weight"):
            _close(getattr(a[c], k), getattr(b[c], k), f"{c} {k}")
        assert a[c].labels == b[c].labels and a[c].exposure == b[c].exposure
        assert (a[c].city_area_km2, a[c].rop_area_km2) == (b[c].city_area_km2, b[c].rop_area_km2)
        np.testing.assert_array_equal(a[c].mosaic["index"], b[c].mosaic["index"])
        _close(a[c].mosaic["values"], b[c].mosaic["values"], f"{c} mosaic")
        assert a[c].grid.key() == b[c].grid.key()
        # every class and season is non-trivial (a zero part would hide a missing term)
        assert (b[c].season_height_rows.sum(-1) > 0).all() and (b[c].pm25 > 0).all()
    owner_a, va = srm.merge_mosaic_values({c: a[c].mosaic for c in prep.selected}, both[2])
    owner_b, vb = srm.merge_mosaic_values({c: b[c].mosaic for c in prep.selected}, both[2])
    np.testing.assert_array_equal(owner_a, owner_b)
    _close(np.nan_to_num(va), np.nan_to_num(vb), "national mosaic")


def test_row_cache_is_shared_and_separates_every_part(both, tmp_path, monkeypatch):
    """The spectral pass writes one row per (city, season, height class) -- distinct keys, the urban
    variant in each -- and the per-part pass reads them back (and vice versa)."""
    prep, q, mosaic, out = both
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "c1"))
    first = _pass(prep, q, mosaic, "spectral", monkeypatch, use_cache=True)
    n_parts = len(prep.seasons) * len(prep.height_classes)
    assert len(list((tmp_path / "c1" / "sr").glob("*.npz"))) == len(prep.selected) * n_parts
    assert not any(r.from_cache for r in first.values())
    again = _pass(prep, q, mosaic, "per_part", monkeypatch, use_cache=True)
    assert all(r.from_cache for r in again.values())
    for c in prep.selected:
        _close(first[c].season_height_rows, again[c].season_height_rows, f"{c} cached rows")
        _close(out["per_part"][c].pm25, again[c].pm25, f"{c} fields with cached rows")
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "c2"))
    _pass(prep, q, mosaic, "per_part", monkeypatch, use_cache=True)
    back = _pass(prep, q, mosaic, "spectral", monkeypatch, use_cache=True)
    assert all(r.from_cache for r in back.values())
    # rural run: other keys than the urban run's
    cfg = load_config(sn.write_configs(tmp_path / "cfg", extra_met='climatology = "default"', urban=False,
                                       emission_heights="sector"), overrides={"dispersion": {"source_set": "province"}})
    rural = pl.prepare(cfg, data=_urban_nation())
    res = _pass(rural, q, mosaic, "spectral", monkeypatch, use_cache=True)
    assert not any(r.from_cache for r in res.values())


def test_rows_only_pass_equals_the_rows_of_the_fields_pass(both, monkeypatch):
    prep, _, _, out = both
    def run_tasks(fn, items, shared=None, **kw):
        shared["options"]["parts_method"] = "spectral"
        return _RUN_TASKS(fn, items, shared=shared, **kw)

    monkeypatch.setattr(parallel, "run_tasks", run_tasks)
    res, _ = pl.receptor_pass(prep, use_cache=False, quiet=True, workers=1, kernel_fn=_kernel_fn)
    for c in prep.selected:
        assert res[c].pm25 is None
        _close(out["per_part"][c].season_height_rows, res[c].season_height_rows, f"{c} rows only")


def test_pruned_transforms_are_numpys():
    rng = np.random.default_rng(4)
    g = rng.uniform(0, 1, (3, 5, 7))
    full = np.zeros((3, 18, 20))
    full[:, 4:9, 6:13] = g
    np.testing.assert_allclose(sp.rfft2_window(g, 4, 6, (18, 20)), np.fft.rfft2(full), rtol=1e-13, atol=1e-13)
    spec = np.fft.rfft2(full)
    rows = np.array([17, 0, 3])
    np.testing.assert_allclose(sp.irfft2_rows(spec, (18, 20), rows), np.fft.irfft2(spec, s=(18, 20))[:, rows],
                               atol=1e-14)
