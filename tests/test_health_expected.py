"""engine.health.expected: the mean over draws from a table equals the direct mean over every draw.

The reference is the direct mean over the draws (kernels.sweep.impact_per_sample with draw = -1,
the arithmetic of engine.health.impact.health_impact's ``*_mean``), evaluated at random
concentrations over the whole range a sweep can reach (0-1000 ug m-3, the health stage's
plausible maximum), on the nodes and between them, and at the counterfactual kinks (each
draw's own zcf, just above and just below it).
"""

import numpy as np
import pytest

from engine.config import HealthConfig
from engine.health import age_population, curve_set, health_impact
from engine.health.expected import DrawMeanTable, counterfactuals, curves_and_weights

TOL = 1e-6  # the stated accuracy of the table (engine/health/expected.py) ...
FLOOR = 1e-12  # ... plus 1e-12 of the region's baseline deaths (rounding, within 1e-12 ug m-3 of a zcf)


def _rel_excess(got, want, weight):
    """max over points of |got - want| / (TOL |want| + FLOOR sum_k W): <= 1 passes."""
    return float((np.abs(got - want) / (TOL * np.abs(want) + FLOOR * weight.sum(axis=1))).max())


def _points(table, rng, n_random=3000):
    zcf = np.unique(counterfactuals(table.model, table.params))
    zcf = zcf[np.linspace(0, zcf.size - 1, min(zcf.size, 200)).astype(int)]
    nodes = table.nodes()
    return np.concatenate([
        rng.uniform(0.0, 30.0, n_random), rng.uniform(0.0, 1000.0, n_random // 3),
        np.exp(rng.uniform(np.log(1e-3), np.log(1000.0), n_random // 3)),
        rng.uniform(table.z_lo, table.z_tab + 1.0, n_random // 3),      # the kink zone and just above
        nodes[:40], 0.5 * (nodes[:40] + nodes[1:41]), nodes[-3:] * 0.999,
        zcf, zcf + 1e-9, zcf + 1e-4, zcf - 1e-9, zcf + 0.02,
        [0.0, table.z_lo, table.z_lo + 1e-12, table.z_tab, table.z_tab + 1e-9, 1000.0, 1200.0]])


@pytest.mark.parametrize("crf", ["ier2010", "gemm_ncd_lri", "gemm_5cod", "loglinear_krewski2009"])
def test_table_mean_within_1e_6_of_the_direct_1000_draw_mean(crf):
    rng = np.random.default_rng(7)
    cs = curve_set(crf, draws=1000)
    weight = rng.uniform(0.1, 3.0, (1, cs.params_draws.shape[0]))
    table = DrawMeanTable(cs.model, cs.params_draws, weight)
    z = _points(table, rng, 1000)
    conc = z[:, None]
    got, want = table(conc), table.direct(conc)
    assert (want[z <= table.z_lo] == 0).all() and (got[z <= table.z_lo] == 0).all()
    assert _rel_excess(got, want, weight) <= 1.0, crf
    away = z > table.z_lo + 1e-9  # not within rounding of the lowest counterfactual: relative alone
    rel = np.abs(got - want)[away] / want[away]
    assert rel.max() <= TOL, (crf, float(rel.max()))


def test_user_functions_and_the_central_ier_curve(tmp_path):
    # user functions: log-linear, log-log and linear forms with their own counterfactuals
    f = tmp_path / "functions.csv"
    f.write_text("function,form,cause,beta,beta_se,min_age,max_age,zcf,incidence_per_100k\n"
                 "ll,log_linear,lc,0.006,0.001,30,,5.0,\n"
                 "lg,log_log,asthma,0.15,0.03,30,34,3.0,800\n"
                 "lin,linear,cardio,0.00001,0.000002,80,,2.0,\n")
    from engine.health import read_user_functions

    rng = np.random.default_rng(3)
    for cs in (curve_set("user", draws=500, functions=read_user_functions(f)),
               curve_set("ier2010", draws=0)):
        params = cs.params_draws if cs.params_draws.shape[1] else cs.params_central
        weight = rng.uniform(0.1, 3.0, (1, params.shape[0]))
        table = DrawMeanTable(cs.model, params, weight)
        z = _points(table, rng, 1000)
        conc = z[:, None]
        assert _rel_excess(table(conc), table.direct(conc), weight) <= 1.0, cs.crf


def test_the_table_reproduces_health_impact_means():
    """Weights from the health stage's own curve weights: deaths_all_mean of health_impact."""
    cities = [110000, 130100, 130200, 440100, 650100]
    pop = age_population(cities).loc[cities]
    zb = np.array([3.0, 7.2, 8.5, 25.0, 140.0])  # below, inside and above the IER kink zone
    zs = zb * np.array([0.9, 0.95, 0.7, 0.8, 0.85])
    for crf in ("ier2010", "gemm_ncd_lri"):
        h = HealthConfig(crf=crf, draws=1000)
        model, params, weight = curves_and_weights(h, crf, pop)
        table = DrawMeanTable(model, params, weight)
        ds = health_impact(zb, pop, conc_scenario=zs, crf=crf, draws=1000, seed=h.seed)
        mb, ms = table(zb[None]), table(zs[None])
        np.testing.assert_allclose(mb[0], ds.deaths_all_mean.values, rtol=TOL)
        np.testing.assert_allclose(ms[0], ds.deaths_scenario_all_mean.values, rtol=TOL)
        # avoided = difference of two tabulated means: within TOL of the larger term
        np.testing.assert_allclose(mb[0] - ms[0], ds.avoided_all_mean.values, rtol=0, atol=TOL * mb[0].max())
