"""The sample-axis model's shortcuts (engine/sampled/): each gives what the general path gives.

* the draw-mean table's bases cached on disk, keyed by their content: a table read from the
  cache equals the one computed (bit for bit), a damaged entry is recomputed;
* samples with the same exposure share one health evaluation (per distinct draw when
  ``health.draw`` is sampled), the same emissions one ``S @ q`` product: equal to the rows
  evaluated one by one.
"""

import numpy as np
import pandas as pd
import pytest

from engine.health.curves import curve_set
from engine.health.expected import DrawMeanTable
from engine.sampled import HealthTable, SampleTables, concentrations, health_samples
from engine.sampled.concentrations import same_rows


@pytest.fixture(scope="module")
def ier():
    cs = curve_set("ier2010", cohort="with_china", draws=200, seed=7)
    rng = np.random.default_rng(3)
    weight = rng.uniform(0.0, 50.0, (6, cs.params_draws.shape[0]))
    return cs.model, cs.params_draws, weight


def test_draw_mean_table_cached_bases_equal_the_computed_and_a_damaged_entry_is_recomputed(ier, tmp_path):
    model, params, weight = ier
    plain = DrawMeanTable(model, params, weight)
    first = DrawMeanTable(model, params, weight, cache=tmp_path)
    entries = sorted(tmp_path.glob("drawmean-*.npz"))
    assert len(entries) == 1 and entries[0].with_name(entries[0].name + ".sha256").exists()
    again = DrawMeanTable(model, params, 2.0 * weight, cache=tmp_path)  # other weights: same bases, read
    assert sorted(tmp_path.glob("drawmean-*.npz")) == entries
    np.testing.assert_array_equal(first.table, plain.table)
    np.testing.assert_array_equal(first.kink_table, plain.kink_table)
    np.testing.assert_array_equal(again.table, 2.0 * plain.table)
    z = np.array([[0.5, 6.0, 7.31, 8.9, 35.0, 400.0]])
    np.testing.assert_array_equal(again(z), DrawMeanTable(model, params, 2.0 * weight)(z))
    # other draws -> another entry
    DrawMeanTable(model, params[:, :100], weight, cache=tmp_path)
    assert len(list(tmp_path.glob("drawmean-*.npz"))) == 2
    # a truncated entry is discarded and recomputed (same values)
    entries[0].write_bytes(entries[0].read_bytes()[:100])
    fixed = DrawMeanTable(model, params, weight, cache=tmp_path)
    np.testing.assert_array_equal(fixed.table, plain.table)
    assert entries[0].stat().st_size > 100


def _tables(ier, n_src=5):
    model, params, weight = ier
    rng = np.random.default_rng(11)
    n_city = weight.shape[0]
    S = rng.uniform(0.0, 3e6, (n_city, n_src))
    ht = HealthTable(model, params, weight, False, DrawMeanTable(model, params, weight))
    return SampleTables(city=np.arange(n_city), population=np.ones(n_city), S={(): S}, S_season={},
                        health={"ier2010": ht}, health_default={"crf": "ier2010"})


def _one_by_one(fn, n, *arrays):
    rows = [fn(*(a[i:i + 1] for a in arrays), i) for i in range(n)]
    return [np.concatenate([r[k] for r in rows]) for k in range(len(rows[0]))]


@pytest.mark.parametrize("sampled", ["mean", "draw"])
def test_samples_with_one_exposure_share_the_health_evaluation(ier, sampled):
    tb = _tables(ier)
    n, n_city = 9, len(tb.city)
    rng = np.random.default_rng(5)
    vals = pd.DataFrame({"health.baseline_rate_multiplier": rng.uniform(0.5, 1.5, n)})
    if sampled == "draw":
        vals["health.draw"] = np.array([3, 7, 3, 0, 199, 7, 3, 50, 0])
    zb = np.broadcast_to(rng.uniform(4.0, 60.0, n_city), (n, n_city))  # one exposure for every sample
    zs = np.broadcast_to(0.8 * zb[0], (n, n_city))
    shared = health_samples(tb, vals, zb, zs)
    alone = _one_by_one(lambda b, s, i: health_samples(tb, vals.iloc[i:i + 1].reset_index(drop=True),
                                                       np.array(b), np.array(s)), n, zb, zs)
    for got, want in zip(shared, alone):
        np.testing.assert_array_equal(got, want)
    # varying scenario rows (a carbon-knob sweep: the base shared, the scenario per sample)
    zs2 = zb * rng.uniform(0.5, 1.0, (n, n_city))
    shared = health_samples(tb, vals, zb, zs2)
    alone = _one_by_one(lambda b, s, i: health_samples(tb, vals.iloc[i:i + 1].reset_index(drop=True),
                                                       np.array(b), np.array(s)), n, zb, zs2)
    for got, want in zip(shared, alone):
        np.testing.assert_array_equal(got, want)


def test_samples_with_one_emission_share_the_product(ier):
    tb = _tables(ier)
    n = 7
    rng = np.random.default_rng(9)
    q1 = rng.uniform(0.0, 1e-6, (1, 2, 5))
    vals = pd.DataFrame({"health.baseline_rate_multiplier": np.ones(n)})
    got = concentrations(tb, vals, np.broadcast_to(q1, (n, 2, 5)), None)
    want = np.einsum("cs,ns->nc", tb.S[()], q1[:, 1])
    np.testing.assert_allclose(got[:, 1], np.broadcast_to(want, (n, want.shape[1])), rtol=1e-13)
    q = np.repeat(q1, n, axis=0)
    q[4, 1, 2] *= 1.5  # one sample differs: every row its own product
    got = concentrations(tb, vals, q, None)
    np.testing.assert_allclose(got[4, 1], tb.S[()] @ q[4, 1], rtol=1e-13)
    np.testing.assert_allclose(got[3, 1], tb.S[()] @ q[3, 1], rtol=1e-13)
    assert same_rows(np.broadcast_to(q1, (n, 2, 5))) and not same_rows(q)
