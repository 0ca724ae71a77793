"""Writing a report through an output transaction: as an amendment of the run folder it
describes, or as an output folder of its own (:mod:`engine.output.persist`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.report.html import build_report, check_run_folder
from engine.report.runfolder import RunOutput

__all__ = ["write_report", "REPORT_FOLDER"]


#: the report's folder inside a run folder
REPORT_FOLDER = "report"


def write_report(run_dir, sweep_dir=None, *, out_dir=None, **kwargs):
    """Build the report (:func:`build_report`) inside an output transaction
    (:mod:`engine.output.persist`).

    * ``cobenefits report RUN_DIR`` (no ``--out``, or ``--out RUN_DIR/report``): the report is an
      *amendment* of the run folder. The run's other files are kept, ``report/`` is replaced as a
      whole, and the run's ``manifest.json`` lists the new report files and records the amendment,
      so ``verify_output(RUN_DIR)`` still passes; the run's lock is held meanwhile (a ``run`` into
      the same folder waits its turn: exit 2 naming the holder). A run folder that no longer
      matches its manifest (edited by hand) is not amended: exit 2, write elsewhere with ``--out``.
      A folder without a manifest (not written by ``cobenefits run``) gets ``RUN_DIR/report`` as
      its own output folder.
    * ``--out DIR`` elsewhere: ``DIR`` is its own output folder with its own manifest; it may not
      lie inside the run folder or the sweep folder (it would change the run's files).

    Parameters
    ----------
    run_dir : path of a ``cobenefits run --out`` folder
    sweep_dir : optional sweep folder
    out_dir : optional output folder; default (and ``RUN_DIR/report``): amend the run folder
    **kwargs : passed to :func:`build_report` (city, scenario, formats)

    Returns
    -------
    ReportResult
        With ``out_dir`` and ``index`` pointing at the committed files.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir, **kwargs)  # every check before the transaction: nothing is locked or staged
    with RunOutput(run_dir, out_dir, REPORT_FOLDER, inputs=[sweep_dir], command="report") as out:
        res = build_report(run_dir, sweep_dir, out_dir=out.folder, **kwargs)
    final = out.final
    staged = Path(res.out_dir)
    return dataclasses.replace(res, out_dir=final, index=final / res.index.name,
                               figures=[final / Path(p).relative_to(staged) for p in res.figures])
