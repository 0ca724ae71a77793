"""The sweep driver: chunked evaluation over samples, resume, and the output files.

:func:`sweep` validates the sweep file (:mod:`engine.sensitivity.spec`), builds the national
model once (:class:`engine.sampled.NationalModel`: one source-receptor matrix per distinct
dispersion level, the carbon structure, the health tables), draws the sample design, evaluates
it in chunks (:func:`engine.sampled.evaluate_chunk`, local Dask threads or a
``dask.distributed`` cluster), saves every finished chunk (a re-run with the same spec,
configuration, data and code reuses them), computes the indices
(:mod:`engine.sensitivity.indices`) and writes ``samples.csv``, ``sweep.nc``, ``indices.csv``
and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.sampled import OUTPUTS, NationalModel, evaluate_chunk
from engine.sensitivity.indices import analyze, city_indices
from engine.sensitivity.spec import (SweepSpec, apply_overrides, check_parameters, expected_count, load_spec,
                                     parse_spec, sample)

__all__ = ["sweep"]

log = logging.getLogger("cobenefits")


def _chunk_task(item, shared):
    start, stop = item
    ev = shared["evaluator"]
    vals = shared["values"].iloc[start:stop]
    return ev(vals)


class _TableEvaluator:
    """Picklable evaluator of the national model on its shared tables."""

    def __init__(self, tables, outputs, carbon_chunk=256):
        self.tables = tables
        self.outputs = tuple(outputs)
        self.carbon_chunk = carbon_chunk

    def __call__(self, values):
        parts = [evaluate_chunk(self.tables, values.iloc[s:s + self.carbon_chunk], self.outputs)
                 for s in range(0, len(values), self.carbon_chunk)]
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in self.outputs}


def _save_chunk(path, arrays):
    from engine.output.writers import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load_chunk(path, outputs, n):
    try:
        with np.load(path) as z:
            arr = {k: z[k] for k in outputs}
    except (OSError, KeyError, ValueError):
        return None
    if any(a.shape[0] != n for a in arr.values()):
        return None
    return arr


def _run_chunks(evaluator, values, outputs, chunk_dir, chunk_size, *, workers=None, scheduler=None, client=None,
                quiet=False):
    """Evaluate every chunk not already saved in ``chunk_dir``; returns (n computed, n reused)."""
    from engine.parallel import Progress, available_cores, run_tasks

    n = len(values)
    bounds = [(s, min(n, s + chunk_size)) for s in range(0, n, chunk_size)]
    todo = []
    reused = 0
    for i, (s, e) in enumerate(bounds):
        f = chunk_dir / f"chunk_{s:09d}_{e:09d}.npz"
        if f.exists() and _load_chunk(f, outputs, e - s) is not None:
            reused += 1
        else:
            todo.append((i, s, e, f))
    prog = Progress(len(bounds), desc="sweep chunks", quiet=quiet, log_every=max(1, len(bounds) // 20))
    prog.update(reused)
    nw = workers if workers and workers > 0 else available_cores()
    batch = max(1, 2 * nw) if not (scheduler or client) else max(4, 4 * nw)
    shared = {"evaluator": evaluator, "values": values}
    cl = client
    own = False
    if cl is None and scheduler:
        from engine.parallel import connect

        cl, own = connect(scheduler), True
    try:
        for b0 in range(0, len(todo), batch):
            part = todo[b0:b0 + batch]
            res = run_tasks(_chunk_task, [(i, (s, e)) for i, s, e, _ in part], shared=shared, workers=nw,
                            client=cl, quiet=True, desc="sweep chunks")
            for i, s, e, f in part:
                _save_chunk(f, res[i])
                prog.update()
    finally:
        if own:
            cl.close()
    return len(todo), reused, bounds


def _values_for_output(values):
    """samples.csv / NetCDF coordinates: choices as strings, numbers as floats."""
    out = {}
    for k in values.columns:
        v = values[k]
        if pd.api.types.is_bool_dtype(v):
            out[k] = v.to_numpy(dtype=bool)
        elif not pd.api.types.is_numeric_dtype(v):
            if all(isinstance(x, (bool, np.bool_)) for x in v):
                out[k] = v.astype(bool).to_numpy()
            elif all(isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) for x in v):
                out[k] = v.astype(float).to_numpy()
            else:
                out[k] = np.array([str(x) for x in v], dtype=str)
        else:
            out[k] = v.to_numpy()
    return out


def _write_netcdf(path, spec, values, chunk_dir, bounds, outputs, city, dims, attrs, extra=None):
    """DIR/sweep.nc (CF-1.8, NetCDF-4), written chunk by chunk (memory bounded by a chunk)."""
    import netCDF4

    from engine.output.writers import atomic_path

    n = len(values)
    with atomic_path(path) as tmp:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.Conventions = "CF-1.8"
            for k, v in attrs.items():
                setattr(nc, k, v)
            nc.createDimension("sample", n)
            vs = nc.createVariable("sample", "i8", ("sample",))
            vs[:] = np.arange(n)
            vs.long_name = "index of the sample (row of samples.csv)"
            if city is not None:
                nc.createDimension("city", len(city))
                vc = nc.createVariable("city", "i8", ("city",))
                vc[:] = city
                vc.long_name = "city id (2010 administrative code)"
            coords = ["sample"]
            for j, (k, v) in enumerate(_values_for_output(values).items()):
                name = f"param_{j}"
                if v.dtype.kind in "US":
                    var = nc.createVariable(name, str, ("sample",))
                    var[:] = v.astype(object)
                elif v.dtype.kind == "b":
                    var = nc.createVariable(name, "i1", ("sample",))
                    var[:] = v.astype(np.int8)
                else:
                    var = nc.createVariable(name, "f8", ("sample",))
                    var[:] = v.astype(float)
                var.long_name = f"sweep parameter {k}"
                var.sweep_key = k
                coords.append(name)
            for o in outputs:
                dd = dims[o]
                var = nc.createVariable(o, "f8", dd, zlib=True, complevel=1,
                                        chunksizes=(min(n, 4096),) + ((min(len(city), 64),) if len(dd) == 2 else ()),
                                        fill_value=np.nan)
                meta = OUTPUTS.get(o)
                var.units = meta[1] if meta else "1"
                var.long_name = meta[2] if meta else o
                var.coordinates = " ".join(coords[1:])
            for s, e in bounds:
                arr = _load_chunk(chunk_dir / f"chunk_{s:09d}_{e:09d}.npz", outputs, e - s)
                for o in outputs:
                    nc.variables[o][s:e] = arr[o]
            for name, (dd, data, meta) in (extra or {}).items():
                for dname, size in zip(dd, np.shape(data)):
                    if dname not in nc.dimensions:
                        nc.createDimension(dname, size)
                if np.asarray(data).dtype.kind in "US":
                    var = nc.createVariable(name, str, dd)
                    var[:] = np.asarray(data, dtype=object)
                else:
                    var = nc.createVariable(name, "f8", dd, fill_value=np.nan)
                    var[:] = np.asarray(data, dtype=float)
                for a, b in meta.items():
                    setattr(var, a, b)


def _open_sweep(path, spec):
    import xarray as xr

    ds = xr.open_dataset(path)
    ren = {}
    for v in list(ds.variables):
        key = ds[v].attrs.get("sweep_key")
        if key:
            ren[v] = key
    ds = ds.rename(ren).set_coords(list(ren.values()))
    return ds


def sweep(spec, *, out=None, samples=None, seed=None, chunk_size=None, workers=None, scheduler=None, client=None,
          quiet=True, evaluator=None, data=None, carbon_fn=None, age_population_fn=None, use_cache=True,
          kernel_fn=None, sr_fn=None):
    """Run a sensitivity sweep.

    Parameters
    ----------
    spec : path, SweepSpec or dict (a parsed sweep file)
    out : path, optional
        Output folder: ``samples.csv``, ``sweep.nc``, ``indices.csv``, ``summary.json`` and
        ``chunks/`` (finished chunks; a re-run with the same spec, configuration and data reuses
        them; stages replaced by callables are recognised by name only). Default: a
        temporary folder, removed after the result is loaded into memory.
    samples, seed, chunk_size : int, optional
        Override the sweep file's values.
    workers, scheduler, client :
        Local Dask threads (0 = all cores), or a ``dask.distributed`` scheduler address/client.
    evaluator : callable, optional
        Replaces the national model: ``evaluator(values: DataFrame) -> {output: array (n,)}``
        with attributes ``outputs`` (names) and ``key_info(key) -> KeyInfo`` (used to test the
        machinery, e.g. on the Ishigami function).
    data, carbon_fn, age_population_fn, use_cache, kernel_fn :
        As :func:`engine.run`.
    sr_fn : callable(prep) -> Dataset, optional
        Replaces :func:`engine.pipeline.sr_matrix` (see :class:`NationalModel`).

    Returns
    -------
    xarray.Dataset
        Dimensions ``sample`` (and ``city``): every output of the sweep file, every parameter as
        a coordinate on ``sample``; national indices as ``S1(output, parameter)`` ... (by method);
        ``attrs['summary']`` (JSON): method, counts, seed, timings, resolved spec.
    """
    from engine._version import __version__
    from engine.output.writers import versions, write_csv, write_json

    t_all = time.perf_counter()
    if isinstance(spec, SweepSpec):
        spec = apply_overrides(spec, {"samples": samples, "seed": seed, "chunk_size": chunk_size})
    elif isinstance(spec, dict):
        spec = apply_overrides(parse_spec(spec), {"samples": samples, "seed": seed, "chunk_size": chunk_size})
    else:
        spec = load_spec(spec, samples=samples, seed=seed, chunk_size=chunk_size)
    timings = {}
    t0 = time.perf_counter()
    if evaluator is None:
        model = NationalModel(spec, data=data, carbon_fn=carbon_fn, age_population_fn=age_population_fn,
                              use_cache=use_cache, workers=workers, scheduler=scheduler, client=client, quiet=quiet,
                              kernel_fn=kernel_fn, sr_fn=sr_fn)
        spec = check_parameters(spec, model.key_info)
        model.spec = spec
        outputs = spec.outputs
        city = np.array(model.prep.selected, dtype=np.int64)
    else:
        spec = check_parameters(spec, evaluator.key_info)
        outputs = tuple(evaluator.outputs)
        spec = dataclasses.replace(spec, outputs=outputs)
        city = None
    timings["setup_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    unit, values = sample(spec)
    timings["sampling_s"] = time.perf_counter() - t0
    n = len(values)
    if evaluator is None:
        t0 = time.perf_counter()
        tables = model.tables(values)
        timings.update(model.timings)
        timings["sr_and_tables_s"] = time.perf_counter() - t0
        ev = _TableEvaluator(tables, outputs)
        dims = {o: OUTPUTS[o][0] for o in outputs}
    else:
        ev = evaluator
        dims = {o: ("sample",) for o in outputs}
    tmpdir = None
    if out is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="cobenefits-sweep-")
        out_dir = Path(tmpdir.name)
    else:
        out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        digest = spec.digest() + "-" + (model.identity() if evaluator is None else type(evaluator).__name__)
        chunk_dir = out_dir / "chunks" / digest
        chunk_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        n_comp, n_reused, bounds = _run_chunks(ev, values, outputs, chunk_dir, spec.chunk_size, workers=workers,
                                               scheduler=scheduler, client=client, quiet=quiet)
        timings["evaluate_s"] = time.perf_counter() - t0
        timings["samples_per_s"] = n / timings["evaluate_s"] if n_comp == len(bounds) and timings["evaluate_s"] > 0 \
            else None
        # indices of the national (scalar) outputs
        t0 = time.perf_counter()
        rows = []
        nat = [o for o in outputs if dims[o] == ("sample",)]
        Yn = {}
        for o in nat:
            Yn[o] = np.concatenate([_load_chunk(chunk_dir / f"chunk_{s:09d}_{e:09d}.npz", [o], e - s)[o]
                                    for s, e in bounds])
            df = analyze(spec, unit, values, Yn[o])
            if df is not None:
                df.insert(0, "output", o)
                rows.append(df)
        indices = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["output", "parameter"])
        extra = {}
        if not indices.empty:
            outs = list(dict.fromkeys(indices["output"]))
            for c in indices.columns[2:]:
                tab = indices.pivot(index="output", columns="parameter", values=c).reindex(index=outs,
                                                                                        columns=spec.keys)
                extra[f"index_{c}"] = (("output", "parameter"), tab.to_numpy(float),
                                       {"long_name": f"sensitivity index {c} of the national output",
                                        "units": "1"})
            extra["output"] = (("output",), np.array(outs, dtype=str), {"long_name": "national output"})
            extra["parameter"] = (("parameter",), np.array(spec.keys, dtype=str), {"long_name": "sweep parameter"})
        timings["indices_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_all
        summary = {
            "method": spec.method, "samples_base": spec.samples, "evaluations": n,
            "evaluations_expected": expected_count(spec),
            "count_rule": {"sobol": f"Saltelli N({'2D+2' if spec.second_order else 'D+2'}) with N = {spec.samples}, "
                                    f"D = {len(spec.parameters)}",
                           "morris": f"N(D+1) with N = {spec.samples} trajectories, D = {len(spec.parameters)}",
                           "grid": "product of the parameters' levels",
                           "lhs": "N", "mc": "N"}[spec.method],
            "n_parameters": len(spec.parameters), "seed": spec.seed,
            "sobol_n_power_of_two": bool(spec.samples & (spec.samples - 1) == 0) if spec.method == "sobol" else None,
            "chunks": len(bounds), "chunks_computed": n_comp, "chunks_reused": n_reused,
            "chunk_size": spec.chunk_size, "n_cities": 0 if city is None else int(len(city)),
            "outputs": {o: {"dims": list(dims[o]), "units": OUTPUTS[o][1] if o in OUTPUTS else "1"} for o in outputs},
            "spec": spec.as_dict(), "spec_digest": digest,
            "versions": {**versions(), "engine": __version__, "SALib": _salib_version()},
            "timings_s": timings,
        }
        if evaluator is None:
            summary["scenario"] = spec.scenario
            summary["base_scenario"] = model.base
            summary["dispersion_levels"] = len(tables.S)
        nat_summary = {o: {"mean": float(np.mean(y)), "sd": float(np.std(y)), "p2_5": float(np.percentile(y, 2.5)),
                           "p97_5": float(np.percentile(y, 97.5))} for o, y in Yn.items() if np.isfinite(y).all()}
        summary["national_distribution"] = nat_summary
        # files
        vout = _values_for_output(values)
        sdf = pd.DataFrame(vout)
        sdf.insert(0, "sample", np.arange(n))
        write_csv(sdf, out_dir / "samples.csv", float_format="%.17g")
        write_csv(indices, out_dir / "indices.csv", float_format="%.6g")
        if spec.method == "sobol" and spec.second_order and rows:
            s2 = []
            for df in rows:
                for a in range(len(spec.keys)):
                    for b in range(a + 1, len(spec.keys)):
                        s2.append({"output": df["output"].iloc[0], "parameter_1": spec.keys[a],
                                   "parameter_2": spec.keys[b], "S2": df.attrs["S2"][a, b],
                                   "S2_conf": df.attrs["S2_conf"][a, b]})
            write_csv(pd.DataFrame(s2), out_dir / "indices_s2.csv", float_format="%.6g")
        attrs = {"title": "cobenefits sensitivity sweep", "source": f"cobenefits {__version__} engine.sensitivity.sweep",
                 "sweep_method": spec.method, "sweep_spec": json.dumps(spec.as_dict(), default=str),
                 "seed": spec.seed}
        _write_netcdf(out_dir / "sweep.nc", spec, values, chunk_dir, bounds, outputs, city, dims, attrs, extra)
        if spec.method == "sobol" and city is not None:
            t0 = time.perf_counter()
            city_idx = city_indices(spec, out_dir / "sweep.nc", [o for o in outputs if dims[o] == ("sample", "city")])
            if city_idx is not None:
                write_csv(city_idx, out_dir / "city_indices.csv", float_format="%.6g")
            timings["city_indices_s"] = time.perf_counter() - t0
        write_json(summary, out_dir / "summary.json")
        ds = _open_sweep(out_dir / "sweep.nc", spec)
        if tmpdir is not None:
            ds = ds.load()
            ds.close()
        ds.attrs["summary"] = json.dumps(summary, default=str)
        return ds
    finally:
        if tmpdir is not None:
            with contextlib.suppress(OSError):
                tmpdir.cleanup()


def _salib_version():
    try:
        from importlib.metadata import version

        return version("SALib")
    except Exception:  # noqa: BLE001 - version lookup only
        return "unknown"

