"""``cobenefits aermod CONTROL.inp [LISTING.out]``: run an AERMOD control file for area sources.

Reads the subset of AERMOD's keyword language that area-source studies use
(:mod:`engine.aermod.control`: AREA, AREAPOLY and AREACIRC sources, source groups, flagpole
receptors, URBANOPT/URBANSRC), computes hourly concentrations with AERMOD's area-source
formulation (:mod:`engine.dispersion.area` with AERMOD's tabulated lateral normal CDF,
``lateral_cdf="aermod_table"``; met from :mod:`engine.dispersion.met`, observed turbulence included),
and writes the POSTFILE and PLOTFILE outputs the control file names, per source group, in
AERMOD's column layout, and optionally the summary tables of AERMOD's listing file.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from engine.aermod.control import (
    PlotHeader,
    count_complete_years,
    read_aermod_inp,
    read_sfc_dates,
    read_sfc_header,
    write_plotfile_period,
    write_postfile_hourly,
    write_postfile_period,
    write_summary_listing,
)
from engine.aermod.mode import compute_groups, turbulence_label
from engine.errors import InputError
from engine.output.tables import write_text

__all__ = ["NAME", "HELP", "add_arguments", "run", "run_control_file"]

NAME = "aermod"
HELP = ("run an AERMOD control file (AREA/AREAPOLY/AREACIRC sources, rural or urban, flat "
        "terrain) and write the POSTFILE/PLOTFILE outputs it names, in AERMOD's layout")

log = logging.getLogger("cobenefits.aermod")

#: shown with exit 2 when the run does not fit in memory (engine.cli): the arrays scale with
#: receptors x hours (hourly POSTFILE and RECTABLE keep every hour of every receptor)
MEMORY_ADVICE = ("the receptors x hours do not fit: use fewer receptors (the GRIDCART XYINC counts, DISCCART "
                 "lines) or a met file with fewer hours")

#: AERMOD mode: AERMOD's tabulated normal CDF for the crosswind integral (4 decimals, 0 / 1
#: beyond +-3.9 sigma-y), so that hourly values match AERMOD's in the far-lateral tail too
#: (see engine.dispersion.area; the national run keeps the exact CDF)
LATERAL_CDF = "aermod_table"


def add_arguments(parser):
    parser.add_argument(
        "control", metavar="CONTROL.inp",
        help="AERMOD control (runstream) file; file names inside it (met files, outputs) are "
             "relative to its folder")
    parser.add_argument(
        "--outdir", metavar="DIR", default=argparse.SUPPRESS,
        help="folder for the output files the control file names (POSTFILE, PLOTFILE, "
             "ERRORFIL); default: the control file's folder, where AERMOD would write them")
    parser.add_argument(
        "--method", choices=("auto", "direct", "gridded"), default="auto",
        help="evaluation path: direct sums every source for every receptor; gridded uses the "
             "offset kernel and FFT convolution (sources on a regular grid of equal cells, "
             "receptors on an aligned grid); auto picks gridded when it applies")
    parser.add_argument(
        "listing", metavar="LISTING.out", nargs="?", default=None,
        help="also write the summary tables of AERMOD's listing file here (the PERIOD "
             "highest values per source group and the RECTABLE high 1-hour values), like "
             "'aermod CONTROL.inp LISTING.out'; relative to the current folder")


def run(args):
    _preload_blas_capsules()
    run_control_file(args.control, outdir=getattr(args, "outdir", None), method=args.method,
                     listing=getattr(args, "listing", None))
    return 0


def _preload_blas_capsules():
    """Load SciPy's ``cython_blas`` extension alone, before numba needs it (start-up time).

    The first cached kernel a process loads makes numba initialise its lowering registries,
    which check for BLAS with ``import scipy.linalg.cython_blas``: that imports the whole
    ``scipy.linalg`` package (0.1-0.15 s, a fifth of a ``cobenefits aermod`` run on caseC) only
    to find the extension module whose function capsules numba links ``np.dot`` against.
    Loading that one extension module under its own name first gives numba the same module
    (``_HAVE_BLAS`` true, ``np.dot`` compiles and runs) without the package; a later
    ``import scipy.linalg`` reuses it. Does nothing once numba's registries are loaded or
    ``scipy.linalg`` is imported, and falls back to numba's own import on any failure.
    """
    import sys

    name = "scipy.linalg.cython_blas"
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules or name in sys.modules:
        return
    try:
        import importlib.machinery
        import importlib.util

        import scipy

        folder = Path(scipy.__file__).parent / "linalg"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"cython_blas{suffix}"
            if path.is_file():
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
                return
    except Exception:  # any problem: numba imports scipy.linalg itself, as without this
        return


def run_control_file(control, *, outdir=None, method="auto", listing=None):
    """Run one AERMOD control file; return a dict of timings and output paths.

    Parameters
    ----------
    control : str or Path
        The AERMOD control file.
    outdir : str or Path, optional
        Where relative output file names are resolved (default: the control file's folder).
    method : {"auto", "direct", "gridded"}
        Passed to :func:`engine.dispersion.area.area_concentrations`.
    listing : str or Path, optional
        Where to write the summary tables of AERMOD's listing file
        (:func:`engine.aermod.control.write_summary_listing`).
    """
    t0 = time.perf_counter()
    ctl = read_aermod_inp(control)
    for msg in ctl.messages:  # notes (also written to ERRORFIL); errors raise instead
        log.info(msg)
    base = Path(outdir) if outdir is not None else ctl.path.resolve().parent
    info = {"control": str(ctl.path), "outputs": [], "n_sources": len(ctl.sources),
            "n_receptors": len(ctl.receptors)}
    if not ctl.run:
        log.info("%s: RUNORNOT NOT: control file checked (%d sources, %d receptors); "
                 "nothing computed", ctl.path, len(ctl.sources), len(ctl.receptors))
        _write_error_file(ctl, base, ["RUNORNOT NOT: setup checked only; no results computed"])
        return info

    _check_outputs(ctl, base, listing)
    from engine.dispersion.met import read_aermet

    met = read_aermet(ctl.surface_file, ctl.profile_file)
    n_hours = int(np.asarray(met.wind_speed_m_s).size)
    dates = getattr(met, "date", None)
    dates = read_sfc_dates(ctl.surface_file) if dates is None else np.asarray(dates, np.int64)
    if dates.size != n_hours:
        raise InputError(f"{ctl.surface_file}: {dates.size} dated records but the met reader "
                         f"returned {n_hours} hours")
    t_setup = time.perf_counter()

    rec = ctl.receptors
    hourly_by_group, period_by_group = compute_groups(ctl, met, method=method, lateral_cdf=LATERAL_CDF)
    t_compute = time.perf_counter()

    modops = ctl.modops_string(turbulence_label(met))
    header = PlotHeader(title=ctl.title_one, met_version=read_sfc_header(ctl.surface_file),
                        model_options=modops, file_form=ctl.file_form)
    n_years = count_complete_years(dates)
    for o in ctl.outputs:
        target = Path(o.filename)
        target = target if target.is_absolute() else base / target
        if o.keyword == "POSTFILE" and o.averaging == "1":
            write_postfile_hourly(target, hourly_by_group[o.group], rec, dates, header,
                                  group=o.group)
        elif o.keyword == "POSTFILE":
            write_postfile_period(target, period_by_group[o.group], rec, n_hours, header,
                                  group=o.group)
        else:
            write_plotfile_period(target, period_by_group[o.group], rec, n_hours, header,
                                  n_years=n_years, group=o.group)
        info["outputs"].append(str(target))
        log.info("wrote %s (%s %s)", target, o.keyword, o.averaging)
    if listing is not None:
        n_miss = int(np.sum(np.asarray(getattr(met, "missing", np.zeros(n_hours, bool)))))
        n_calm = int(np.sum(np.asarray(getattr(met, "calm", np.zeros(n_hours, bool)))))
        write_summary_listing(listing, ctl, model_options=modops, period_by_group=period_by_group,
                              hourly_by_group=hourly_by_group, dates=dates, n_hours=n_hours,
                              n_missing=n_miss, n_calm=n_calm)
        info["outputs"].append(str(listing))
        log.info("wrote %s (summary listing)", listing)
    _write_error_file(ctl, base, [])
    t_end = time.perf_counter()
    evals = len(ctl.sources) * len(rec) * n_hours
    info.update(n_hours=n_hours, evaluations=evals, setup_s=t_setup - t0,
                compute_s=t_compute - t_setup, write_s=t_end - t_compute, total_s=t_end - t0)
    log.info("%s: %d sources x %d receptors x %d hours in %.3f s (compute %.3f s, "
             "%.3g evaluations/s)", ctl.path.name, len(ctl.sources), len(rec), n_hours,
             t_end - t0, t_compute - t_setup, evals / max(t_compute - t_setup, 1e-12))
    return info


def _check_outputs(ctl, base, listing):
    """No output file is the control file, a met file or another output (exit 2 naming both),
    before any met is read (the guard every writing command shares: engine.output.locks)."""
    from engine.output.locks import check_outputs

    def resolve(name):
        p = Path(name)
        return p if p.is_absolute() else base / p

    outs = [(f"{o.keyword} {o.averaging} {o.group}", resolve(o.filename), "file") for o in ctl.outputs]
    if ctl.error_file:
        outs.append(("ERRORFIL", resolve(ctl.error_file), "file"))
    if listing is not None:
        outs.append(("LISTING.out", Path(listing), "file"))
    check_outputs(outs, [("CONTROL.inp", ctl.path), ("SURFFILE", ctl.surface_file), ("PROFFILE", ctl.profile_file)],
                  what="an AERMOD output file")


def _write_error_file(ctl, base, extra):
    """ERRORFIL: the run's messages, one per line (AERMOD's message file, in our words)."""
    if not ctl.error_file:
        return
    target = Path(ctl.error_file)
    target = target if target.is_absolute() else base / target
    from engine._version import __version__

    lines = [f"cobenefits {__version__} aermod messages for {ctl.path}"]
    lines += list(ctl.messages) + list(extra)
    lines.append(f"{len(ctl.messages) + len(extra)} message(s); no errors")
    write_text("\n".join(lines) + "\n", target)
