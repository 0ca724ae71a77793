"""Kernel families (engine.dispersion.fields.compute_kernels) against the per-call kernels.

A family is every transfer kernel of one met and one emission height: fine and coarse lattice,
rural and the urban nodes. Computed together (hour tables once, stack height groups in one
call, pyramid levels shared, rural hours shared by the nodes, urban tables only for the hours
the urban boundary layer can change) each kernel must equal the one
:func:`engine.dispersion.fields.compute_kernel` computes alone (``period_kernel`` per height group,
``split_period_kernel`` per urban node) to round-off.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from engine.dispersion import area
from engine.dispersion import fields as fl
from engine.dispersion import plumerise as pr
from engine.dispersion import urban as ub
from engine.dispersion.met import read_aermet

DATA = Path(__file__).parent / "data" / "aermod"
POPS = (1e8, 1e7, 1e6)


@pytest.fixture(scope="module")
def met24():
    return read_aermet(DATA / "met" / "synth24.sfc", DATA / "met" / "synth24.pfl")


def _family(stack=None, release_height_m=0.0, initial_sigma_z_m=0.0, pops=POPS):
    specs = {}
    for kind, spacing, n in (("fine", 1000.0, 40), ("coarse", 5000.0, 9)):
        base = fl.KernelSpec("m24", spacing, n, release_height_m, initial_sigma_z_m, stack=stack)
        specs[(kind,)] = base
        for p in pops:
            specs[(kind, p)] = dataclasses.replace(base, urban_population=p)
    return specs


def _per_call(specs, met):
    """The former loop: one compute_kernel per spec, urban nodes from the largest population down."""
    ub._RURAL_PARTS.clear()
    order = sorted(specs, key=lambda k: (k[0], -k[1] if len(k) > 1 else -1e300))
    return {k: fl.compute_kernel(specs[k], met, use_cache=False) for k in order}


@pytest.mark.parametrize("stack", [None, pr.Stack(35.0, 8.0, 423.0, 1.2), pr.Stack(100.0, 15.0, 403.0, 4.0)],
                         ids=["ground", "low_stack", "mid_stack"])
def test_family_equals_per_call_kernels(met24, stack, tmp_path, monkeypatch):
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    hs, sz = (2.0, 1.0) if stack is None else (0.0, 0.0)
    specs = _family(stack, hs, sz)
    ref = _per_call(specs, met24)
    got = fl.compute_kernels(specs, met24, use_cache=False)
    assert set(got) == set(specs)
    for k, r in ref.items():
        assert got[k].shape == r.shape
        assert r.max() > 0
        np.testing.assert_allclose(got[k], r, rtol=1e-12, atol=1e-12 * r.max(), err_msg=str(k))
    # urban nodes differ from the rural kernel (the test would not see a node computed as rural)
    assert not np.allclose(got[("fine", 1e6)], got[("fine",)], rtol=1e-6)


def test_rural_ground_family_is_bit_identical(met24, tmp_path, monkeypatch):
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    specs = _family(pops=())
    ref = _per_call(specs, met24)
    got = fl.compute_kernels(specs, met24, use_cache=False)
    for k in specs:
        assert np.array_equal(got[k], ref[k]), k


def test_levels_only_interpolated_from_skip_their_centre(met24, tmp_path, monkeypatch):
    """Wide kernels: the 25 km level is no kernel's own spacing, only interpolated from outside the
    +-32-cell square the 5 km level replaces, so the family leaves its centre (5 cells) out; every
    kernel must still equal the one computed with every level whole (compute_kernel)."""
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    specs = {}
    for kind, spacing, n in (("fine", 1000.0, 200), ("coarse", 5000.0, 45)):
        base = fl.KernelSpec("m24", spacing, n, 2.0, 1.0)
        specs[(kind,)] = base
        specs[(kind, 1e6)] = dataclasses.replace(base, urban_population=1e6)
    levels = {}
    for spec in specs.values():
        fl._exact_levels(spec.n_half, spec.spacing_m, fl.EXACT_HALF_WIDTH, fl.LEVEL_RATIO, levels)
    assert 25000.0 in levels  # the test exercises a level that is only interpolated from
    skipped = []
    real = ub.weighted_kernel

    def spy(tables, weights, cell, spacing, n_half, inner=-1):
        skipped.append((spacing, inner))
        return real(tables, weights, cell, spacing, n_half, inner)

    monkeypatch.setattr(ub, "weighted_kernel", spy)
    got = fl.compute_kernels(specs, met24, use_cache=False)
    assert {sp for sp, inner in skipped if inner >= 0} == {25000.0}
    monkeypatch.setattr(ub, "weighted_kernel", real)
    ref = _per_call(specs, met24)
    for k, r in ref.items():
        assert np.isfinite(got[k]).all()
        np.testing.assert_allclose(got[k], r, rtol=1e-12, atol=1e-12 * r.max(), err_msg=str(k))


def test_family_reads_and_writes_the_per_kernel_cache(met24, tmp_path, monkeypatch):
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    specs = _family(pops=(1e7,))
    first = fl.compute_kernels(specs, met24)
    # every kernel is cached under compute_kernel's name: compute_kernel reads it back
    for k, spec in specs.items():
        assert np.array_equal(fl.compute_kernel(spec, met24, kernel_fn=_never), first[k])

    monkeypatch.setattr(fl, "_family_rows", _never)
    again = fl.compute_kernels(specs, met24)
    for k in specs:
        assert np.array_equal(again[k], first[k])


def _never(*a, **k):
    raise AssertionError("recomputed a cached kernel")


def test_family_refuses_specs_of_two_families(met24):
    specs = {"a": fl.KernelSpec("m24", 1000.0, 3), "b": fl.KernelSpec("m24", 1000.0, 3, 10.0)}
    with pytest.raises(ValueError, match="share met"):
        fl.compute_kernels(specs, met24, use_cache=False)


@pytest.mark.parametrize("height_m", [0.0, 60.0, 400.0])
def test_urban_candidate_hours_contain_every_urban_hour(met24, height_m):
    """Urban tables are built only for the candidate hours: every hour whose tables the urban
    boundary layer changes must be one (else its urban kernel would silently be rural)."""
    for p in (1e4, 1e5, 1e6, 1e7, 1e8):
        changed = ub.urban_hours(met24, p, release_height_m=height_m)
        cand = ub.urban_candidate_hours(met24, p)
        assert not (changed & ~cand).any(), p
        assert changed.any()
    # a small city: the morning transition shrinks, the candidates with it (not every hour)
    assert ub.urban_candidate_hours(met24, 1e4).sum() < len(met24)


def test_hour_tables_of_a_row_subset_are_the_rows_of_the_full_tables(met24):
    """compute_kernels builds a part's tables on met.select(rows): per-hour tables depend on
    the hour alone."""
    rows = np.array([0, 3, 7, 12, 20])
    full = area.hour_tables(met24, 50.0, 5.0)
    sub = area.hour_tables(met24.select(rows), 50.0, 5.0)
    for a, b in zip(full, sub):
        assert np.array_equal(a[rows], b, equal_nan=True)


def test_family_equals_per_call_kernels_on_the_default_met(tmp_path, monkeypatch):
    """The same on the shipped climatology (Beijing, heating season: 365 classes, a stack class
    with ~19 height groups and penetrated parts, urban node 10^7 with stable and morning hours)."""
    from engine import pipeline as pl
    from engine.config import load_config

    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    prep = pl.prepare(load_config(None, overrides={"data": {"cities": "Beijing"},
                                                   "dispersion": {"emission_heights": "sector"}}))
    met = pl._season_met(prep.met_specs[prep.selected[0]], prep.seasons[0])
    specs = {}
    for kind, spacing, n in (("fine", 1000.0, 34), ("coarse", 5000.0, 6)):
        base = fl.KernelSpec(met.digest(), spacing, n, stack=prep.heights.stacks["low_stack"])
        specs[(kind,)] = base
        specs[(kind, 1e7)] = dataclasses.replace(base, urban_population=1e7)
    assert len(pr.height_groups(met, specs[("fine",)].stack)) > 10
    ref = _per_call(specs, met)
    got = fl.compute_kernels(specs, met, use_cache=False)
    for k, r in ref.items():
        np.testing.assert_allclose(got[k], r, rtol=1e-12, atol=1e-12 * r.max(), err_msg=str(k))


def test_kernel_families_side_by_side_are_bit_identical(met24, tmp_path, monkeypatch):
    """transfer_kernels computes two families at once where numba's threading layer allows it
    (OpenMP, TBB); every kernel must be bit for bit the one of computing the families one by one."""
    from engine import pipeline as pl
    from kernels.plume import threading_layer_name

    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(pl, "_season_met", lambda spec, season: met24)
    plan = {}
    for d, hs in (("m-a", 0.0), ("m-b", 10.0), ("m-c", 2.0)):
        plan[(d, "fine")] = fl.KernelSpec(d, 1000.0, 40, hs, 1.0)
        plan[(d, "coarse")] = fl.KernelSpec(d, 5000.0, 9, hs, 1.0)
        plan[(d, "fine", 1e6)] = dataclasses.replace(plan[(d, "fine")], urban_population=1e6)
    met_of = {d: (None, "annual") for d in ("m-a", "m-b", "m-c")}
    lanes = pl._kernel_lanes(3)
    assert lanes == (2 if threading_layer_name() in ("omp", "tbb") else 1)
    both = pl.transfer_kernels(plan, met_of, use_cache=False, quiet=True)
    monkeypatch.setenv("COBENEFITS_KERNEL_LANES", "1")
    assert pl._kernel_lanes(3) == 1
    one = pl.transfer_kernels(plan, met_of, use_cache=False, quiet=True)
    assert set(both) == set(plan)
    for k in plan:
        assert both[k].max() > 0
        assert np.array_equal(both[k], one[k]), k


def test_kernel_stage_runs_blas_in_one_thread(met24, tmp_path, monkeypatch):
    """The families' weighted sums (BLAS) run in the calling thread while numba's parallel integration
    holds the cores: idle OpenBLAS threads would spin on them. The limit is lifted afterwards."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from engine import pipeline as pl

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    seen = []
    real = fl.compute_kernels

    def spy(*a, **kw):
        seen.append(blas_threads())
        return real(*a, **kw)

    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(pl, "_season_met", lambda spec, season: met24)
    monkeypatch.setattr(fl, "compute_kernels", spy)
    plan = {("m-a", "fine"): fl.KernelSpec("m-a", 1000.0, 6, 0.0, 1.0),
            ("m-b", "fine"): fl.KernelSpec("m-b", 1000.0, 6, 10.0, 1.0)}
    pl.transfer_kernels(plan, {"m-a": (None, "annual"), "m-b": (None, "annual")}, use_cache=False, quiet=True)
    assert len(seen) == 2 and all(v and all(n == 1 for n in v) for v in seen)  # numpy's BLAS is seen, limited
    assert blas_threads() == before
