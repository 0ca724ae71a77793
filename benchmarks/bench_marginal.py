"""Marginal damages, co-benefit intensities and targeting on the national run, S cached.

In one process, on the embedded 2010 data set and the default configuration (654 receptor
cities, 685 sources, seasonal met):

* setup (not counted): ``prepare`` and the source-receptor matrix from the cache
  (``engine.marginal.stages.run_stages``); numba compile of the slope and health kernels, timed
  apart on a small input;
* ``marginal_damages`` of every source at the Base-Case with the 95 % interval over the
  1,000 IER draws; baseline: the same numbers by finite differences through the pipeline's
  stages (emissions -> superpose -> health over the draws, one source at a time), measured on a
  few sources and scaled to all;
* ``cobenefit_intensity`` of every (unit, action) pair; baseline: one pair at a time through
  the pipeline's stages (carbon -> emissions -> superpose -> health), measured on a few and
  scaled to all;
* ``target`` at the FYP + symbiosis CO2 cut (the national headline), re-evaluated through the
  pipeline.

Wall and CPU (process) times are both recorded: on a shared machine the load average says how
far wall time is from the CPU time.

Writes ``benchmarks/results/bench_marginal.json`` (timings, ratios, peak RSS, load average,
the headline).

    python benchmarks/bench_marginal.py [--baseline-sources 3] [--baseline-options 3]
"""

import argparse
import dataclasses
import json
import os
import resource
import time
from pathlib import Path

import numpy as np


def _rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline-sources", type=int, default=3)
    p.add_argument("--baseline-options", type=int, default=3)
    p.add_argument("--no-target", action="store_true")
    p.add_argument("--figures", default=None, metavar="DIR", help="also write the three figures into DIR")
    args = p.parse_args(argv)
    from engine import pipeline as pl
    from engine.marginal import cobenefit_intensity, target
    from engine.marginal.actions import ActionModel, reference_scenario
    from engine.marginal.damages import damages_at, health_slope
    from engine.marginal.intensity import national_avoided
    from engine.marginal.stages import health_model, run_stages
    from engine.marginal.targeting import TARGETED, _targeted_carbon, adoption_of

    res = {"load_average_start": list(os.getloadavg()), "cpu_count": os.cpu_count()}
    t0 = time.perf_counter()
    st = run_stages(quiet=True)
    res["setup_s"] = time.perf_counter() - t0
    res["S_from_cache"] = int(st.S.attrs.get("n_from_cache", -1))
    res["shape"] = {"cities": len(st.prep.selected), "sources": len(st.prep.sources), "seasons": list(st.prep.seasons)}

    # numba compile, apart
    conc_b = pl.superpose(st.S, st.q, parts=False)["conc_ug_m3"].sel(scenario=st.base).values
    hm = health_model(st.prep, conc_b)
    t0 = time.perf_counter()
    small = dataclasses.replace(hm, weight=hm.weight[:2])
    health_slope(small, conc_b[:2])
    national_avoided(small, conc_b[:2], conc_b[None, :2])
    res["compile_s"] = time.perf_counter() - t0
    res["draws"] = hm.n_draw

    # marginal damages of every source, with intervals
    t0, c0 = time.perf_counter(), time.process_time()
    md = damages_at(st, st.base, hm)
    res["marginal_damages_s"] = time.perf_counter() - t0
    res["marginal_damages_cpu_s"] = time.process_time() - c0
    res["rss_gb_after_md"] = _rss_gb()
    # baseline: finite differences through the stages, one source at a time (central + draws)
    labels = list(md["source"].values)
    order = np.argsort(-np.nan_to_num(md["md_central"].values))[: args.baseline_sources]
    t0 = time.perf_counter()
    fd = []
    for k in order:
        q2 = st.q.copy(deep=True)
        h = 1e-3
        q2["q"].loc[dict(source=labels[k])] = q2["q"].sel(source=labels[k]) * (1 + h)
        conc = pl.superpose(st.S, q2)
        hres = pl.health(st.prep, conc)[st.base]
        fd.append(float(hres["deaths_all_mean"].sum()))
    per_source = (time.perf_counter() - t0) / len(order)
    res["baseline_fd_s_per_source"] = per_source
    res["baseline_fd_s_all_sources"] = per_source * len(labels)
    res["md_speedup_vs_fd"] = per_source * len(labels) / res["marginal_damages_s"]

    # co-benefit intensity of every (unit, action)
    t0, c0 = time.perf_counter(), time.process_time()
    it = cobenefit_intensity(stages=st, md=md, hm=hm)
    res["intensity_s"] = time.perf_counter() - t0
    res["intensity_cpu_s"] = time.process_time() - c0
    res["intensity_timings"] = it.attrs["timings_s"]
    res["options"] = int(it.sizes["option"])
    res["rss_gb_after_intensity"] = _rss_gb()
    ref_name, ref = reference_scenario(st.prep.cfg)
    am = ActionModel(st.prep, ref)
    from engine.config import CarbonConfig, ScenarioConfig

    keep = [sc for sc in st.prep.cfg.scenarios if sc[0].name == st.base]
    prep2 = dataclasses.replace(st.prep, cfg=st.prep.cfg.replace(
        scenarios=tuple(keep) + ((ScenarioConfig(name=TARGETED), CarbonConfig()),)))
    pick = np.argsort(-it["avoided_deaths_central"].values)[: args.baseline_options]
    t0 = time.perf_counter()
    check = []
    for i in pick:
        x = np.zeros(it.sizes["option"], dtype=bool)
        x[i] = True
        r = am.evaluate(adoption_of(am, it, x))
        cres = _targeted_carbon(st, am, r, ref_name)
        conc = pl.superpose(st.S, pl.emissions(prep2, cres))
        got = float(pl.health(prep2, conc)[TARGETED]["avoided_all_central"].sum())
        check.append(abs(got / float(it["avoided_deaths_central"][i]) - 1))
    per_option = (time.perf_counter() - t0) / len(pick)
    res["baseline_pipeline_s_per_option"] = per_option
    res["baseline_pipeline_s_all_options"] = per_option * res["options"]
    res["intensity_speedup_vs_pipeline_loop"] = per_option * res["options"] / res["intensity_s"]
    res["intensity_vs_pipeline_max_rel_diff"] = float(max(check))
    full = it["avoided_deaths_central"].values
    est = it["avoided_deaths_md"].values
    ok = full > 1e-3 * full.max()
    rel = est[ok] / full[ok] - 1
    res["md_estimate_vs_full_rel_error"] = {"median_abs": float(np.median(np.abs(rel))),
                                            "p5": float(np.percentile(rel, 5)), "p95": float(np.percentile(rel, 95)),
                                            "n": int(ok.sum())}
    if not args.no_target:
        t0, c0 = time.perf_counter(), time.process_time()
        tg = target(stages=st, intensity=it)
        res["target_s"] = time.perf_counter() - t0
        res["target_cpu_s"] = time.process_time() - c0
        if args.figures:
            from engine.marginal import figures

            d = Path(args.figures)
            d.mkdir(parents=True, exist_ok=True)
            md_all = md.expand_dims(scenario=[st.base]).assign_coords(
                source_lat=("source", [s_.lat for s_ in st.prep.sources]),
                source_lon=("source", [s_.lon for s_ in st.prep.sources]))
            md_all.attrs.update({"base_scenario": st.base, "crf": hm.crf})
            figures.plot_damage_map(md_all, d / "marginal_damage_map.png")
            figures.plot_top_intensities(it, d / "top_intensities.png")
            figures.plot_targeted_vs_uniform(tg, d / "targeted_vs_uniform.png")
        s = json.loads(tg.attrs["summary"])
        s.pop("pipeline_summary", None)
        res["headline"] = s
    res["peak_rss_gb"] = _rss_gb()
    res["load_average_end"] = list(os.getloadavg())
    out = Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_marginal.json").write_text(json.dumps(res, indent=2, default=float) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "headline"}, indent=2, default=float))
    if "headline" in res:
        h = res["headline"]
        print("uniform", {k: v for k, v in h["uniform"].items() if k != "high_high_cities"})
        print("targeted", {k: v for k, v in h["targeted"].items() if k != "high_high_cities"})
        print("high_high", h["high_high"], "solver", h["solver"])


if __name__ == "__main__":
    main()
