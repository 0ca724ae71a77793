"""The mean over parameter draws of attributable deaths, at the cost of one curve per region.

A national run reports, per region, the mean over the ``[health] draws`` parameter draws of the
attributable deaths, :math:`\\bar D_r(z) = \\sum_k W_{r,k} \\frac{1}{n_d}\\sum_d PAF_{k,d}(z)`
(:func:`engine.health.impact.health_impact`, ``*_mean``). Evaluated directly that is
``n_curve x n_draw`` relative risks per region and concentration: 32,000 for the IER with 1,000
draws. A sweep that does not sample ``health.draw`` needs it for every sample, so
:class:`DrawMeanTable` tabulates :math:`\\bar D_r` once per region on nodes

.. math:: z_j = z_{tab} + z_0 (e^{j\\,\\Delta u} - 1), \\quad j = 0 \\dots n

(dense at low concentration, relative spacing :math:`\\Delta u` at high) and interpolates
each sample's value with a cubic Lagrange polynomial through the four nearest nodes
(:func:`kernels.sweep.deaths_from_table`). The table is linear in the weights, so a
baseline-rate multiplier scales it exactly.

Where the mean is not smooth it is not interpolated:

* below the lowest counterfactual concentration of any curve and draw every fraction is 0;
* between the lowest and the highest counterfactual (IER: each draw has its own, 5.8-8.8
  ug m-3) the mean has a kink at every draw's counterfactual, and just above an IER
  counterfactual a curve behaves as :math:`(z - z_{cf})^\\delta` with :math:`\\delta < 1`; there,
  and :data:`IER_KINK_MARGIN_UG_M3` above the highest IER counterfactual, the mean is taken
  directly over the draws (exact);
* above the last node (:data:`Z_MAX_UG_M3`) the mean is taken directly.

Accuracy: with :data:`DU` = 0.004 and :data:`Z0_UG_M3` = 2 the interpolated mean is within
1e-6 relative of the direct mean over 1,000 draws at any concentration (tested at random
concentrations, on the nodes, between them and at the counterfactual kinks, for the IER, both
GEMM sets, the log-linear function and user functions: tests/test_health_expected.py).

What a sweep reports without ``health.draw``: per sample, the draw-mean deaths (as the run's
``*_mean``); percentiles over draws of a national total are a property of the draw distribution
at one exposure, not a per-sample quantity, so a sweep does not report them (sample
``health.draw`` to carry the parameter uncertainty into the sweep's distribution).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from kernels import crf as _crf
from kernels import sweep as _k
from kernels.crf import MODEL_GEMM, MODEL_IER, MODEL_LOGLINEAR, MODEL_USER

__all__ = ["DrawMeanTable", "counterfactuals", "curves_and_weights", "background_values", "DU", "Z0_UG_M3", "Z_MAX_UG_M3", "IER_KINK_MARGIN_UG_M3", "KINK_BIN_UG_M3",
           "KINK_SUBDIVISIONS"]

#: node spacing in the node variable u = ln(1 + (z - z_tab)/z0) [1]
DU = 0.004
#: scale of the node variable [ug m-3]: spacing z0 DU = 0.008 ug m-3 at the first node, 2 % at 1000
Z0_UG_M3 = 2.0
#: last node at or above this concentration [ug m-3] (engine.health.impact's plausible maximum of
#: an annual mean, 1000 ug m-3); above it the mean is taken directly over the draws
Z_MAX_UG_M3 = 1000.0
#: the mean is taken directly up to this far above the highest IER counterfactual [ug m-3]: an
#: IER curve rises as (z - zcf)^delta (delta < 1 for many draws), which no polynomial follows
#: near zcf
IER_KINK_MARGIN_UG_M3 = 0.5
#: width of the bins of the kink zone [ug m-3]: the draws whose counterfactual lies within one
#: bin below a concentration's bin are evaluated directly, the others are tabulated
KINK_BIN_UG_M3 = 0.01
#: intervals per bin of the tabulated far draws (cubic interpolation; the nearest far
#: counterfactual is at least one bin width away, so the spacing is 1/16 of that distance)
KINK_SUBDIVISIONS = 16

#: index of the counterfactual concentration in the packed parameters of each model (kernels.crf)
_ZCF_INDEX = {MODEL_IER: 3, MODEL_GEMM: 4, MODEL_LOGLINEAR: 1, MODEL_USER: 1}


def counterfactuals(model, params):
    """Counterfactual concentration [ug m-3] of every curve and draw, ``(n_curve, n_draw)``."""
    return np.asarray(params[..., _ZCF_INDEX[int(model)]], dtype=np.float64)


@dataclasses.dataclass
class DrawMeanTable:
    """Mean over draws of the attributable deaths of each region, tabulated against concentration.

    Parameters
    ----------
    model : int (kernels.crf.MODEL_*)
    params : (n_curve, n_draw, N_PARAMS) float64
        The curves' parameter draws (:class:`engine.health.impact.CurveSet` ``params_draws``, or
        ``params_central`` with one draw when ``[health] draws = 0``).
    weight : (n_region, n_curve) float64 [deaths yr-1]
        Population x baseline rate of the age groups each curve serves
        (:func:`engine.health.impact.curve_weights`).

    Attributes
    ----------
    z_lo : float   lowest counterfactual [ug m-3]; every fraction is 0 at or below it
    z_tab : float  first node [ug m-3]; below it (and above ``z_lo``) the mean is direct
    table : (n_region, n_node) float64  mean deaths at the nodes [deaths yr-1]
    """

    model: int
    params: np.ndarray
    weight: np.ndarray
    z_lo: float = 0.0
    z_tab: float = 0.0
    table: np.ndarray = None
    kink_table: np.ndarray = None
    du: float = DU
    z0: float = Z0_UG_M3
    width: float = KINK_BIN_UG_M3
    n_sub: int = KINK_SUBDIVISIONS
    cache: object = None  # a folder for the weight-free bases (``drawmean-<key>.npz``), or None

    def __post_init__(self):
        self.model = int(self.model)
        self.params = np.ascontiguousarray(self.params, dtype=np.float64)
        self.weight = np.ascontiguousarray(self.weight, dtype=np.float64)
        zcf = counterfactuals(self.model, self.params)
        self.z_lo = float(zcf.min())
        z_hi = float(zcf.max())
        # an IER curve rises as (z - zcf)^delta; the other forms are analytic above their zcf
        # (GEMM: ln(1 + x/alpha) times a logistic in x; log-linear; log-log with zcf > 0; linear)
        margin = IER_KINK_MARGIN_UG_M3 if self.model == MODEL_IER else 0.0
        self.z_tab = z_hi + margin
        nodes = self.nodes()
        # the kink zone (z_lo, z_tab): bins of one width, far draws tabulated per bin, near direct
        order = np.argsort(zcf, axis=1, kind="stable")
        self.params_sorted = np.ascontiguousarray(np.take_along_axis(self.params, order[..., None], axis=1))
        self.zcf_sorted = np.ascontiguousarray(np.take_along_axis(zcf, order, axis=1))
        n_bin = max(1, int(np.ceil((self.z_tab - self.z_lo) / self.width)))
        edges = self.z_lo + (np.arange(n_bin) - 1) * self.width
        self.start = np.ascontiguousarray(np.stack([np.searchsorted(c, edges, side="left") for c in self.zcf_sorted])
                                          .astype(np.int64))
        node_means, far = self._bases(nodes, n_bin)
        self.table = self.weight @ node_means
        self.kink_table = np.ascontiguousarray(
            (self.weight @ far.reshape(far.shape[0], -1)).reshape(self.weight.shape[0], n_bin, self.n_sub + 1))

    def _bases(self, nodes, n_bin):
        """The weight-free bases of the tables: each curve's mean fraction at the nodes
        ``(n_curve, n_node)`` and the far draws' at the kink-zone nodes ``(n_curve, n_bin, n_sub + 1)``.
        With ``cache`` they are read from (or written to) a verified entry keyed by the content
        of the parameters, the node layout and the kernels' source (:func:`engine.output.persist.save_verified_npz`):
        the same draws give the same bases whatever the regions' weights."""
        from engine.output.persist import load_verified_npz, save_verified_npz

        path = None
        if self.cache is not None:
            path = Path(self.cache) / f"drawmean-{self._key(nodes, n_bin)}.npz"
            got = load_verified_npz(path, ["node_means", "far"])
            if got is not None:
                return got["node_means"], got["far"]
        node_means = self.curve_means(nodes)
        far = np.zeros((self.params.shape[0], n_bin, self.n_sub + 1))
        if self.z_tab > self.z_lo:
            _k.far_mean_fractions(self.model, self.params_sorted, self.zcf_sorted, self.start, self.z_lo, self.width,
                                  self.n_sub, far)
        if path is not None:
            save_verified_npz(path, node_means=node_means, far=far)
        return node_means, far

    def _key(self, nodes, n_bin):
        """Content key of the bases: model, parameter draws, node layout, the kernels' source."""
        from engine._version import __version__

        h = hashlib.sha256(json.dumps({"model": self.model, "shape": self.params.shape, "du": self.du, "z0": self.z0,
                                       "width": self.width, "n_sub": self.n_sub, "n_node": len(nodes),
                                       "n_bin": n_bin, "z_lo": self.z_lo, "z_tab": self.z_tab,
                                       "engine": __version__}, sort_keys=True).encode())
        h.update(self.params.tobytes())
        for f in (_k.__file__, _crf.__file__, Path(_k.__file__).with_name("__init__.py")):  # incl. FASTMATH
            h.update(Path(f).read_bytes())
        h.update(Path(__file__).read_bytes())
        return h.hexdigest()[:24]

    def nodes(self):
        """Concentrations of the nodes [ug m-3], from ``z_tab`` to at least :data:`Z_MAX_UG_M3`."""
        n = max(4, int(np.ceil(np.log1p(max(Z_MAX_UG_M3 - self.z_tab, 0.0) / self.z0) / self.du)) + 2)
        return self.z_tab + self.z0 * np.expm1(np.arange(n) * self.du)

    def curve_means(self, z):
        """Mean over draws of each curve's attributable fraction at ``z`` [1], ``(n_curve, n_z)``."""
        z = np.ascontiguousarray(z, dtype=np.float64)
        out = np.empty((self.params.shape[0], z.size))
        _k.mean_fraction_over_draws(self.model, z, self.params, out)
        return out

    def __call__(self, conc):
        """Mean deaths ``(n_sample, n_region)`` [deaths yr-1] at exposures ``conc`` (same shape)."""
        conc = np.ascontiguousarray(conc, dtype=np.float64)
        out = np.empty(conc.shape)
        _k.deaths_from_table(conc, self.table, self.z_lo, self.z_tab, self.z0, self.du, self.kink_table, self.width,
                             self.n_sub, self.params_sorted, self.zcf_sorted, self.start, self.model, self.params,
                             self.weight, out)
        return out

    def direct(self, conc):
        """The same mean taken directly over every draw (the reference; ``n_draw`` times the work)."""
        conc = np.ascontiguousarray(conc, dtype=np.float64)
        n, r = conc.shape
        b, s, a = np.empty((n, r)), np.empty((n, r)), np.empty((n, r))
        _k.impact_per_sample(self.model, conc, conc, self.params, np.full(n, -1, dtype=np.int64), self.weight,
                             np.ones(n), False, b, s, a)
        return b



def curves_and_weights(health, crf, pop_by_age):
    """``(model, params, weight)`` of a concentration-response function under ``[health]``
    settings ``health`` (:class:`engine.config.HealthConfig`) for the regions of ``pop_by_age``:
    the parameter draws (the central parameters when ``draws = 0``) and the curve weights of
    :func:`engine.health.impact.health_impact` (:func:`engine.health.impact.curve_weights`)."""
    from engine.health.curves import curve_set
    from engine.health.impact import curve_weights, rates_matrix
    from engine.health.inputs import load_rates, population_matrix

    functions = health.functions_file or None if crf == "user" else None
    cs = curve_set(crf, cohort=health.cohort, draws=health.draws, seed=health.seed, functions=functions)
    rates = health.rates_file or None
    y = rates_matrix(load_rates(rates), cs, "baseline rates" if rates is None else f"rates file {rates}")
    params = cs.params_draws if cs.params_draws.shape[1] > 0 else cs.params_central
    weight = curve_weights(cs, y, population_matrix(pop_by_age))
    return int(cs.model), np.ascontiguousarray(params), np.ascontiguousarray(weight)


def background_values(background, regions):
    """Total PM2.5 background [ug m-3] of each region (``[health] background``), read as
    :func:`engine.health.impact.health_impact` reads it (:func:`engine.health.inputs.background_values`)."""
    from engine.health.inputs import background_values as values

    return np.asarray(values(background, list(regions))[0], dtype=np.float64)
