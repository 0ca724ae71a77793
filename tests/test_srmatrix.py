"""The source-receptor matrix: adjoint = forward, non-negative, linear; 'own' = the old model."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import synthetic_nation as sn
from engine.dispersion import fields as fl
from engine import pipeline as pl
from engine.config import load_config
from engine.data.dataset import NationalData


def _many_city_nation():
    """Province A: 7 cities around a centre (one on the border); province B beside it: 3 cities."""
    rows = [(130100, 130000, 38.00, 115.00, 300.0), (130200, 130000, 38.34, 115.00, 200.0),
            (130300, 130000, 37.80, 115.25, 120.0), (130400, 130000, 38.15, 114.70, 90.0),
            (130500, 130000, 37.70, 114.80, 150.0), (130600, 130000, 38.05, 115.30, 60.0),
            (130700, 130000, 38.25, 115.20, 40.0),
            (410100, 410000, 37.30, 115.60, 250.0), (410200, 410000, 37.10, 115.90, 150.0),
            (410300, 410000, 37.45, 116.05, 80.0)]
    c = pd.DataFrame(rows, columns=["city_id", "province_id", "centroid_lat", "centroid_lon", "area_km2"])
    c["name"] = [f"City-{i}" for i in c.city_id]
    c["province"] = np.where(c.province_id == 130000, "PA", "PB")
    c["population"] = 1_000_000
    p = pd.DataFrame({"province_id": [130000, 410000], "name": ["PA", "PB"], "name_en": ["Province A", "Province B"],
                      "centroid_lat": [38.0, 37.25], "centroid_lon": [115.0, 115.85], "area_km2": [9000.0, 5000.0],
                      "population": [8_000_000, 4_000_000]})
    ci, pi = c.set_index("city_id"), p.set_index("province_id")
    rop = pi[["area_km2"]] - ci.groupby("province_id")[["area_km2"]].sum()
    return NationalData(cities=ci, provinces=pi, rop=rop, grids=pd.DataFrame({"grid_region": ["G"]}),
                        source="synthetic")


def _prep(tmp_path, source_set, data=None):
    cfg = load_config(sn.write_configs(tmp_path / f"cfg-{source_set}"),
                      overrides={"dispersion": {"source_set": source_set, "source_reach_km": 150.0}})
    return pl.prepare(cfg, data=data or _many_city_nation())


def _q(prep, rng, n=3):
    q = rng.uniform(0.2, 3.0, (n, len(prep.sources))) * 1e-7  # g m-2 s-1
    return xr.Dataset({"q": (("scenario", "source"), q)},
                      coords={"scenario": [f"s{k}" for k in range(n)], "source": prep.source_labels})


@pytest.fixture(scope="module")
def nation_pass(tmp_path_factory):
    prep = _prep(tmp_path_factory.mktemp("sr"), "nation")
    q = _q(prep, np.random.default_rng(7))
    res, _ = pl.receptor_pass(prep, q=q, use_cache=False, quiet=True, workers=1)
    return prep, q, res


def test_adjoint_equals_forward_with_many_sources(nation_pass):
    prep, q, res = nation_pass
    qa = q["q"].values
    n_checked = 0
    for cid, r in res.items():
        idx = [prep.source_labels.index(lab) for lab in r.labels]
        assert len(idx) >= 9  # its province's 7 cities, its ROP, and the other province's sources
        w = r.exposure_weight / r.exposure_weight.sum()
        forward = np.einsum("syx,yx->s", r.pm25, w)      # weighted mean of the forward field
        adjoint = qa[:, idx] @ r.row                      # row of S @ q
        np.testing.assert_allclose(adjoint, forward, rtol=1e-9, atol=0)
        n_checked += 1
    assert n_checked == 10


def test_rows_are_non_negative_and_sources_beyond_the_province_count(nation_pass):
    prep, q, res = nation_pass
    S = pl.sr_dataset(prep, res)
    assert (S.S.values >= 0).all()
    # a city of province A near province B sees B's cities; the far side of A sees less of them
    near, far = S.S.sel(city=130300, source="c410100"), S.S.sel(city=130400, source="c410100")
    assert float(near) > 0 and float(near) > float(far)
    # a source far from the receptor contributes less than one near it
    assert float(S.S.sel(city=130100, source="c130700")) > float(S.S.sel(city=130100, source="c410300"))


def test_own_reproduces_the_city_and_rop_fields_of_the_previous_model(tmp_path):
    prep = _prep(tmp_path, "own", data=sn.nation())
    S = pl.sr_matrix(prep, use_cache=False, quiet=True, workers=1)
    plan = fl.kernel_plan({c: prep.geometries[c] for c in prep.selected},
                          {c: prep.met_specs[c].digest for c in prep.selected})
    from engine.dispersion import climatology as clim

    met = clim.load_met(next(iter(prep.met_specs.values())))
    kern = {k[1]: fl.compute_kernel(spec, met, use_cache=False) for k, spec in plan.items()}
    for cid in prep.selected:
        cf = fl.compute_city_field(prep.geometries[cid], kern["fine"], kern["coarse"])
        g = prep.geometries[cid]
        assert float(S.S.sel(city=cid, source=f"c{cid}")) == pytest.approx(cf.mean_city, rel=1e-12)
        assert float(S.S.sel(city=cid, source=f"r{g.province_id}")) == pytest.approx(cf.mean_rop, rel=1e-12)
        assert int(S.seen.sel(city=cid).sum()) == 2
    # the gridded unit fields too (batched FFT convolution vs the previous per-field one)
    q = _q(prep, np.random.default_rng(5), n=2)
    res, _ = pl.receptor_pass(prep, q=q, use_cache=False, quiet=True, workers=1)
    for cid in prep.selected:
        cf = fl.compute_city_field(prep.geometries[cid], kern["fine"], kern["coarse"])
        for new, old in ((res[cid].unit_city, cf.unit_city), (res[cid].unit_rop, cf.unit_rop)):
            np.testing.assert_allclose(new, old, rtol=0, atol=1e-9 * old.max())


def test_source_sets_nest(tmp_path):
    conc = {}
    for ss in ("own", "province", "nation"):
        prep = _prep(tmp_path, ss)
        S = pl.sr_matrix(prep, use_cache=False, quiet=True, workers=1)
        q = _q(prep, np.random.default_rng(3), n=1)
        conc[ss] = pl.superpose(S, q).conc_ug_m3.values
    assert (conc["own"] < conc["province"]).all()     # every city has neighbours in its province
    assert (conc["province"] <= conc["nation"]).all()
    assert (conc["province"] < conc["nation"]).any()


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0.0, 10.0), b=st.floats(0.0, 10.0), seed=st.integers(0, 2**31 - 1))
def test_superposition_is_linear(nation_pass, a, b, seed):
    prep, _, res = nation_pass
    S = pl.sr_dataset(prep, res)
    rng = np.random.default_rng(seed)
    q1, q2 = _q(prep, rng, 2), _q(prep, rng, 2)
    both = q1.copy(data={"q": a * q1.q.values + b * q2.q.values})
    lhs = pl.superpose(S, both)
    c1, c2 = pl.superpose(S, q1), pl.superpose(S, q2)
    for v in lhs.data_vars:
        np.testing.assert_allclose(lhs[v].values, a * c1[v].values + b * c2[v].values, rtol=1e-12, atol=1e-300)
    parts = sum(lhs[v] for v in lhs.data_vars if v != "conc_ug_m3")
    np.testing.assert_allclose(parts.values, lhs.conc_ug_m3.values, rtol=1e-12)


def test_superpose_takes_a_sample_axis(nation_pass):
    # a sweep evaluates S @ Q for many emission vectors at once
    prep, _, res = nation_pass
    S = pl.sr_dataset(prep, res)
    Q = xr.DataArray(np.random.default_rng(1).uniform(0, 1e-6, (50, len(prep.sources))),
                     dims=("sample", "source"), coords={"source": prep.source_labels})
    c = pl.superpose(S, Q).conc_ug_m3
    assert c.sizes == {"city": 10, "sample": 50}
    np.testing.assert_allclose(c.transpose("sample", "city").values, Q.values @ S.S.values.T, rtol=1e-12)


def test_engine_run_returns_a_dataset_and_writes_nothing(tmp_path, monkeypatch):
    import engine

    monkeypatch.chdir(tmp_path)
    cfg = load_config(sn.write_configs(tmp_path / "cfg"))
    ds = engine.run(cfg, data=sn.nation(), carbon_fn=sn.carbon_fn(), age_population_fn=sn.age_population_fn,
                    quiet=True, cities="PA")
    assert ds.conc_ug_m3.dims == ("scenario", "city")
    assert list(ds.city.values) == [130100, 130200]
    assert ds.S.dims == ("city", "source") and ds.S.attrs["units"] == "ug m-3 (g m-2 s-1)-1"
    assert {"avoided_deaths_mean", "conc_from_other_cities_ug_m3", "national_avoided_deaths_mean"} <= set(ds)
    np.testing.assert_allclose(ds.conc_ug_m3.values,
                               pl.superpose(ds[["S"]].assign_coords(city_province=("city", [130000, 130000])),
                                            ds[["q"]]).conc_ug_m3.transpose("scenario", "city").values, rtol=1e-12)
    assert list(tmp_path.iterdir()) == [tmp_path / "cfg"]  # nothing written


def test_no_cache_recomputes_transfer_kernels(tmp_path, monkeypatch):
    seen = []
    for name in ("compute_kernel", "compute_kernels"):  # per kernel, or per family (the run's path)
        real = getattr(fl, name)

        def spy(*a, _real=real, **k):
            seen.append(k.get("use_cache"))
            return _real(*a, **k)

        monkeypatch.setattr(fl, name, spy)
    prep = _prep(tmp_path, "own", data=sn.nation())
    pl.sr_matrix(prep, use_cache=False, quiet=True, workers=1)
    assert seen and not any(seen)


def test_percentage_high_high_and_r2_follow_the_paper_definition():
    # hand-made: 4 cities; percentage cuts vs absolute cuts rank differently
    base_co2 = np.array([100.0, 1000.0, 50.0, 400.0])
    scen_co2 = np.array([70.0, 900.0, 30.0, 380.0])       # % cut: 30, 10, 40, 5 -> mean 21.25
    pct = pl._pct(base_co2, scen_co2)
    np.testing.assert_allclose(pct, [30.0, 10.0, 40.0, 5.0])
    assert np.isnan(pl._pct(np.array([0.0]), np.array([0.0]))[0])
    assert pl.r_squared([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert np.isnan(pl.r_squared([1, 1, 1], [1, 2, 3]))
