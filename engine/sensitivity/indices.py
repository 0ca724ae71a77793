"""Global sensitivity indices of a sweep's outputs (SALib).

``sobol``: first-order and total Sobol' indices with bootstrap confidence intervals (Saltelli
et al. 2010, CPC 181:259; Jansen 1999); ``morris``: elementary effects mu, mu*, sigma (Morris 1991;
Campolongo et al. 2007); ``lhs`` and ``mc``: first-order indices by RBD-FAST (Tarantola et al. 2006;
Plischke 2010). A grid sweep has no indices.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from engine.sensitivity.spec import problem

__all__ = ["analyze", "city_indices", "sobol_city_indices", "national_indices", "indices_extra", "too_few_samples",
           "MIN_SAMPLES"]


def analyze(spec, unit, values, Y):
    """Sensitivity indices of one scalar output ``Y`` (n,) for the sweep's method.

    Returns a DataFrame with one row per parameter: sobol -> ``S1, S1_conf, ST, ST_conf``;
    morris -> ``mu, mu_star, mu_star_conf, sigma``; lhs/mc -> ``S1, S1_conf`` (RBD-FAST, Tarantola et al.
    2006; Plischke 2010);
    grid -> None. Rows with a constant output get zeros (SALib's convention).
    """
    prob = problem(spec)
    Y = np.asarray(Y, dtype=float)
    if not np.isfinite(Y).all():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.method == "sobol":
            from SALib.analyze import sobol

            r = sobol.analyze(prob, Y, calc_second_order=spec.second_order, num_resamples=spec.num_resamples,
                              conf_level=spec.conf_level, seed=spec.seed)
            cols = ["S1", "S1_conf", "ST", "ST_conf"]
        elif spec.method == "morris":
            from SALib.analyze import morris

            r = morris.analyze(prob, unit, Y, num_resamples=spec.num_resamples, conf_level=spec.conf_level,
                               num_levels=spec.num_levels, seed=spec.seed)
            cols = ["mu", "mu_star", "mu_star_conf", "sigma"]
        elif spec.method in ("lhs", "mc"):
            from SALib.analyze import rbd_fast

            r = rbd_fast.analyze(prob, unit, Y, num_resamples=spec.num_resamples, conf_level=spec.conf_level,
                                 seed=spec.seed)
            cols = ["S1", "S1_conf"]
        else:
            return None
    df = pd.DataFrame({c: np.asarray(r[c], dtype=float) for c in cols})
    df.insert(0, "parameter", spec.keys)
    if spec.method == "sobol" and spec.second_order:
        df.attrs["S2"] = np.asarray(r["S2"], dtype=float)
        df.attrs["S2_conf"] = np.asarray(r["S2_conf"], dtype=float)
    return df


def sobol_city_indices(spec, Y):
    """First-order and total Sobol' indices per city (Saltelli 2010 / Jansen estimators, no bootstrap)."""
    from SALib.analyze.sobol import first_order, total_order

    D = len(spec.parameters)
    step = 2 * D + 2 if spec.second_order else D + 2
    Yr = Y.reshape(-1, step, Y.shape[1])
    A, B = Yr[:, 0], Yr[:, -1]
    # standardise per city over all evaluations, as SALib's sobol.analyze does for a scalar output
    mu, sd = Y.mean(axis=0), Y.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    A, B = (A - mu) / sd, (B - mu) / sd
    S1 = np.empty((D, Y.shape[1]))
    ST = np.empty((D, Y.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(D):
            AB = (Yr[:, 1 + j] - mu) / sd
            S1[j] = first_order(A, AB, B)
            ST[j] = total_order(A, AB, B)
    return S1, ST


def city_indices(spec, nc_path, names, max_bytes=2**27):
    """Sobol' S1 and ST of every city for the per-city outputs, read from ``sweep.nc`` in blocks
    of cities (memory: at most ``max_bytes`` of one output at a time, whatever the sample count)."""
    import netCDF4

    frames = []
    with netCDF4.Dataset(nc_path) as nc:
        city = nc.variables["city"][:]
        n = nc.dimensions["sample"].size
        step = max(1, min(len(city), max_bytes // (8 * max(n, 1))))
        for o in names:
            for c0 in range(0, len(city), step):
                c1 = min(len(city), c0 + step)
                Y = np.asarray(nc.variables[o][:, c0:c1].filled(np.nan), dtype=float)
                ok = np.isfinite(Y).all(axis=0)
                S1 = np.full((len(spec.keys), c1 - c0), np.nan)
                ST = np.full_like(S1, np.nan)
                if ok.any():
                    S1[:, ok], ST[:, ok] = sobol_city_indices(spec, Y[:, ok])
                for j, k in enumerate(spec.keys):
                    frames.append(pd.DataFrame({"output": o, "city": city[c0:c1], "parameter": k, "S1": S1[j],
                                                "ST": ST[j]}))
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    # one row order whatever the block size: output, parameter, then city as in the file
    order = {"output": {o: i for i, o in enumerate(names)}, "parameter": {k: i for i, k in enumerate(spec.keys)},
             "city": {int(c): i for i, c in enumerate(city)}}
    key = df[["output", "parameter", "city"]].apply(lambda col: col.map(lambda v: order[col.name][v]))
    return df.iloc[np.lexsort((key["city"], key["parameter"], key["output"]))].reset_index(drop=True)


#: fewest base samples for indices that mean something: Sobol' estimators from fewer than 8
#: pairs have standard errors of the order of the indices; Morris' sigma needs 2 trajectories;
#: RBD-FAST sums M = 10 harmonics (SALib's default), so it needs N > 2M samples
MIN_SAMPLES = {"sobol": 8, "morris": 2, "lhs": 21, "mc": 21}
_COLUMNS = {"sobol": ["S1", "S1_conf", "ST", "ST_conf"], "morris": ["mu", "mu_star", "mu_star_conf", "sigma"],
            "lhs": ["S1", "S1_conf"], "mc": ["S1", "S1_conf"], "grid": []}


def too_few_samples(spec):
    """Why the sample count is too small for the method's indices, or None."""
    need = MIN_SAMPLES.get(spec.method)
    if need is not None and spec.samples < need:
        what = {"sobol": "base samples N", "morris": "trajectories", "lhs": "samples", "mc": "samples"}[spec.method]
        return (f"too few samples for {spec.method} indices: {spec.samples} {what}, at least {need} needed "
                "(samples in the sweep file or --samples)")
    return None


def _constant(y):
    """Whether ``y`` is constant up to rounding (spread <= 1e-12 of its magnitude)."""
    return float(np.ptp(y)) <= 1e-12 * max(float(np.max(np.abs(y))), np.finfo(float).tiny)


def national_indices(spec, unit, values, Y):
    """Indices of every national output, or the reason there are none.

    Parameters
    ----------
    Y : dict {output: (n,) float64}

    Returns
    -------
    indices : DataFrame  one row per output and parameter: ``output, parameter``, the method's
        columns and ``note`` (empty where the indices were computed, else why not: a grid sweep,
        too few samples, a constant output, non-finite outputs); no output is left out
    status : dict {output: {"computed": bool, "reason": str}}
    s2 : DataFrame of second-order Sobol' indices, or None
    """
    cols = _COLUMNS[spec.method]
    why_all = "a grid sweep has no sensitivity indices" if spec.method == "grid" else too_few_samples(spec)
    frames, status, s2 = [], {}, []
    for o, y in Y.items():
        y = np.asarray(y, dtype=float)
        why = why_all
        if why is None and not np.isfinite(y).all():
            why = (f"non-finite output in {int((~np.isfinite(y)).sum())} of {y.size} samples; indices need a "
                   "finite value for every sample")
        if why is None and _constant(y):
            why = "constant output: every sample gives the same value, so no parameter explains any variance"
        df = analyze(spec, unit, values, y) if why is None else None
        if df is None:
            df = pd.DataFrame({"parameter": spec.keys, **{c: np.nan for c in cols}})
            why = why or "no indices"
        df.insert(0, "output", o)
        df["note"] = why or ""
        frames.append(df)
        status[o] = {"computed": why is None, "reason": why or ""}
        if why is None and "S2" in df.attrs:
            for a in range(len(spec.keys)):
                for b in range(a + 1, len(spec.keys)):
                    s2.append({"output": o, "parameter_1": spec.keys[a], "parameter_2": spec.keys[b],
                               "S2": df.attrs["S2"][a, b], "S2_conf": df.attrs["S2_conf"][a, b]})
    indices = (pd.concat(frames, ignore_index=True) if frames
               else pd.DataFrame(columns=["output", "parameter", *cols, "note"]))
    return indices, status, (pd.DataFrame(s2) if s2 else None)


def indices_extra(spec, indices):
    """The national indices as NetCDF variables ``index_<column>(output, parameter)`` (NaN where
    not computed) and ``index_note(output)``."""
    extra = {}
    if indices.empty:
        return extra
    outs = list(dict.fromkeys(indices["output"]))
    for c in indices.columns[2:]:
        if c == "note":
            continue
        tab = indices.pivot(index="output", columns="parameter", values=c).reindex(index=outs, columns=spec.keys)
        extra[f"index_{c}"] = (("output", "parameter"), tab.to_numpy(float),
                               {"long_name": f"sensitivity index {c} of the national output", "units": "1"})
    notes = indices.groupby("output", sort=False)["note"].first().reindex(outs).fillna("")
    extra["index_note"] = (("output",), np.array(notes.tolist(), dtype=str),
                           {"long_name": "why the national output has no indices (empty: computed)"})
    extra["output"] = (("output",), np.array(outs, dtype=str), {"long_name": "national output"})
    extra["parameter"] = (("parameter",), np.array(spec.keys, dtype=str), {"long_name": "sweep parameter"})
    return extra
