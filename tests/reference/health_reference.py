"""Slow, obviously correct reference for the health stage: plain Python loops, one scalar at a
time, straight from the published formulas (no numba, no vectorisation, no curve grouping)."""

import math

import numpy as np


def ier_rr(z, alpha, gamma, delta, zcf):
    """Burnett et al. 2014, eq. 1."""
    if z > zcf:
        return 1.0 + alpha * (1.0 - math.exp(-gamma * (z - zcf) ** delta))
    return 1.0


def gemm_rr(z, theta, alpha, mu, nu, zcf):
    """Burnett et al. 2018, eq. 1 (the GEMM calculator's cell formula)."""
    x = max(0.0, z - zcf)
    return math.exp(theta * math.log(1.0 + x / alpha) / (1.0 + math.exp(-(x - mu) / nu)))


def loglinear_rr(z, beta, zcf):
    return math.exp(beta * max(0.0, z - zcf))


def rr(model, z, p):
    if model == 0:
        return ier_rr(z, *p[:4])
    if model == 1:
        return gemm_rr(z, *p[:5])
    return loglinear_rr(z, p[0], p[1])


def deaths_reference(cs, pop, rates_per_100k, zb, zs, params, pif=False):
    """deaths[r][c][a][d] for base, scenario and avoided, by explicit loops over every index.

    ``cs`` gives only the map (cause, age) -> curve; ``params`` is (n_curve, n_draw, 5).
    """
    n_r, n_a = pop.shape
    n_c = len(cs.causes)
    n_d = params.shape[1]
    base = np.zeros((n_r, n_c, n_a, n_d))
    scen = np.zeros_like(base)
    avd = np.zeros_like(base)
    for r in range(n_r):
        for c in range(n_c):
            for a in range(n_a):
                k = cs.age_curve[c, a]
                if k < 0:
                    continue
                y = rates_per_100k[c, a] / 100000.0
                for d in range(n_d):
                    rb = rr(cs.model, zb[r], params[k, d])
                    rs = rr(cs.model, zs[r], params[k, d])
                    base[r, c, a, d] = pop[r, a] * y * (1.0 - 1.0 / rb)
                    scen[r, c, a, d] = pop[r, a] * y * (1.0 - 1.0 / rs)
                    if pif:
                        avd[r, c, a, d] = pop[r, a] * y * (1.0 - rs / rb)
                    else:
                        avd[r, c, a, d] = base[r, c, a, d] - scen[r, c, a, d]
    return base, scen, avd
