"""AERMOD control-file subset reader (the writers: :mod:`engine.aermod.writers`).

``cobenefits aermod CONTROL.inp [LISTING.out]`` runs an existing AERMOD control file for
ground-level and near-surface AREA, AREAPOLY and AREACIRC sources and writes the POSTFILE and
PLOTFILE outputs it names, in AERMOD's own column layout, so existing post-processing keeps
working, and optionally the summary tables of AERMOD's listing file. This module is the adapter at
that boundary (docs/design.md, rule 3): it maps AERMOD's keyword language onto frozen dataclasses in SI
units, and writes AERMOD's fixed-column text files. The physics lives in
:mod:`engine.dispersion.area`.

Runstream rules (as AERMOD v24142 reads them, ``setup.f``: ``SETUP``/``DEFINE``/``EXPATH``/
``EXKEY``):

* The pathway ID (``CO``, ``SO``, ``RE``, ``ME``, ``OU``) sits in columns 1-2 and the keyword in
  columns 4-11; parameters start in column 13. The whole file may be shifted right by up to
  3 columns; the shift is taken from the first non-blank line.
* A blank pathway field continues the previous pathway; a blank keyword field continues the
  previous keyword (e.g. the ``XYINC`` card of a ``GRIDCART`` block).
* ``**`` in the pathway field makes a comment line. Blank lines are skipped.
* Everything is case-insensitive except titles and file names, which keep their case.
  File names may be put in double quotes to hold blanks.
* Pathways come in the order CO, SO, RE, ME, OU, each opened by ``STARTING`` and closed by
  ``FINISHED``. Reading stops at ``OU FINISHED``.

Supported keywords (anything else is an :class:`~engine.errors.InputError` naming the keyword,
the file and the line):

====  =====================================================================================
CO    STARTING TITLEONE TITLETWO MODELOPT(DFAULT CONC FLAT ELEV) AVERTIME(1 PERIOD) POLLUTID
      RUNORNOT ERRORFIL FLAGPOLE URBANOPT FINISHED
SO    STARTING ELEVUNIT LOCATION(AREA AREAPOLY AREACIRC) SRCPARAM AREAVERT URBANSRC
      SRCGROUP(ALL, IDs, ranges) FINISHED
RE    STARTING ELEVUNIT GRIDCART(STA XYINC XPNTS YPNTS FLAG END) DISCCART FINISHED
ME    STARTING SURFFILE PROFFILE SURFDATA UAIRDATA PROFBASE FINISHED
OU    STARTING RECTABLE FILEFORM(EXP FIX) POSTFILE(1 PERIOD; PLOT; any group)
      PLOTFILE(PERIOD) FINISHED
====  =====================================================================================

Glossary (names used here, with units):

``x_sw_m, y_sw_m``        south-west corner (the LOCATION vertex) of an AREA source [m]
``x_len_m, y_len_m``      side lengths along the source's own x and y axes [m]
``angle_deg``             rotation of the source clockwise from north [deg] (AERMOD's Angle)
``rate_g_m2_s``           area emission rate [g s-1 m-2]
``release_height_m``      release height above ground [m]
``initial_sigma_z_m``     initial vertical dispersion [m]
``elevation_m``           receptor ground elevation [m]
``hill_height_m``         receptor hill-height scale [m]
``flagpole_m``            receptor height above ground [m]
concentrations            [ug m-3] (AERMOD's output unit for CONC)
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from engine.errors import InputError

__all__ = [
    "AreaSourceCard",
    "Receptors",
    "OutputRequest",
    "ControlFile",
    "PlotHeader",
    "read_aermod_inp",
    "read_sfc_header",
    "read_sfc_dates",
    "fortran_e",
    "fortran_f",
    "e13_6_bytes",
    "plot_format",
    "write_postfile_hourly",
    "write_postfile_period",
    "write_plotfile_period",
    "count_complete_years",
    "SUPPORTED_KEYWORDS",
    "SUPPORTED_MODEL_OPTIONS",
]

#: keywords read on each pathway, in AERMOD's pathway order
SUPPORTED_KEYWORDS = {
    "CO": ("STARTING", "TITLEONE", "TITLETWO", "MODELOPT", "AVERTIME", "POLLUTID", "RUNORNOT",
           "ERRORFIL", "FLAGPOLE", "URBANOPT", "FINISHED"),
    "SO": ("STARTING", "ELEVUNIT", "LOCATION", "SRCPARAM", "AREAVERT", "URBANSRC", "SRCGROUP",
           "FINISHED"),
    "RE": ("STARTING", "ELEVUNIT", "GRIDCART", "DISCCART", "FINISHED"),
    "ME": ("STARTING", "SURFFILE", "PROFFILE", "SURFDATA", "UAIRDATA", "PROFBASE", "FINISHED"),
    "OU": ("STARTING", "RECTABLE", "FILEFORM", "POSTFILE", "PLOTFILE", "FINISHED"),
}
_PATHWAYS = tuple(SUPPORTED_KEYWORDS)

#: MODELOPT options accepted. ELEV with all elevations 0 is flat terrain (docs/aermod-formulation.md §4).
SUPPORTED_MODEL_OPTIONS = ("DFAULT", "CONC", "FLAT", "ELEV")

#: keywords that may appear more than once (all others: once per file)
_REPEATABLE = {("SO", "LOCATION"), ("SO", "SRCPARAM"), ("SO", "AREAVERT"), ("SO", "SRCGROUP"),
               ("SO", "URBANSRC"), ("RE", "GRIDCART"), ("RE", "DISCCART"),
               ("OU", "RECTABLE"), ("OU", "POSTFILE"), ("OU", "PLOTFILE")}

#: cards AERMOD requires; missing ones are reported at the pathway's FINISHED card
_MANDATORY = {
    "CO": ("TITLEONE", "MODELOPT", "AVERTIME", "POLLUTID", "RUNORNOT"),
    "SO": ("LOCATION", "SRCPARAM", "SRCGROUP"),
    "RE": (),
    "ME": ("SURFFILE", "PROFFILE", "SURFDATA", "UAIRDATA", "PROFBASE"),
    "OU": (),
}

#: receptor keywords of AERMOD's RE pathway that this subset does not read
_OTHER_RECEPTOR_FORMS = ("GRIDPOLR", "DISCPOLR", "EVALCART", "INCLUDED")

_FEET = 0.3048  # m per foot (ELEVUNIT FEET)
_GRID_SUBCARDS = ("STA", "END", "XYINC", "XPNTS", "YPNTS", "ELEV", "HILL", "FLAG")



# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class AreaSourceCard:
    """One AERMOD AREA source (LOCATION + SRCPARAM), lengths in m, rate in g s-1 m-2."""

    source_id: str
    x_sw_m: float
    y_sw_m: float
    base_elevation_m: float
    rate_g_m2_s: float
    release_height_m: float
    x_len_m: float
    y_len_m: float
    angle_deg: float
    initial_sigma_z_m: float
    line: int  #: line of the SRCPARAM card
    #: AERMOD source type: "AREA", "AREAPOLY" or "AREACIRC"
    source_type: str = "AREA"
    #: AREAPOLY: the vertices ((x, y), ...) [m] from LOCATION and AREAVERT
    vertices: tuple = ()
    #: AREAPOLY and AREACIRC: number of vertices (AREACIRC: of AERMOD's equal-area polygon)
    n_vertices: int = 0
    #: AREACIRC: radius [m]; LOCATION gives the centre (x_sw_m, y_sw_m)
    radius_m: float = 0.0
    #: URBANSRC: the source is modelled with the urban boundary layer
    urban: bool = False


@dataclass(frozen=True)
class Receptors:
    """Receptors in AERMOD's input order (grid networks at their END card, discrete in place).

    ``net_id`` is the GRIDCART network ID, or ``""`` for a discrete receptor (AERMOD writes
    a blank NET ID for those).
    """

    x_m: np.ndarray
    y_m: np.ndarray
    elevation_m: np.ndarray
    hill_height_m: np.ndarray
    flagpole_m: np.ndarray
    net_id: tuple

    def __len__(self):
        return int(self.x_m.size)


@dataclass(frozen=True)
class OutputRequest:
    """One POSTFILE or PLOTFILE card: what to write and where (path relative to outdir)."""

    keyword: Literal["POSTFILE", "PLOTFILE"]
    averaging: Literal["1", "PERIOD"]
    group: str
    filename: str
    line: int


@dataclass(frozen=True)
class ControlFile:
    """The parsed AERMOD control file (the subset ``cobenefits aermod`` runs)."""

    path: Path
    title_one: str
    title_two: str
    model_options: tuple
    averaging_times: tuple  #: subset of ("1", "PERIOD")
    pollutant_id: str
    run: bool  #: RUNORNOT RUN (True) or NOT (False)
    error_file: str | None
    sources: tuple  #: AreaSourceCard, in LOCATION order
    receptors: Receptors
    surface_file: Path
    profile_file: Path
    surface_station: tuple  #: (station id, year)
    upper_air_station: tuple  #: (station id, year)
    profile_base_m: float
    file_form: Literal["EXP", "FIX"]
    outputs: tuple  #: OutputRequest, in card order
    messages: tuple = ()  #: warnings and notes, one line each, with the line number
    #: source groups in definition order: ((group id, (source ids...)), ...)
    groups: tuple = (("ALL", ()),)
    flagpole: bool = False  #: CO FLAGPOLE given (receptor heights above ground read)
    #: CO URBANOPT: (population, name, urban roughness length [m]) or None (rural)
    urban_option: tuple = None
    #: OU RECTABLE: ((averaging "1" | "PERIOD", (ranks...)), ...)
    rectables: tuple = ()

    @property
    def regulatory_default(self):
        return "DFAULT" in self.model_options

    @property
    def terrain(self):
        """AERMOD's terrain label: DFAULT forces ELEV (warning W206); otherwise FLAT if asked."""
        if "FLAT" in self.model_options and not self.regulatory_default:
            return "FLAT"
        return "ELEV"

    def modops_string(self, turbulence=""):
        """The ``MODELING OPTIONS USED`` text AERMOD writes in its file headers.

        ``turbulence`` is AERMOD's observed-turbulence label from the profile file
        (``"SigA&SigW"``, ``"SigA Data"``, ``"SigW Data"`` or ``""``; metext.f PFLCNV), printed
        last as AERMOD does (MODOPS(26)).
        """
        ops = ["RegDFAULT" if self.regulatory_default else "NonDFAULT", "CONC", self.terrain]
        if self.flagpole:
            ops.append("FLGPOL")
        ops.append("URBAN" if self.urban_option is not None else "RURAL")
        if turbulence:
            ops.append(turbulence)
        return "  " + "  ".join(ops)


# --------------------------------------------------------------------------- tokenising
@dataclass
class _Card:
    path: Path
    lineno: int
    pathway: str
    keyword: str
    fields: list  # upper-case parameter fields
    raw: list  # same fields, original case (file names)
    text: str  # original text from the parameter column on (titles)
    continued: bool = False

    def where(self):
        return f"{self.path}, line {self.lineno}"

    def fail(self, msg):
        raise InputError(f"{self.where()}: {self.keyword}: {msg}")


def _split_fields(text, card_where):
    """Split on blanks; a field in double quotes may hold blanks (AERMOD DEFINE)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == " ":
            i += 1
            continue
        if c == '"':
            j = text.find('"', i + 1)
            if j < 0:
                raise InputError(f"{card_where}: unmatched double quote")
            out.append(text[i + 1:j])
            i = j + 1
            continue
        j = text.find(" ", i)
        if j < 0:
            j = n
        out.append(text[i:j])
        i = j
    return out


def _read_cards(path):
    """Yield :class:`_Card` for every non-comment, non-blank line up to ``OU FINISHED``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: control file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the control file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}, line {line}: not a text file (byte {data[exc.start]:#04x} "
                         "is not ASCII/UTF-8)") from None
    shift = None
    prev_path = ""
    prev_key = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.replace("\t", " ").rstrip()
        if not line.strip():
            continue
        if line.lstrip().startswith("**"):
            continue
        if shift is None:
            # AERMOD allows the whole file to be shifted right by up to 3 columns
            first = len(line) - len(line.lstrip())
            shift = first if first <= 3 else 0
        where = f"{path}, line {lineno}"
        pw = line[shift:shift + 2].strip().upper()
        kw_field = line[shift + 3:shift + 11]
        if len(line) > shift + 2 and line[shift + 2] != " ":
            raise InputError(
                f"{where}: the pathway ID must be in columns {shift + 1}-{shift + 2} and the "
                f"keyword in columns {shift + 4}-{shift + 11} (found {line.strip()[:20]!r})")
        if pw:
            pathway = pw
        elif prev_path:
            pathway = prev_path
        else:
            raise InputError(f"{where}: no pathway ID (CO, SO, RE, ME, OU) before this line")
        if len(line) > shift + 11 and line[shift + 11] != " " and kw_field.strip():
            raise InputError(
                f"{where}: keyword {line[shift + 3:].split()[0].upper()!r} does not fit in "
                f"columns {shift + 4}-{shift + 11} (keywords are 8 characters; parameters "
                f"start in column {shift + 13})")
        keyword = kw_field.strip().upper()
        continued = False
        if not keyword:
            if pathway != prev_path or prev_key in ("", "STARTING", "FINISHED"):
                raise InputError(f"{where}: blank keyword field, but there is no previous "
                                 f"keyword on pathway {pathway} to continue")
            keyword = prev_key
            continued = True
        text_after = line[shift + 12:] if len(line) > shift + 12 else ""
        raw = _split_fields(text_after, where)
        card = _Card(Path(path), lineno, pathway, keyword, [f.upper() for f in raw], raw,
                     text_after.strip(), continued)
        yield card
        prev_path, prev_key = pathway, keyword
        if pathway == "OU" and keyword == "FINISHED":
            return


# --------------------------------------------------------------------------- value checks
def _number(card, i, name, *, lo=None, lo_open=False, integer=False, default=None):
    """Parameter ``i`` (0-based, after the keyword) as a finite float or int, range-checked.

    Field numbers in messages follow AERMOD: pathway = 1, keyword = 2, parameters from 3.
    """
    if i >= len(card.fields):
        if default is not None:
            return default
        card.fail(f"missing {name} (field {i + 3})")
    tok = card.fields[i]
    try:
        v = int(tok) if integer else float(tok.replace("D", "E"))
    except ValueError:
        card.fail(f"{name} (field {i + 3}) = {card.raw[i]!r} is not "
                  f"{'an integer' if integer else 'a number'}")
    if not integer and not math.isfinite(v):
        card.fail(f"{name} (field {i + 3}) = {card.raw[i]!r} is not a finite number")
    if lo is not None and (v <= lo if lo_open else v < lo):
        card.fail(f"{name} (field {i + 3}) = {card.raw[i]!r} must be "
                  f"{'>' if lo_open else '>='} {lo:g}")
    return v


def _max_fields(card, n, what):
    if len(card.fields) > n:
        card.fail(f"too many fields ({len(card.fields)} after the keyword; {what})")


def _unsupported_keyword(card):
    kw, pw = card.keyword, card.pathway
    if pw == "RE" and kw in _OTHER_RECEPTOR_FORMS:
        raise InputError(
            f"{card.where()}: receptors given as {kw} are not supported by cobenefits aermod "
            f"(use GRIDCART with XYINC/XPNTS/YPNTS, or DISCCART)")
    supported = " ".join(k for k in SUPPORTED_KEYWORDS[pw] if k not in ("STARTING", "FINISHED"))
    raise InputError(
        f"{card.where()}: keyword {kw!r} on pathway {pw} is not supported by cobenefits aermod "
        f"(supported on {pw}: {supported}, plus STARTING and FINISHED)")


def _split_id(sid):
    """(prefix, number) of a source ID whose tail is digits, else (sid, None)."""
    i = len(sid)
    while i > 0 and sid[i - 1].isdigit():
        i -= 1
    return (sid[:i], int(sid[i:])) if i < len(sid) else (sid, None)


def _in_range(sid, lo, hi):
    """AERMOD source range 'lo-hi': same prefix, numeric part within [lo, hi]."""
    p, n = _split_id(sid)
    plo, nlo = _split_id(lo)
    phi, nhi = _split_id(hi)
    if n is None or nlo is None or nhi is None or not (p == plo == phi):
        return False
    return nlo <= n <= nhi


# --------------------------------------------------------------------------- the reader
class _Builder:
    """Mutable state while reading; turned into a frozen :class:`ControlFile` at the end."""

    def __init__(self, path):
        self.path = Path(path)
        self.folder = self.path.resolve().parent
        self.seen = {}  # (pathway, keyword) -> first line
        self.messages = []
        # CO
        self.title_one = ""
        self.title_two = ""
        self.model_options = ()
        self.averaging_times = ()
        self.pollutant_id = ""
        self.run = True
        self.error_file = None
        # SO
        self.so_feet = False
        self.locations = {}  # id -> (x, y, z, line)
        self.params = {}  # id -> AreaSourceCard
        self.group_seen = False
        self.verts = {}  # AREAPOLY id -> [(x, y), ...]
        self.groups = {}  # group id -> [source ids] (None = ALL), definition order
        self.group_lines = {}
        self.urban_sources = set()
        self.urbansrc_line = None
        self.flagpole = False
        self.flagpole_default_m = 0.0
        self.urban_option = None
        self.rectables = []
        # RE
        self.re_feet = False
        self.rec = {"x": [], "y": [], "z": [], "h": [], "f": [], "net": []}
        self.grid = None  # open GRIDCART network
        self.grid_ids = set()
        # ME
        self.surface_file = None
        self.profile_file = None
        self.surface_station = None
        self.upper_air_station = None
        self.profile_base_m = None
        # OU
        self.file_form = "FIX"  # AERMOD's default
        self.outputs = []
        self._noted = set()

    # ----- CO
    def co_TITLEONE(self, c):
        self.title_one = c.text[:68]
        if len(c.text) > 68:
            self.messages.append(f"{c.where()}: TITLEONE longer than 68 characters; truncated")

    def co_TITLETWO(self, c):
        self.title_two = c.text[:68]

    def co_MODELOPT(self, c):
        if not c.fields:
            c.fail("no options given (expected e.g. 'DFAULT CONC')")
        for i, opt in enumerate(c.fields):
            if opt not in SUPPORTED_MODEL_OPTIONS:
                c.fail(f"option {c.raw[i]!r} (field {i + 3}) is not supported; cobenefits "
                       f"aermod runs AERMOD's rural, flat-terrain concentration calculation "
                       f"(supported options: {', '.join(SUPPORTED_MODEL_OPTIONS)})")
        opts = tuple(dict.fromkeys(c.fields))
        if "FLAT" in opts and "ELEV" in opts:
            c.fail("FLAT and ELEV are mutually exclusive")
        if "DFAULT" in opts and "FLAT" in opts:
            self.messages.append(f"{c.where()}: FLAT is overridden by DFAULT (AERMOD W206); "
                                 "with all elevations 0 the results are the same")
        self.model_options = opts

    def co_AVERTIME(self, c):
        if not c.fields:
            c.fail("no averaging periods given (expected '1 PERIOD', '1' or 'PERIOD')")
        out = []
        for i, tok in enumerate(c.fields):
            if tok == "PERIOD":
                out.append("PERIOD")
                continue
            try:
                hours = int(tok)
            except ValueError:
                hours = None
            if hours == 1:
                out.append("1")
            else:
                c.fail(f"averaging period {c.raw[i]!r} (field {i + 3}) is not supported "
                       "(supported: 1 and PERIOD)")
        if len(set(out)) != len(out):
            c.fail("an averaging period is given twice")
        self.averaging_times = tuple(out)

    def co_POLLUTID(self, c):
        if len(c.fields) != 1:
            c.fail("expected one pollutant ID (e.g. OTHER, PM25)")
        self.pollutant_id = c.fields[0]

    def co_RUNORNOT(self, c):
        if len(c.fields) != 1 or c.fields[0] not in ("RUN", "NOT"):
            c.fail(f"expected RUN or NOT, found {' '.join(c.raw) or 'nothing'!r}")
        self.run = c.fields[0] == "RUN"

    def co_ERRORFIL(self, c):
        _max_fields(c, 1, "expected one file name")
        self.error_file = c.raw[0] if c.raw else "ERRORS.LST"  # AERMOD's default name

    def co_FLAGPOLE(self, c):
        _max_fields(c, 1, "expected 'FLAGPOLE [default height]'")
        self.flagpole = True
        self.flagpole_default_m = _number(c, 0, "default flagpole height [m]", lo=0.0,
                                          default=0.0)

    def co_URBANOPT(self, c):
        if not c.fields:
            c.fail("expected 'URBANOPT population [name [roughness length]]'")
        _max_fields(c, 3, "expected 'URBANOPT population [name [roughness length]]' (one "
                          "urban area; several urban areas are not supported)")
        pop = _number(c, 0, "urban population", lo=0.0, lo_open=True)
        name = c.raw[1] if len(c.fields) > 1 else ""
        z0 = _number(c, 2, "urban roughness length [m]", lo=0.0, lo_open=True, default=1.0)
        if z0 != 1.0 and "DFAULT" in self.model_options:
            self.messages.append(f"{c.where()}: urban roughness length {z0:g} m is not allowed "
                                 "with DFAULT; 1.0 m used (AERMOD W206)")
            z0 = 1.0
        self.urban_option = (pop, name, z0)

    # ----- SO
    def so_ELEVUNIT(self, c):
        self.so_feet = self._elevunit(c)

    def _elevunit(self, c):
        if len(c.fields) != 1 or c.fields[0] not in ("METERS", "FEET"):
            c.fail(f"expected METERS or FEET, found {' '.join(c.raw) or 'nothing'!r}")
        return c.fields[0] == "FEET"

    def so_LOCATION(self, c):
        if len(c.fields) < 4:
            c.fail("expected 'LOCATION srcid AREA|AREAPOLY|AREACIRC x y [z]'")
        sid, stype = c.fields[0], c.fields[1]
        if len(sid) > 12:
            c.fail(f"source ID {c.raw[0]!r} is longer than 12 characters")
        if stype not in ("AREA", "AREAPOLY", "AREACIRC"):
            c.fail(f"source {c.raw[0]!r}: source type {c.raw[1]!r} is not supported "
                   "(cobenefits aermod models AREA, AREAPOLY and AREACIRC sources only)")
        if sid in self.locations:
            c.fail(f"source {c.raw[0]!r} is defined twice (first on line "
                   f"{self.locations[sid][3]})")
        _max_fields(c, 5, "expected 'LOCATION srcid AREA x y [z]'")
        x = _number(c, 2, "x (south-west corner)")
        y = _number(c, 3, "y (south-west corner)")
        z = _number(c, 4, "base elevation", default=0.0)
        if z != 0.0:
            c.fail(f"source {c.raw[0]!r}: base elevation {c.raw[4]!r} is not 0; terrain "
                   "is not supported (flat terrain only)")
        self.locations[sid] = (x, y, z * (_FEET if self.so_feet else 1.0), c.lineno, stype)

    def so_SRCPARAM(self, c):
        if not c.fields:
            c.fail("missing the source ID")
        sid = c.fields[0]
        if sid not in self.locations:
            c.fail(f"source {c.raw[0]!r} has no LOCATION card before this SRCPARAM")
        if sid in self.params:
            c.fail(f"source {c.raw[0]!r} has a second SRCPARAM card (first on line "
                   f"{self.params[sid].line})")
        stype = self.locations[sid][4]
        if stype == "AREAPOLY":
            self._srcparam_poly(c, sid)
            return
        if stype == "AREACIRC":
            self._srcparam_circ(c, sid)
            return
        _max_fields(c, 7, "expected 'SRCPARAM srcid rate relhgt xinit [yinit [angle "
                          "[szinit]]]'")
        rate = _number(c, 1, "emission rate [g/s/m2]", lo=0.0)
        relhgt = _number(c, 2, "release height [m]", lo=0.0)
        xinit = _number(c, 3, "x length [m]", lo=0.0, lo_open=True)
        yinit = _number(c, 4, "y length [m]", lo=0.0, lo_open=True, default=xinit)
        angle = _number(c, 5, "angle [deg]", default=0.0)
        szinit = _number(c, 6, "initial sigma-z [m]", lo=0.0, default=0.0)
        if abs(angle) > 180.0:
            c.fail(f"angle [deg] (field 8) = {c.raw[5]!r} must be within -180..180")
        self._warn_large(c, relhgt, szinit)
        x, y, z, _, _ = self.locations[sid]
        self.params[sid] = AreaSourceCard(
            source_id=c.raw[0], x_sw_m=x, y_sw_m=y, base_elevation_m=z, rate_g_m2_s=rate,
            release_height_m=relhgt, x_len_m=xinit, y_len_m=yinit, angle_deg=angle,
            initial_sigma_z_m=szinit, line=c.lineno)

    def _warn_large(self, c, relhgt, szinit):
        """AERMOD's range warnings on a SRCPARAM card (soset.f APARM, APPARM, ACPARM: W320
        for a release height above 100 m or an initial sigma-z above 200 m); the source is
        still modelled, as AERMOD does."""
        if relhgt > 100.0:
            self.messages.append(f"{c.where()}: SRCPARAM {c.raw[0]}: release height {relhgt:g} m "
                                 "is above 100 m; modelled as given (AERMOD W320, HS)")
        if szinit > 200.0:
            self.messages.append(f"{c.where()}: SRCPARAM {c.raw[0]}: initial sigma-z {szinit:g} m "
                                 "is above 200 m; modelled as given (AERMOD W320, SZINIT)")

    def _srcparam_poly(self, c, sid):
        """AREAPOLY: 'SRCPARAM srcid rate relhgt nverts [szinit]' (soset.f APPARM)."""
        _max_fields(c, 5, "expected 'SRCPARAM srcid rate relhgt nverts [szinit]' for AREAPOLY")
        rate = _number(c, 1, "emission rate [g/s/m2]", lo=0.0)
        relhgt = _number(c, 2, "release height [m]", lo=0.0)
        nv = _number(c, 3, "number of vertices", integer=True, lo=3)
        szinit = _number(c, 4, "initial sigma-z [m]", lo=0.0, default=0.0)
        self._warn_large(c, relhgt, szinit)
        x, y, z, _, _ = self.locations[sid]
        self.params[sid] = AreaSourceCard(
            source_id=c.raw[0], x_sw_m=x, y_sw_m=y, base_elevation_m=z, rate_g_m2_s=rate,
            release_height_m=relhgt, x_len_m=0.0, y_len_m=0.0, angle_deg=0.0,
            initial_sigma_z_m=szinit, line=c.lineno, source_type="AREAPOLY", n_vertices=nv)

    def _srcparam_circ(self, c, sid):
        """AREACIRC: 'SRCPARAM srcid rate relhgt radius [nverts [szinit]]' (soset.f ACPARM);
        20 vertices by default."""
        _max_fields(c, 6, "expected 'SRCPARAM srcid rate relhgt radius [nverts [szinit]]' for "
                          "AREACIRC")
        rate = _number(c, 1, "emission rate [g/s/m2]", lo=0.0)
        relhgt = _number(c, 2, "release height [m]", lo=0.0)
        radius = _number(c, 3, "radius [m]", lo=0.0, lo_open=True)
        nv = _number(c, 4, "number of vertices", integer=True, lo=3, default=20)
        szinit = _number(c, 5, "initial sigma-z [m]", lo=0.0, default=0.0)
        self._warn_large(c, relhgt, szinit)
        x, y, z, _, _ = self.locations[sid]
        self.params[sid] = AreaSourceCard(
            source_id=c.raw[0], x_sw_m=x, y_sw_m=y, base_elevation_m=z, rate_g_m2_s=rate,
            release_height_m=relhgt, x_len_m=0.0, y_len_m=0.0, angle_deg=0.0,
            initial_sigma_z_m=szinit, line=c.lineno, source_type="AREACIRC", n_vertices=nv,
            radius_m=radius)

    def so_AREAVERT(self, c):
        """'AREAVERT srcid x1 y1 [x2 y2 ...]', repeated until every vertex is given."""
        if not c.fields:
            c.fail("expected 'AREAVERT srcid x1 y1 x2 y2 ...'")
        sid = c.fields[0]
        if sid not in self.locations or self.locations[sid][4] != "AREAPOLY":
            c.fail(f"source {c.raw[0]!r} is not an AREAPOLY source defined by a LOCATION card")
        if sid not in self.params:
            c.fail(f"source {c.raw[0]!r}: AREAVERT before its SRCPARAM card (AERMOD needs the "
                   "number of vertices first)")
        vals = [_number(c, i, "x" if i % 2 else "y") for i in range(1, len(c.fields))]
        if len(vals) % 2:
            c.fail("vertex coordinates come in x y pairs; an odd number was given")
        v = self.verts.setdefault(sid, [])
        v.extend(zip(vals[0::2], vals[1::2]))
        if len(v) > self.params[sid].n_vertices:
            c.fail(f"source {c.raw[0]!r}: {len(v)} vertices given, but SRCPARAM (line "
                   f"{self.params[sid].line}) says {self.params[sid].n_vertices}")

    def _source_list(self, c, fields_from, what):
        """Source IDs and 'first-last' ranges (AERMOD: same prefix, numeric suffix range)."""
        ids = []
        known = list(self.locations)
        for i in range(fields_from, len(c.fields)):
            tok = c.fields[i]
            if tok in self.locations:
                ids.append(tok)
                continue
            if "-" in tok:
                lo, hi = tok.split("-", 1)
                got = [s for s in known if _in_range(s, lo, hi)]
                if got:
                    ids.extend(got)
                    continue
            c.fail(f"{what}: source {c.raw[i]!r} (field {i + 3}) is not defined by a LOCATION "
                   "card")
        return ids

    def so_SRCGROUP(self, c):
        if not c.fields:
            c.fail("expected 'SRCGROUP grpid srcid|srcrange ...' or 'SRCGROUP ALL'")
        gid = c.fields[0]
        if len(gid) > 8:
            c.fail(f"group ID {c.raw[0]!r} is longer than 8 characters")
        if gid == "ALL":
            if len(c.fields) > 1:
                c.fail("SRCGROUP ALL takes no source list (it holds every source)")
            members = None
        else:
            if len(c.fields) < 2:
                c.fail(f"group {c.raw[0]!r} has no sources")
            members = self._source_list(c, 1, f"group {c.raw[0]}")
        if gid in self.groups:
            if members is None or self.groups[gid] is None:
                c.fail(f"group {c.raw[0]!r} is defined twice (first on line "
                       f"{self.group_lines[gid]})")
            # AERMOD continues a group's source list on further cards with the same ID
            self.groups[gid] = list(dict.fromkeys(self.groups[gid] + members))
        else:
            self.groups[gid] = members
            self.group_lines[gid] = c.lineno
        self.group_seen = True

    def so_URBANSRC(self, c):
        if self.urban_option is None:
            c.fail("URBANSRC needs CO URBANOPT (the urban population) first")
        if not c.fields:
            c.fail("expected 'URBANSRC ALL' or 'URBANSRC srcid|srcrange ...'")
        if c.fields == ["ALL"]:
            self.urban_sources.update(self.locations)
            self._urban_all = True
        else:
            self.urban_sources.update(self._source_list(c, 0, "URBANSRC"))
        self.urbansrc_line = c.lineno

    # ----- RE
    def re_ELEVUNIT(self, c):
        self.re_feet = self._elevunit(c)

    def _add_receptor(self, c, x, y, z, h, f, net):
        if z != 0.0 or h != 0.0:
            c.fail("receptor elevations and hill heights must be 0: terrain is not supported "
                   "(flat terrain only)")
        if f < 0.0:
            c.fail(f"flagpole height {f:g} m must be >= 0")
        r = self.rec
        r["x"].append(x), r["y"].append(y), r["z"].append(z), r["h"].append(h)
        r["f"].append(f), r["net"].append(net)

    def re_DISCCART(self, c):
        if len(c.fields) < 2:
            c.fail("expected 'DISCCART x y [zelev [zhill [zflag]]]'")
        if self.flagpole:
            _max_fields(c, 5, "expected 'DISCCART x y [zelev [zhill [zflag]]]'")
        else:
            _max_fields(c, 4, "expected 'DISCCART x y [zelev [zhill]]'; a flagpole height needs "
                              "CO FLAGPOLE")
        x = _number(c, 0, "x [m]")
        y = _number(c, 1, "y [m]")
        z = _number(c, 2, "receptor elevation", default=0.0)
        h = _number(c, 3, "hill height", default=z)
        f = _number(c, 4, "flagpole height [m]", lo=0.0, default=self.flagpole_default_m)
        k = _FEET if self.re_feet else 1.0
        self._add_receptor(c, x, y, z * k, h * k, f, "")

    def re_GRIDCART(self, c):
        if not c.fields:
            c.fail("expected 'GRIDCART netid STA|XYINC|XPNTS|YPNTS|END ...'")
        if c.fields[0] in _GRID_SUBCARDS and self.grid is not None:
            netid, sub, args = self.grid["id"], c.fields[0], 1  # network ID left out
        else:
            if len(c.fields) < 2:
                c.fail(f"expected 'GRIDCART {c.raw[0]} STA|XYINC|XPNTS|YPNTS|END ...'")
            netid, sub, args = c.fields[0], c.fields[1], 2
        if len(netid) > 8:
            c.fail(f"network ID {netid!r} is longer than 8 characters")
        if sub not in _GRID_SUBCARDS:
            c.fail(f"unknown GRIDCART sub-keyword {sub!r} (expected STA, XYINC, XPNTS, YPNTS "
                   "or END)")
        if sub == "STA":
            if self.grid is not None:
                c.fail(f"network {netid!r} opened while network {self.grid['id']!r} "
                       f"(line {self.grid['line']}) has no END card")
            if netid in self.grid_ids:
                c.fail(f"network ID {netid!r} is used twice")
            self.grid = {"id": netid, "line": c.lineno, "x": None, "y": None, "xy": None}
            return
        if self.grid is None or self.grid["id"] != netid:
            c.fail(f"{sub} card for network {netid!r}, which is not open (needs "
                   f"'GRIDCART {netid} STA' first)")
        g = self.grid
        if sub in ("ELEV", "HILL"):
            c.fail(f"GRIDCART {sub} rows are not supported (terrain is not modelled; flat "
                   "terrain only)")
        if sub == "FLAG":
            if not self.flagpole:
                c.fail("GRIDCART FLAG rows need CO FLAGPOLE")
            row = _number(c, args, "row number", integer=True, lo=1)
            vals = [_number(c, i, "flagpole height [m]", lo=0.0)
                    for i in range(args + 1, len(c.fields))]
            g.setdefault("flag", {}).setdefault(row, []).extend(vals)
            return
        if sub == "XYINC":
            if g["x"] is not None or g["xy"] is not None:
                c.fail(f"network {netid!r} already has its receptor coordinates")
            _max_fields(c, args + 6, "expected 'XYINC xinit xnum xdelta yinit ynum ydelta'")
            x0 = _number(c, args, "xinit [m]")
            nx = _number(c, args + 1, "xnum", integer=True, lo=1)
            dx = _number(c, args + 2, "xdelta [m]")
            y0 = _number(c, args + 3, "yinit [m]")
            ny = _number(c, args + 4, "ynum", integer=True, lo=1)
            dy = _number(c, args + 5, "ydelta [m]")
            if (nx > 1 and dx <= 0.0) or (ny > 1 and dy <= 0.0):
                c.fail("xdelta and ydelta must be > 0")
            g["xy"] = (x0 + dx * np.arange(nx), y0 + dy * np.arange(ny))
            return
        if sub in ("XPNTS", "YPNTS"):
            if g["xy"] is not None:
                c.fail(f"network {netid!r} already has XYINC coordinates")
            vals = [_number(c, i, f"{sub[0].lower()} coordinate [m]")
                    for i in range(args, len(c.fields))]
            if not vals:
                c.fail(f"{sub} without coordinates")
            key = sub[0].lower()
            g[key] = (g[key] or []) + vals
            return
        # END
        if g["xy"] is not None:
            xs, ys = g["xy"]
        elif g["x"] is not None and g["y"] is not None:
            xs, ys = np.asarray(g["x"]), np.asarray(g["y"])
        else:
            c.fail(f"network {netid!r} (opened on line {g['line']}) has no XYINC, or lacks "
                   "XPNTS or YPNTS")
        flags = g.get("flag")
        if flags is None and self.flagpole:
            self.messages.append(f"{self.path}, line {g['line']}: GRIDCART {netid}: no FLAG rows; "
                                 f"every receptor gets the default flagpole height "
                                 f"{self.flagpole_default_m:g} m (AERMOD W216)")
        if flags is not None:
            for row in range(1, len(ys) + 1):
                if len(flags.get(row, [])) != len(xs):
                    c.fail(f"network {netid!r}: FLAG row {row} has {len(flags.get(row, []))} "
                           f"values, expected {len(xs)} (one per x point)")
        # AERMOD order: rows of constant y in the order given, x varying fastest
        for j, yv in enumerate(ys):
            for i, xv in enumerate(xs):
                f = flags[j + 1][i] if flags is not None else self.flagpole_default_m
                self._add_receptor(c, float(xv), float(yv), 0.0, 0.0, f, netid)
        self.grid_ids.add(netid)
        self.grid = None

    # ----- ME
    def _existing_file(self, c, what):
        if not c.raw:
            c.fail(f"missing the {what} file name")
        p = Path(c.raw[0])
        p = (p if p.is_absolute() else self.folder / p).resolve()
        if not p.is_file():
            c.fail(f"{what} file {c.raw[0]!r} not found (looked for {p}; paths are relative "
                   "to the control file's folder)")
        if len(c.fields) > 1 and c.fields[1] != "FREE":
            c.fail(f"read format {c.raw[1]!r} is not supported (files are read free-format)")
        _max_fields(c, 2, "expected a file name and optionally FREE")
        return p

    def me_SURFFILE(self, c):
        self.surface_file = self._existing_file(c, "surface (.SFC)")

    def me_PROFFILE(self, c):
        self.profile_file = self._existing_file(c, "profile (.PFL)")

    def _station(self, c):
        if len(c.fields) < 2:
            c.fail("expected 'station-ID year [name [x y]]'")
        _max_fields(c, 5, "expected 'station-ID year [name [x y]]'")
        year = _number(c, 1, "year", integer=True, lo=0)
        for i in (3, 4):
            if i < len(c.fields):
                _number(c, i, "station x" if i == 3 else "station y")
        return (c.raw[0], year)

    def me_SURFDATA(self, c):
        self.surface_station = self._station(c)

    def me_UAIRDATA(self, c):
        self.upper_air_station = self._station(c)

    def me_PROFBASE(self, c):
        _max_fields(c, 2, "expected 'PROFBASE elevation [METERS|FEET]'")
        z = _number(c, 0, "base elevation")
        unit = c.fields[1] if len(c.fields) > 1 else "METERS"
        if unit not in ("METERS", "FEET"):
            c.fail(f"unit {c.raw[1]!r} (field 4) must be METERS or FEET")
        self.profile_base_m = z * (_FEET if unit == "FEET" else 1.0)

    # ----- OU
    def ou_RECTABLE(self, c):
        """'RECTABLE aveper|ALLAVE FIRST|SECOND|...|n ...': the high values per receptor in
        the summary listing (AERMOD's aermod.out)."""
        if len(c.fields) < 2:
            c.fail("expected 'RECTABLE aveper|ALLAVE ranks' (e.g. 'RECTABLE ALLAVE FIRST')")
        names = {"FIRST": 1, "SECOND": 2, "THIRD": 3, "FOURTH": 4, "FIFTH": 5, "SIXTH": 6,
                 "SEVENTH": 7, "EIGHTH": 8, "NINTH": 9, "TENTH": 10}
        ranks = []
        for i in range(1, len(c.fields)):
            tok = c.fields[i]
            if tok in names:
                ranks.append(names[tok])
            elif "-" in tok:
                a, _, b = tok.partition("-")
                lo, hi = names.get(a), names.get(b)
                if lo is None or hi is None or hi < lo:
                    c.fail(f"rank range {c.raw[i]!r} (field {i + 3}) is not valid")
                ranks.extend(range(lo, hi + 1))
            else:
                try:
                    ranks.append(int(tok))
                except ValueError:
                    c.fail(f"rank {c.raw[i]!r} (field {i + 3}) must be FIRST..TENTH or a number")
        if c.fields[0] == "ALLAVE":
            aves = [a for a in self.averaging_times if a != "PERIOD"]
        else:
            aves = [self._aveper(c, 0)]
            if aves == ["PERIOD"]:
                c.fail("RECTABLE is for short-term averages (PERIOD values are always listed)")
        for a in aves:
            self.rectables.append((a, tuple(sorted(set(ranks)))))

    def ou_FILEFORM(self, c):
        if len(c.fields) != 1 or c.fields[0] not in ("EXP", "FIX"):
            c.fail(f"expected EXP or FIX, found {' '.join(c.raw) or 'nothing'!r}")
        self.file_form = c.fields[0]

    def _aveper(self, c, tok_i):
        tok = c.fields[tok_i]
        if tok == "PERIOD":
            ave = "PERIOD"
        else:
            try:
                ave = "1" if int(tok) == 1 else None
            except ValueError:
                ave = None
            if ave is None:
                c.fail(f"averaging period {c.raw[tok_i]!r} (field {tok_i + 3}) is not "
                       "supported (1 or PERIOD)")
        if ave not in self.averaging_times:
            c.fail(f"averaging period {ave} is not on the CO AVERTIME card "
                   f"({' '.join(self.averaging_times) or 'none'})")
        return ave

    def _group(self, c, i):
        if c.fields[i] not in self.groups:
            c.fail(f"source group {c.raw[i]!r} (field {i + 3}) is not defined on the SO "
                   f"pathway (groups: {', '.join(self.groups) or 'none'})")
        return c.fields[i]

    def _unit(self, c, i):
        if i < len(c.fields):
            _number(c, i, "file unit", integer=True, lo=31)

    def _add_output(self, c, kw, ave, filename, group="ALL"):
        for o in self.outputs:
            if o.keyword == kw and o.averaging == ave and o.group == group:
                c.fail(f"a second {kw} for averaging period {ave} (first on line {o.line})")
            if o.filename == filename:
                c.fail(f"file {filename!r} is already written by the {o.keyword} card on line "
                       f"{o.line}; writing two outputs into one file is not supported")
        self.outputs.append(OutputRequest(kw, ave, group, filename, c.lineno))

    def ou_POSTFILE(self, c):
        if len(c.fields) < 4:
            c.fail("expected 'POSTFILE aveper ALL PLOT filename [unit]'")
        _max_fields(c, 5, "expected 'POSTFILE aveper ALL PLOT filename [unit]'")
        ave = self._aveper(c, 0)
        group = self._group(c, 1)
        if c.fields[2] != "PLOT":
            c.fail(f"POSTFILE format {c.raw[2]!r} (field 5) is not supported (only PLOT; "
                   "UNFORM binary files are not written)")
        self._unit(c, 4)
        self._add_output(c, "POSTFILE", ave, c.raw[3], group)

    def ou_PLOTFILE(self, c):
        if len(c.fields) < 3:
            c.fail("expected 'PLOTFILE PERIOD ALL filename [unit]'")
        if c.fields[0] != "PERIOD":
            c.fail(f"PLOTFILE for averaging period {c.raw[0]!r} is not supported (only PERIOD; "
                   "short-term high-value plot files are not written)")
        _max_fields(c, 4, "expected 'PLOTFILE PERIOD ALL filename [unit]'")
        ave = self._aveper(c, 0)
        group = self._group(c, 1)
        self._unit(c, 3)
        self._add_output(c, "PLOTFILE", ave, c.raw[2], group)

    # ----- pathway completion checks
    def finish(self, pathway, card):
        if pathway == "CO" and "CONC" not in self.model_options:
            self.model_options = self.model_options + ("CONC",)
        if pathway == "SO":
            missing = [s for s in self.locations if s not in self.params]
            if missing:
                line = self.locations[missing[0]][3]
                raise InputError(f"{self.path}, line {line}: source {missing[0]!r} has a "
                                 "LOCATION card but no SRCPARAM card")
            for sid, card_ in list(self.params.items()):
                if card_.source_type == "AREAPOLY":
                    v = self.verts.get(sid, [])
                    if len(v) != card_.n_vertices:
                        raise InputError(f"{self.path}, line {card_.line}: AREAPOLY source "
                                         f"{card_.source_id!r} has {len(v)} AREAVERT vertices; "
                                         f"SRCPARAM says {card_.n_vertices}")
                    x0, y0 = self.locations[sid][:2]
                    if abs(v[0][0] - x0) > 1e-6 or abs(v[0][1] - y0) > 1e-6:
                        self.messages.append(
                            f"{self.path}, line {card_.line}: AREAPOLY {card_.source_id}: the first "
                            "AREAVERT vertex differs from the LOCATION coordinates; the AREAVERT "
                            "vertices are used")
                    self.params[sid] = replace(card_, vertices=tuple(v))
                if sid in self.urban_sources:
                    self.params[sid] = replace(self.params[sid], urban=True)
            if self.urban_option is not None and not self.urban_sources:
                self.messages.append(f"{card.where()}: URBANOPT without URBANSRC: every source "
                                     "is modelled as rural")
        if pathway == "RE":
            if self.grid is not None:
                raise InputError(f"{self.path}, line {self.grid['line']}: GRIDCART network "
                                 f"{self.grid['id']!r} has no END card before RE FINISHED")
            if not self.rec["x"]:
                raise InputError(f"{card.where()}: RE FINISHED, but no receptors were defined "
                                 "(use GRIDCART or DISCCART)")
        if pathway == "OU" and not self.outputs:
            raise InputError(f"{card.where()}: no POSTFILE or PLOTFILE card; cobenefits aermod "
                             "writes only those files, so there would be no output")
        for kw in _MANDATORY[pathway]:
            if (pathway, kw) not in self.seen:
                raise InputError(f"{card.where()}: {pathway} FINISHED, but the pathway has no "
                                 f"{kw} card (AERMOD requires one)")

    def build(self):
        r = self.rec
        receptors = Receptors(
            x_m=np.asarray(r["x"], dtype=np.float64), y_m=np.asarray(r["y"], dtype=np.float64),
            elevation_m=np.asarray(r["z"], dtype=np.float64),
            hill_height_m=np.asarray(r["h"], dtype=np.float64),
            flagpole_m=np.asarray(r["f"], dtype=np.float64), net_id=tuple(r["net"]))
        return ControlFile(
            path=self.path, title_one=self.title_one, title_two=self.title_two,
            model_options=self.model_options, averaging_times=self.averaging_times,
            pollutant_id=self.pollutant_id, run=self.run, error_file=self.error_file,
            sources=tuple(self.params[s] for s in self.locations), receptors=receptors,
            surface_file=self.surface_file, profile_file=self.profile_file,
            surface_station=self.surface_station, upper_air_station=self.upper_air_station,
            profile_base_m=self.profile_base_m, file_form=self.file_form,
            outputs=tuple(self.outputs), messages=tuple(self.messages),
            groups=tuple((g, tuple(self.params[s].source_id for s in
                                   (m if m is not None else list(self.locations))))
                         for g, m in self.groups.items()),
            flagpole=self.flagpole, urban_option=self.urban_option,
            rectables=tuple(self.rectables))


def read_aermod_inp(path):
    """Read an AERMOD control file (the subset above) into a :class:`ControlFile`.

    Parameters
    ----------
    path : str or Path
        The control file. File names inside it are relative to its folder.

    Returns
    -------
    ControlFile

    Raises
    ------
    engine.errors.InputError
        On any keyword outside the subset, malformed or out-of-range value, or misplaced
        card; the message names the file, the line and the field.

    Examples
    --------
    >>> ctl = read_aermod_inp("tests/data/aermod/caseA_single/aermod.inp")  # doctest: +SKIP
    >>> len(ctl.sources), len(ctl.receptors)                                 # doctest: +SKIP
    (1, 1699)
    """
    path = Path(path)
    b = _Builder(path)
    state = {p: "todo" for p in _PATHWAYS}  # todo -> open -> done
    current = None
    last = None
    for card in _read_cards(path):
        last = card
        pw, kw = card.pathway, card.keyword
        if pw not in state:
            if pw == "EV":
                raise InputError(f"{card.where()}: the EV pathway (EVENT processing) is not "
                                 "supported by cobenefits aermod")
            raise InputError(f"{card.where()}: invalid pathway ID {pw!r} (expected CO, SO, RE, "
                             "ME or OU in columns 1-2, or ** for a comment)")
        if pw != current:
            if state[pw] == "done":
                raise InputError(f"{card.where()}: pathway {pw} appears again after "
                                 f"{pw} FINISHED")
            if current is not None and state[current] == "open":
                raise InputError(f"{card.where()}: pathway {current} is not FINISHED before "
                                 f"pathway {pw} starts")
            idx = _PATHWAYS.index(pw)
            for earlier in _PATHWAYS[:idx]:
                if state[earlier] != "done":
                    raise InputError(f"{card.where()}: pathway {pw} starts before pathway "
                                     f"{earlier} (AERMOD's order is CO, SO, RE, ME, OU)")
            if kw != "STARTING":
                raise InputError(f"{card.where()}: pathway {pw} must begin with "
                                 f"'{pw} STARTING' (found {kw})")
            current = pw
        if kw == "STARTING":
            if state[pw] != "todo" or card.continued:
                raise InputError(f"{card.where()}: {pw} STARTING appears twice")
            if card.fields:
                card.fail("takes no parameters")
            state[pw] = "open"
            continue
        if kw not in SUPPORTED_KEYWORDS[pw]:
            _unsupported_keyword(card)
        if kw == "FINISHED":
            if card.fields:
                card.fail("takes no parameters")
            b.finish(pw, card)
            state[pw] = "done"
            continue
        key = (pw, kw)
        if key in b.seen and key not in _REPEATABLE and not card.continued:
            raise InputError(f"{card.where()}: {kw} may appear only once on pathway {pw} "
                             f"(first on line {b.seen[key]})")
        if card.continued and key not in _REPEATABLE:
            raise InputError(f"{card.where()}: {kw} cannot be continued on a second line")
        b.seen.setdefault(key, card.lineno)
        getattr(b, f"{pw.lower()}_{kw}")(card)
    if last is None:
        raise InputError(f"{path}: the control file has no cards (all lines blank or comments)")
    missing = [p for p in _PATHWAYS if state[p] != "done"]
    if missing:
        open_ = [p for p in missing if state[p] == "open"]
        what = (f"pathway {open_[0]} has no FINISHED card" if open_ else
                f"pathway(s) {', '.join(missing)} missing")
        raise InputError(f"{path}, line {last.lineno}: the control file ends early: {what} "
                         "(AERMOD needs CO, SO, RE, ME and OU, each STARTING ... FINISHED)")
    return b.build()


# --------------------------------------------------------------------------- met-file helpers
def read_sfc_header(path):
    """Return the AERMET version (the ``VERSION:`` field) from a surface file's header line.

    Returns ``""`` when the header has no version field.
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.readline()
    toks = head.split()
    for i, t in enumerate(toks):
        if t.upper() == "VERSION:" and i + 1 < len(toks):
            return toks[i + 1]
    return ""


def read_sfc_dates(path):
    """Hour stamps of an AERMET surface file as AERMOD's ``YYMMDDHH`` integers.

    The first line is the header; each following line starts ``yy mm dd jday hh`` (hour
    ending, 1-24). Only these five fields are read here (the met reader in
    :mod:`engine.dispersion.met` reads the rest).
    """
    dates = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        fh.readline()
        for lineno, line in enumerate(fh, 2):
            toks = line.split()
            if not toks:
                continue
            try:
                yy, mm, dd, _jd, hh = (int(t) for t in toks[:5])
            except ValueError:
                raise InputError(f"{path}, line {lineno}: date fields 'yy mm dd jday hh' "
                                 f"expected, found {' '.join(toks[:5])!r}") from None
            if not (1 <= mm <= 12 and 1 <= dd <= 31 and 1 <= hh <= 24):
                raise InputError(f"{path}, line {lineno}: date {yy} {mm} {dd} hour {hh} is out "
                                 "of range")
            dates.append((yy % 100) * 1_000_000 + mm * 10_000 + dd * 100 + hh)
    return np.asarray(dates, dtype=np.int64)


def count_complete_years(dates):
    """Complete years of met data covered by ``dates`` (YYMMDDHH), as AERMOD's NUMYRS label.

    A year counts once the hour before the first hour's anniversary is reached, so a run
    shorter than one year gives 0 (AERMOD's PERIOD plot files then say "ACROSS   0 YEARS").
    """
    if len(dates) == 0:
        return 0

    def to_dt(d):
        yy, rest = divmod(int(d), 1_000_000)
        mm, rest = divmod(rest, 10_000)
        dd, hh = divmod(rest, 100)
        year = 1900 + yy if yy >= 50 else 2000 + yy  # AERMOD's 2-digit year window
        return _dt.datetime(year, mm, dd) + _dt.timedelta(hours=hh)

    start, end = to_dt(dates[0]), to_dt(dates[-1])
    n = 0
    while True:
        try:
            anniversary = start.replace(year=start.year + n + 1)
        except ValueError:  # 29 February
            anniversary = start.replace(year=start.year + n + 1, day=28)
        if anniversary - _dt.timedelta(hours=1) <= end:
            n += 1
        else:
            return n


# the writers live in engine.aermod.writers; their names stay importable from here
from engine.aermod.writers import (  # noqa: E402,F401
    PlotHeader,
    e13_6_bytes,
    fortran_e,
    fortran_f,
    fortran_f_many,
    plot_format,
    read_summary_values,
    write_plotfile_period,
    write_postfile_hourly,
    write_postfile_period,
    write_summary_listing,
)
