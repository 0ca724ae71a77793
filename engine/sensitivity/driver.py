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
from engine.sensitivity.indices import city_indices, indices_extra, national_indices
from engine.sensitivity.spec import (SweepSpec, apply_overrides, check_parameters, check_size, expected_count,
                                     load_spec, parse_spec, sample)

__all__ = ["sweep"]

log = logging.getLogger("cobenefits")


def _chunk_task(item, shared):
    start, stop = item
    ev = shared["evaluator"]
    vals = shared["values"].iloc[start:stop]
    return ev(vals)


class _TableEvaluator:
    """Picklable evaluator of the national model on its shared tables."""

    def __init__(self, tables, outputs, carbon_chunk=1024):
        self.tables = tables
        self.outputs = tuple(outputs)
        self.carbon_chunk = carbon_chunk

    def __call__(self, values):
        parts = [evaluate_chunk(self.tables, values.iloc[s:s + self.carbon_chunk], self.outputs)
                 for s in range(0, len(values), self.carbon_chunk)]
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in self.outputs}


def _save_chunk(path, arrays):
    """A finished chunk, with its SHA-256 sidecar (engine.output.persist.save_verified_npz)."""
    from engine.output.persist import save_verified_npz

    save_verified_npz(path, **arrays)


def _load_chunk(path, outputs, n):
    """A finished chunk, or None: a missing, truncated, corrupt or foreign chunk is deleted and
    recomputed, as the field cache does (engine.output.persist.load_verified_npz)."""
    from engine.output.persist import load_verified_npz

    arr = load_verified_npz(path, outputs)
    if arr is None or any(a.shape[0] != n for a in arr.values()):
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
        f = _chunk_file(chunk_dir, s, e)
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
                arr = _load_chunk(_chunk_file(chunk_dir, s, e), outputs, e - s)
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
        Output folder: ``samples.csv``, ``sweep.nc``, ``indices.csv``, ``summary.json`` (and
        ``city_indices.csv``, ``indices_s2.csv``) with a ``manifest.json``, written as one
        transaction (:class:`engine.output.persist.OutputTransaction`: locked, all or nothing;
        an existing folder must be empty or hold a previous sweep). Finished chunks are kept
        beside it in ``.<out>.chunks/`` (a re-run with the same spec, configuration, data and
        code reuses them; stages replaced by callables are recognised by name only).
        Default: a temporary folder, removed after the result is loaded into memory.
    samples, seed, chunk_size : int, optional
        Override the sweep file's values (same ranges as the file's keys).
    workers, scheduler, client :
        Local Dask threads (0 = all cores), or a ``dask.distributed`` scheduler address/client.
    evaluator : callable, optional
        Replaces the national model: ``evaluator(values: DataFrame) -> {output: array (n,)}``
        with attributes ``outputs`` (names) and ``key_info(key) -> KeyInfo`` (used to test the
        machinery, e.g. on the Ishigami function).
    data, carbon_fn, age_population_fn, use_cache, kernel_fn :
        As :func:`engine.run`.
    sr_fn : callable(prep) -> Dataset, optional
        Replaces :func:`engine.pipeline.sr_matrix` (see :class:`engine.sampled.NationalModel`).

    Returns
    -------
    xarray.Dataset
        Dimensions ``sample`` (and ``city``): every output of the sweep file, every parameter as
        a coordinate on ``sample``; national indices as ``index_S1(output, parameter)`` ... (by
        method); ``attrs['summary']`` (JSON): method, counts, seed, timings, resolved spec,
        which indices were computed and why not where not.
    """
    t_all = time.perf_counter()
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise InputError(f"--workers {workers}: must be >= 0 (0 = all cores)")
    spec = _resolve_spec(spec, samples=samples, seed=seed, chunk_size=chunk_size)
    timings = {}
    t0 = time.perf_counter()
    model = None
    if evaluator is None:
        model = NationalModel(spec, data=data, carbon_fn=carbon_fn, age_population_fn=age_population_fn,
                              use_cache=use_cache, workers=workers, scheduler=scheduler, client=client, quiet=quiet,
                              kernel_fn=kernel_fn, sr_fn=sr_fn)
        spec = check_parameters(spec, model.key_info)
        model.spec = spec
        outputs = spec.outputs
        city = np.array(model.prep.selected, dtype=np.int64)
        dims = {o: OUTPUTS[o][0] for o in outputs}
        model.precheck()  # every level's configuration, met and health inputs: before any dispersion work
    else:
        spec = check_parameters(spec, evaluator.key_info)
        outputs = tuple(evaluator.outputs)
        spec = dataclasses.replace(spec, outputs=outputs)
        city = None
        dims = {o: ("sample",) for o in outputs}
    check_size(spec)
    timings["setup_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    unit, values = sample(spec)
    timings["sampling_s"] = time.perf_counter() - t0
    tmpdir = tempfile.TemporaryDirectory(prefix="cobenefits-sweep-") if out is None else None
    out_dir = Path(tmpdir.name) / "sweep" if tmpdir is not None else Path(out)
    try:
        with _transaction(out_dir, spec, model) as tx:
            if model is not None:
                t0 = time.perf_counter()
                tables = model.tables(values)
                timings.update(model.timings)
                timings["sr_and_tables_s"] = time.perf_counter() - t0
                ev = _TableEvaluator(tables, outputs)
                digest = spec.digest() + "-" + model.identity()
            else:
                ev, tables = evaluator, None
                digest = spec.digest() + "-" + type(evaluator).__name__
            chunk_dir = _chunk_store(out_dir) / digest
            chunk_dir.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            n_comp, n_reused, bounds = _run_chunks(ev, values, outputs, chunk_dir, spec.chunk_size, workers=workers,
                                                   scheduler=scheduler, client=client, quiet=quiet)
            timings["evaluate_s"] = time.perf_counter() - t0
            timings["samples_per_s"] = (len(values) / timings["evaluate_s"]
                                        if n_comp == len(bounds) and timings["evaluate_s"] > 0 else None)
            t0 = time.perf_counter()
            Yn = {o: np.concatenate([_load_chunk(_chunk_file(chunk_dir, s, e), [o], e - s)[o] for s, e in bounds])
                  for o in outputs if dims[o] == ("sample",)}
            indices, status, s2 = national_indices(spec, unit, values, Yn)
            timings["indices_s"] = time.perf_counter() - t0
            summary = _summary(spec, values, bounds, n_comp, n_reused, city, dims, digest, timings, status, Yn)
            if model is not None:
                summary.update(scenario=spec.scenario, base_scenario=model.base, dispersion_levels=len(tables.S),
                               health=model.health_summary())
            _write_files(tx, spec, values, indices, s2, chunk_dir, bounds, outputs, city, dims, summary, timings,
                         t_all)
        _forget_other_chunks(out_dir, digest)
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


def _resolve_spec(spec, **overrides):
    if isinstance(spec, SweepSpec):
        return apply_overrides(spec, overrides)
    if isinstance(spec, dict):
        return apply_overrides(parse_spec(spec), overrides)
    return load_spec(spec, **overrides)


def _transaction(out_dir, spec, model):
    """The output transaction of a sweep: the sweep file and the scenario files are inputs (an
    ``--out`` holding them is refused), and an existing output folder must be a sweep's."""
    from engine.config import config_to_dict, input_paths
    from engine.output.persist import OutputTransaction, read_manifest

    out_dir = Path(out_dir)
    man = read_manifest(out_dir) if out_dir.is_dir() else None
    if man is not None and man.get("command") != "sweep":
        raise InputError(f"--out {out_dir} holds the output of `{man.get('command') or 'another command'}` "
                         "(its manifest.json); a sweep would replace it as a whole: choose a new or empty folder, "
                         "or a previous sweep's")
    inputs = [p for p in (spec.path, *spec.config) if p and not str(p).startswith("<")]
    cfg = None
    if model is not None:
        inputs += list(input_paths(model.cfg))
        cfg = config_to_dict(model.cfg)
    return OutputTransaction(out_dir, inputs=inputs, config=cfg, command="sweep",
                             extra={"sweep_spec": spec.as_dict()})


def _chunk_store(out_dir):
    """Where the finished chunks of ``out_dir``'s sweeps are kept: ``.<name>.chunks/`` beside it
    (outside the output set, which is replaced as a whole; a killed sweep's chunks survive)."""
    out_dir = Path(out_dir).absolute()
    return out_dir.parent / f".{out_dir.name}.chunks"


def _chunk_file(chunk_dir, s, e):
    return chunk_dir / f"chunk_{s:09d}_{e:09d}.npz"


def _forget_other_chunks(out_dir, digest):
    """After a finished sweep, keep only its chunks (a re-run reuses them; other specs' go)."""
    import shutil

    store = _chunk_store(out_dir)
    for d in store.glob("*"):
        if d.is_dir() and d.name != digest:
            shutil.rmtree(d, ignore_errors=True)


def _summary(spec, values, bounds, n_comp, n_reused, city, dims, digest, timings, status, Yn):
    from engine._version import __version__
    from engine.output.writers import versions

    D = len(spec.parameters)
    summary = {
        "method": spec.method, "samples_base": spec.samples, "evaluations": len(values),
        "evaluations_expected": expected_count(spec),
        "count_rule": {"sobol": f"Saltelli N({'2D+2' if spec.second_order else 'D+2'}) with N = {spec.samples}, "
                                f"D = {D}",
                       "morris": f"N(D+1) with N = {spec.samples} trajectories, D = {D}",
                       "grid": "product of the parameters' levels", "lhs": "N", "mc": "N"}[spec.method],
        "n_parameters": D, "seed": spec.seed,
        "sobol_n_power_of_two": bool(spec.samples & (spec.samples - 1) == 0) if spec.method == "sobol" else None,
        "chunks": len(bounds), "chunks_computed": n_comp, "chunks_reused": n_reused,
        "chunk_size": spec.chunk_size, "n_cities": 0 if city is None else int(len(city)),
        "outputs": {o: {"dims": list(dims[o]), "units": OUTPUTS[o][1] if o in OUTPUTS else "1"} for o in dims},
        "indices": status,
        "spec": spec.as_dict(), "spec_digest": digest,
        "versions": {**versions(), "engine": __version__, "SALib": _salib_version()},
        "timings_s": timings,
    }
    nat = {}
    for o, y in Yn.items():
        ok = np.isfinite(y)
        if ok.all():
            nat[o] = {"mean": float(np.mean(y)), "sd": float(np.std(y)), "p2_5": float(np.percentile(y, 2.5)),
                      "p97_5": float(np.percentile(y, 97.5))}
        else:
            nat[o] = {"non_finite_samples": int((~ok).sum()),
                      "note": "some samples gave no finite value (samples.csv and sweep.nc show which)"}
    summary["national_distribution"] = nat
    return summary


def _write_files(tx, spec, values, indices, s2, chunk_dir, bounds, outputs, city, dims, summary, timings, t_all):
    from engine._version import __version__
    from engine.output.writers import write_csv, write_json

    n = len(values)
    sdf = pd.DataFrame(_values_for_output(values))
    sdf.insert(0, "sample", np.arange(n))
    write_csv(sdf, tx.path("samples.csv"), float_format="%.17g")
    write_csv(indices, tx.path("indices.csv"), float_format="%.6g")
    if s2 is not None:
        write_csv(s2, tx.path("indices_s2.csv"), float_format="%.6g")
    attrs = {"title": "cobenefits sensitivity sweep", "source": f"cobenefits {__version__} engine.sensitivity",
             "sweep_method": spec.method, "sweep_spec": json.dumps(spec.as_dict(), default=str), "seed": spec.seed}
    _write_netcdf(tx.path("sweep.nc"), spec, values, chunk_dir, bounds, outputs, city, dims, attrs,
                  indices_extra(spec, indices))
    if spec.method == "sobol" and city is not None:
        t0 = time.perf_counter()
        cityo = [o for o in outputs if dims[o] == ("sample", "city")]
        city_idx = city_indices(spec, tx.path("sweep.nc"), cityo) if cityo and _enough(spec) else None
        if city_idx is not None:
            write_csv(city_idx, tx.path("city_indices.csv"), float_format="%.6g")
        timings["city_indices_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_all
    write_json(summary, tx.path("summary.json"))


def _enough(spec):
    from engine.sensitivity.indices import too_few_samples

    return too_few_samples(spec) is None


def _salib_version():
    try:
        from importlib.metadata import version

        return version("SALib")
    except Exception:  # noqa: BLE001 - version lookup only
        return "unknown"
