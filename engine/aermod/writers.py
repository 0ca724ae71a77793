"""AERMOD's output files: POSTFILE/PLOTFILE records and the summary tables of the listing.

The writers of ``cobenefits aermod`` (split from :mod:`engine.aermod.control`, which reads the
control file and re-exports these names): Fortran ``Fw.d``/``Ew.d`` formatting as gfortran
writes it, the 8 header lines, the PLOT-format records in AERMOD's column layout (``output.f``),
written atomically, and the listing's PERIOD top ten and RECTABLE high values (``PRTSUM``).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from engine.output.persist import atomic_path

#: AERMOD's PLOT-format POSTFILE/PLOTFILE record formats (FILEFORM EXP and FIX)
_FORMAT_EXP = "(2(1X,F13.5),1X,E13.6,3(1X,F8.2),2X,A6,2X,A8,2X,I8.8,2X,A8)"
_FORMAT_FIX = "(3(1X,F13.5),3(1X,F8.2),2X,A6,2X,A8,2X,I8.8,2X,A8)"


# --------------------------------------------------------------------------- Fortran formats
def fortran_f(value, width, decimals):
    """Fortran ``Fw.d``: fixed point, right-justified; asterisks when it does not fit."""
    v = float(value)
    if math.isnan(v):
        return "NaN".rjust(width)
    if math.isinf(v):
        return ("Infinity" if v > 0 else "-Infinity").rjust(width)
    s = f"{v + 0.0:{width}.{decimals}f}"  # + 0.0 turns -0.0 into 0.0
    return s if len(s) <= width else "*" * width


def fortran_f_many(values, width, decimals):
    """:func:`fortran_f` of every value of a sequence (the same strings, without a Python
    call per value: the receptor columns of every POSTFILE/PLOTFILE record)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    out = [f"{x + 0.0:{width}.{decimals}f}" for x in v.tolist()]
    out = [t if len(t) <= width else "*" * width for t in out]
    for i in np.flatnonzero(~np.isfinite(v)):
        out[i] = fortran_f(v[i], width, decimals)
    return out


def fortran_e(value, width=13, decimals=6):
    """Fortran ``Ew.d`` as gfortran writes it: ``0.ddddddE+xx`` (mantissa in [0.1, 1)).

    With a three-digit exponent the ``E`` is dropped (``0.100000-100``), as the Fortran
    standard specifies.
    """
    v = float(value)
    if math.isnan(v):
        return "NaN".rjust(width)
    if math.isinf(v):
        return ("Infinity" if v > 0 else "-Infinity").rjust(width)
    if v == 0.0:
        body = "0." + "0" * decimals + "E+00"
    else:
        # identity: x = m * 10**e with 1 <= m < 10  ==  0.(m digits) * 10**(e + 1)
        s = f"{abs(v):.{decimals - 1}e}"
        mant, exp = s.split("e")
        digits = mant.replace(".", "")
        e = int(exp) + 1
        sign = "-" if v < 0 else ""
        if abs(e) <= 99:
            body = f"{sign}0.{digits}E{'+' if e >= 0 else '-'}{abs(e):02d}"
        else:
            body = f"{sign}0.{digits}{'+' if e >= 0 else '-'}{abs(e):03d}"
    return body.rjust(width) if len(body) <= width else "*" * width


def plot_format(file_form):
    """The Fortran record format AERMOD names in the header (``FORMAT:`` line)."""
    return _FORMAT_EXP if file_form == "EXP" else _FORMAT_FIX


# --------------------------------------------------------------------------- writers
@dataclass(frozen=True)
class PlotHeader:
    """Run-wide fields of the 8 ``*`` header lines AERMOD writes in POSTFILE/PLOTFILE files.

    Line 1 names this program (``COBENEFITS``) where AERMOD names itself, with the same
    title and date fields; lines 2-8 follow AERMOD's ``PSTANN``/``PLTANN`` formats.
    """

    title: str
    met_version: str
    model_options: str  #: e.g. "  RegDFAULT  CONC  ELEV  RURAL" (ControlFile.modops_string)
    file_form: Literal["EXP", "FIX"] = "EXP"
    program_version: str = ""
    run_time: _dt.datetime = field(default_factory=_dt.datetime.now)

    def lines(self, kind, *, group, n_receptors, n_years=0, hours=1):
        """The 8 header lines (no newlines) for ``kind`` in {"hourly", "period_post",
        "period_plot"}."""
        ver = self.program_version or _program_version()
        date = self.run_time.strftime("%m/%d/%y")
        clock = self.run_time.strftime("%H:%M:%S")
        l1 = f"* COBENEFITS ({ver[:6]:<6s}): {self.title[:68]:<68s}     {date}"
        l2 = f"* AERMET ({self.met_version[:6]:>6s}):".ljust(92) + clock
        l3 = "* MODELING OPTIONS USED: " + self.model_options
        grp = f"{group[:8]:<8s}"
        if kind == "hourly":
            l4 = (f"*         POST/PLOT FILE OF CONCURRENT {hours:2d}-HR VALUES FOR SOURCE "
                  f"GROUP: {grp}")
        elif kind == "period_post":
            l4 = f"*         POST/PLOT FILE OF PERIOD VALUES FOR SOURCE GROUP: {grp}"
        elif kind == "period_plot":
            l4 = (f"*         PLOT FILE OF PERIOD VALUES AVERAGED ACROSS {n_years:3d} YEARS FOR "
                  f"SOURCE GROUP: {grp}")
        else:
            raise ValueError(f"kind must be hourly, period_post or period_plot, not {kind!r}")
        l5 = f"*         FOR A TOTAL OF {n_receptors:5d} RECEPTORS."
        l6 = f"*         FORMAT: {plot_format(self.file_form):<200s}"
        counter = "      DATE  " if kind == "hourly" else "     NUM HRS"
        l7 = ("*        X             Y      AVERAGE CONC    ZELEV    ZHILL    ZFLAG    AVE     "
              f"GRP {counter}   NET ID")
        l8 = ("* ____________  ____________  ____________   ______   ______   ______  ______  "
              "________  ________  ________")
        return [l1, l2, l3, l4, l5, l6, l7, l8]


def _program_version():
    from engine._version import __version__

    return __version__


#: the last receptors' formatted columns: ((net ids, copies of the coordinate arrays),
#: (head, zhf, tail)); a run writes several files for the same receptors, formatted once
_RECEPTOR_TEXT = [None, None]


def _receptor_columns(receptors):
    """Per-receptor text of the X, Y columns, the ZELEV, ZHILL, ZFLAG columns and NET ID
    (formatted once per receptors object)."""
    cols = (receptors.x_m, receptors.y_m, receptors.elevation_m, receptors.hill_height_m,
            receptors.flagpole_m)
    key = _RECEPTOR_TEXT[0]
    if (key is not None and key[0] == tuple(receptors.net_id)
            and all(np.array_equal(a, b) for a, b in zip(key[1], cols))):
        return _RECEPTOR_TEXT[1]
    head = [f" {x} {y}" for x, y in zip(fortran_f_many(receptors.x_m, 13, 5),
                                          fortran_f_many(receptors.y_m, 13, 5))]
    zhf = [f" {z} {h} {f}"
           for z, h, f in zip(fortran_f_many(receptors.elevation_m, 8, 2),
                              fortran_f_many(receptors.hill_height_m, 8, 2),
                              fortran_f_many(receptors.flagpole_m, 8, 2))]
    tail = [f"  {n[:8]:<8s}" for n in receptors.net_id]
    _RECEPTOR_TEXT[:] = [(tuple(receptors.net_id), tuple(np.array(a, copy=True) for a in cols)),
                         (head, zhf, tail)]
    return head, zhf, tail


def _receptor_parts(receptors, ave_label, group):
    """Per-receptor fixed text before and after the CONC field and the counter field."""
    head, zhf, tail = _receptor_columns(receptors)
    label = f"  {ave_label:>6s}  {group[:8]:<8s}  "
    return head, [z + label for z in zhf], tail


def _conc_formatter(file_form):
    if file_form == "EXP":
        return lambda v: " " + fortran_e(v, 13, 6)
    return lambda v: " " + fortran_f(v, 13, 5)


def e13_6_bytes(values):
    """Vectorised :func:`fortran_e` (width 13, 6 decimals): an (n, 13) uint8 array.

    Values whose 6-digit rounding is within 1e-6 of a tie, three-digit exponents, NaN and
    infinities are formatted by :func:`fortran_e` itself, so the two agree byte for byte.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    out = np.empty((v.size, 13), dtype=np.uint8)
    a = np.abs(v)
    ok = np.isfinite(v) & (a >= 1e-98) & (a < 1e98)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(ok, np.floor(np.log10(np.where(ok, a, 1.0))), 0.0).astype(np.int64) + 1
        # identity: a = m * 10**e with 0.1 <= m < 1; fix log10's last-digit slips
        m = np.where(ok, a / 10.0 ** e, 0.0)
        e = np.where(m >= 1.0, e + 1, np.where(m < 0.1, e - 1, e))
        m = np.where(ok, a / 10.0 ** e, 0.0)
    scaled = m * 1e6
    frac = scaled - np.floor(scaled)
    ok &= np.abs(frac - 0.5) > 1e-6  # near a rounding tie: leave it to the exact formatter
    digits = np.floor(scaled + 0.5).astype(np.int64)
    carry = digits >= 1_000_000  # 0.9999996 -> 0.100000E+01
    digits = np.where(carry, digits // 10, digits)
    e = np.where(carry, e + 1, e)
    ok &= np.abs(e) <= 99
    zero = v == 0.0
    out[:] = np.frombuffer(b" 0.000000E+00", dtype=np.uint8)
    out[:, 0] = np.where(v < 0, ord("-"), ord(" "))
    for k in range(6):  # mantissa digits, most significant first
        out[:, 3 + k] = ord("0") + (digits // 10 ** (5 - k)) % 10
    out[:, 10] = np.where(e < 0, ord("-"), ord("+"))
    ae = np.abs(e)
    out[:, 11] = ord("0") + ae // 10
    out[:, 12] = ord("0") + ae % 10
    out[zero] = np.frombuffer(b" 0.000000E+00", dtype=np.uint8)
    for i in np.flatnonzero(~ok & ~zero):
        out[i] = np.frombuffer(fortran_e(v[i], 13, 6).encode("ascii"), dtype=np.uint8)
    return out


def _check_shape(conc, shape, what):
    conc = np.asarray(conc, dtype=np.float64)
    if conc.shape != shape:
        raise ValueError(f"{what}: expected shape {shape}, got {conc.shape}")
    return conc


#: column offsets of a PLOT record: 2 x (1X,F13.5) | 1X,E13.6 | 3 x (1X,F8.2),2X,A6,2X,A8,2X |
#: I8.8 | 2X,A8 | newline
_CONC_AT = 28 + 1
_STAMP_AT = 28 + 14 + 27 + 2 + 6 + 2 + 8 + 2
_RECORD_LEN = _STAMP_AT + 8 + 10 + 1


def _write_records(fh, conc, receptors, ave_label, group, stamps, file_form):
    """Write (n_stamps x n_receptors) PLOT records; ``fh`` is a binary file.

    The fixed text of each receptor is laid out once, then every block of hours is filled in
    as a byte array (CONC with :func:`e13_6_bytes`, the DATE/NUM HRS stamp); FILEFORM FIX
    and anything that would not give fixed-width ASCII records go through the per-line
    formatter.
    """
    head, mid, tail = _receptor_parts(receptors, ave_label, group)
    n = len(head)
    stamps = [f"{int(d):08d}" for d in stamps]
    template = "".join(f"{head[i]}{' ' * 14}{mid[i]}{'0' * 8}{tail[i]}\n" for i in range(n))
    raw = template.encode("utf-8")
    fast = (file_form == "EXP" and len(raw) == n * _RECORD_LEN
            and all(len(st) == 8 for st in stamps))
    if not fast:
        fmt = _conc_formatter(file_form)
        for k, st in enumerate(stamps):
            row = conc[k]
            fh.write("".join(f"{head[i]}{fmt(row[i])}{mid[i]}{st}{tail[i]}\n"
                             for i in range(n)).encode("utf-8"))
        return
    tmpl = np.frombuffer(raw, dtype=np.uint8).reshape(n, _RECORD_LEN)
    stamp_bytes = np.frombuffer("".join(stamps).encode("ascii"), dtype=np.uint8).reshape(-1, 8)
    per_block = max(1, (32 << 20) // max(n * _RECORD_LEN, 1))  # about 32 MB per write
    for h0 in range(0, len(stamps), per_block):
        h1 = min(h0 + per_block, len(stamps))
        block = np.empty((h1 - h0, n, _RECORD_LEN), dtype=np.uint8)
        block[:] = tmpl
        block[:, :, _CONC_AT:_CONC_AT + 13] = e13_6_bytes(conc[h0:h1]).reshape(h1 - h0, n, 13)
        block[:, :, _STAMP_AT:_STAMP_AT + 8] = stamp_bytes[h0:h1, None, :]
        fh.write(block.tobytes())


def _write_file(path, header_lines, conc2d, receptors, ave_label, group, stamps, file_form):
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(("\n".join(header_lines) + "\n").encode("utf-8"))
        _write_records(fh, conc2d, receptors, ave_label, group, stamps, file_form)


def write_postfile_hourly(path, conc, receptors, dates, header, *, group="ALL"):
    """Write a PLOT-format POSTFILE of concurrent 1-hour values, atomically.

    Parameters
    ----------
    path : str or Path
    conc : array (n_hours, n_receptors)
        Hourly concentrations [ug m-3] (0 for calm and missing hours, as AERMOD writes).
    receptors : Receptors
    dates : array of int (n_hours,)
        AERMOD hour stamps YYMMDDHH (hour ending, 01-24).
    header : PlotHeader
    group : str
        Source group ID.
    """
    dates = np.asarray(dates)
    conc = _check_shape(conc, (dates.size, len(receptors)), "hourly concentrations")
    lines = header.lines("hourly", group=group, n_receptors=len(receptors), hours=1)
    _write_file(path, lines, conc, receptors, "1-HR", group, dates, header.file_form)


def _write_period(path, kind, conc, receptors, n_hours, header, group, n_years):
    conc = _check_shape(conc, (len(receptors),), "period concentrations")
    lines = header.lines(kind, group=group, n_receptors=len(receptors), n_years=n_years)
    _write_file(path, lines, conc[None, :], receptors, "PERIOD", group, [n_hours],
                header.file_form)


def write_postfile_period(path, conc, receptors, n_hours, header, *, group="ALL"):
    """Write a PLOT-format POSTFILE of PERIOD averages, atomically.

    ``n_hours`` is the number of hours processed (AERMOD's IANHRS, calms and missing hours
    included), written in the NUM HRS column.
    """
    _write_period(path, "period_post", conc, receptors, n_hours, header, group, 0)


def write_plotfile_period(path, conc, receptors, n_hours, header, *, n_years=0, group="ALL"):
    """Write a PLOTFILE of PERIOD averages (AERMOD ``PLTANN`` layout), atomically.

    The data records are the same as the PERIOD POSTFILE's; the header says
    "PLOT FILE OF PERIOD VALUES AVERAGED ACROSS n YEARS".
    """
    _write_period(path, "period_plot", conc, receptors, n_hours, header, group, n_years)



# --------------------------------------------------------------------------- summary listing
def _ordinal(n):
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


def _receptor_text(receptors, i):
    """'(  XR,  YR, ZELEV, ZHILL, ZFLAG)  GC  CG1     ' as AERMOD's summary tables print it."""
    net = receptors.net_id[i]
    kind = "GC" if net else "DC"
    return (f"({receptors.x_m[i]:11.2f},{receptors.y_m[i]:12.2f},{receptors.elevation_m[i]:9.2f},"
            f"{receptors.hill_height_m[i]:9.2f},{receptors.flagpole_m[i]:8.2f})  {kind}  "
            f"{net[:8]:<8s}")


def write_summary_listing(path, ctl, *, model_options, period_by_group, hourly_by_group, dates,
                          n_hours, n_missing, n_calm, program_version="", run_time=None):
    """Write the summary tables of AERMOD's listing file (``aermod.out``), atomically.

    Holds what the RECTABLE and PERIOD summaries of AERMOD's listing hold (``output.f``
    ``PRTSUM``), in AERMOD's column layout: for every source group the ten highest PERIOD
    values with their receptors ("THE SUMMARY OF MAXIMUM PERIOD ... RESULTS"), and for each
    RECTABLE rank n the highest n-th-highest 1-hour value over the receptors with its hour and
    receptor ("THE SUMMARY OF HIGHEST 1-HR RESULTS"). The source-data, receptor and
    receptor-by-receptor pages of AERMOD's listing are not written.

    Parameters
    ----------
    path : str or Path
    ctl : ControlFile
    model_options : str
        The options text (:meth:`ControlFile.modops_string`).
    period_by_group, hourly_by_group : dict
        Group ID -> PERIOD (n_receptors,) and hourly (n_hours, n_receptors) values [ug m-3].
    dates : array of int
        YYMMDDHH of each hour.
    n_hours, n_missing, n_calm : int
        Hours processed, missing and calm (AERMOD's PERIOD label counts all hours).
    """
    run_time = run_time or _dt.datetime.now()
    ver = program_version or _program_version()
    rec = ctl.receptors
    lines = [f" *** COBENEFITS - VERSION {ver[:8]:<8s} ***   *** {ctl.title_one[:68]:<68s} ***"
             f"        {run_time.strftime('%m/%d/%y')}",
             f" *** cobenefits aermod summary of {ctl.path.name}"
             f"{'':<30s}{run_time.strftime('%H:%M:%S')}",
             "",
             f" *** MODELOPTs:  {model_options}",
             "",
             f" ***  {n_hours} hours processed; {n_missing} missing and {n_calm} calm hours "
             "(excluded from the PERIOD divisor, EPA calms policy)",
             ""]
    if ctl.messages:  # AERMOD's listing repeats its setup warnings (e.g. W320 on a SRCPARAM)
        lines += ["    ********   WARNING MESSAGES   ******** "]
        lines += [f" {m}" for m in ctl.messages] + [""]
    unit = f"** CONC OF {ctl.pollutant_id[:8]:<8s} IN MICROGRAMS/M**3"
    dash = "- " * 60
    if "PERIOD" in ctl.averaging_times:
        lines += [f"{'':40s}*** THE SUMMARY OF MAXIMUM PERIOD ({n_hours:6d} HRS) RESULTS ***",
                  "", "", f"{'':36s}{unit:<64s}**", "",
                  f"{'':109s}NETWORK",
                  "GROUP ID                       AVERAGE CONC                RECEPTOR  "
                  "(XR, YR, ZELEV, ZHILL, ZFLAG)  OF TYPE  GRID-ID",
                  dash, ""]
        for g, _ in ctl.groups:
            vals = period_by_group[g]
            order = np.argsort(-vals, kind="stable")[:10]
            for k, i in enumerate(order, 1):
                gid = g if k == 1 else ""
                lines.append(f"{gid[:8]:<8s} {_ordinal(k):>4s} HIGHEST VALUE IS{vals[i]:14.5f} AT "
                             + _receptor_text(rec, i))
            lines.append("")
        lines += ["", " *** RECEPTOR TYPES:  GC = GRIDCART", "                      DC = DISCCART", ""]
    for ave, ranks in ctl.rectables:
        if ave != "1" or not ranks:
            continue
        lines += [f"{'':48s}*** THE SUMMARY OF HIGHEST  1-HR RESULTS ***", "", "",
                  f"{'':36s}{unit:<64s}**", "",
                  f"{'':54s}DATE{'':68s}NETWORK",
                  "GROUP ID                          AVERAGE CONC     (YYMMDDHH)             "
                  "RECEPTOR  (XR, YR, ZELEV, ZHILL, ZFLAG)    OF TYPE  GRID-ID",
                  dash + "- - - - - ", "  "]
        for g, _ in ctl.groups:
            h = hourly_by_group[g]
            # n-th highest hour at every receptor (AERMOD keeps the earlier hour on ties)
            order = np.argsort(-h, axis=0, kind="stable")
            for k, n in enumerate(ranks):
                if n > h.shape[0]:
                    continue
                idx = order[n - 1]
                nth = h[idx, np.arange(h.shape[1])]
                i = int(np.argmax(nth))
                gid = g if k == 0 else ""
                lines.append(f"{gid[:8]:<8s} HIGH {_ordinal(n):>4s} HIGH VALUE IS{nth[i]:14.5f}  ON "
                             f"{int(dates[idx[i]]):08d}: AT " + _receptor_text(rec, i))
            lines.append("  ")
        lines += ["", " *** RECEPTOR TYPES:  GC = GRIDCART", "                      DC = DISCCART", ""]
    from engine.output.tables import write_text

    write_text("\n".join(lines) + "\n", path)


def read_summary_values(path):
    """(group, kind, rank, value) rows of the summary tables of an AERMOD listing file
    (``aermod.out``) or of :func:`write_summary_listing` output; kind is "PERIOD" or "1-HR".
    For comparing the two programs' summaries."""
    rows = []
    group = ""
    kind = None
    for line in Path(path).read_text(errors="replace").splitlines():
        if "THE SUMMARY OF MAXIMUM PERIOD" in line:
            kind = "PERIOD"
        elif "THE SUMMARY OF HIGHEST  1-HR" in line:
            kind = "1-HR"
        elif "RECEPTOR TYPES" in line:
            kind = None
        if kind is None or "VALUE IS" not in line:
            continue
        if line[:8].strip():
            group = line[:8].strip()
        head, _, rest = line.partition("VALUE IS")
        rank = int("".join(ch for ch in head.split("HIGH")[-2 if kind == "1-HR" else 0][-5:]
                           if ch.isdigit()) or 0)
        value = float(rest.split()[0])
        at = rest.split("AT (", 1)[1].split(")", 1)[0]
        rows.append((group, kind, rank, value, tuple(float(v) for v in at.split(","))))
    return rows
