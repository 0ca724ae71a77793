"""TOML configuration -> frozen, validated dataclasses.

A configuration file describes one scenario (sections ``[scenario]`` and ``[carbon]``) and,
optionally, the run-wide settings (``[data]``, ``[dispersion]``, ``[met]``, ``[health]``,
``[run]``) that must agree between all scenario files of one run.

Rules (docs/design.md, rule 23):

* unknown keys are errors with a "did you mean" suggestion;
* units are part of key names (``city_resolution_m``, ``seasonality_fraction``);
* every value is type- and range-checked here, once; the engine then trusts it;
* :func:`config_to_dict` gives the resolved configuration that every output records.

Example
-------
>>> cfg = load_config(["config/fyp_symbiosis.toml"])       # doctest: +SKIP
>>> cfg.scenarios[0].carbon.efficiency_level
'fyp'
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from engine.errors import InputError

__all__ = [
    "ScenarioConfig",
    "CarbonConfig",
    "DataConfig",
    "DispersionConfig",
    "MetConfig",
    "HealthConfig",
    "RunConfig",
    "Config",
    "load_config",
    "parse_config",
    "default_scenario_paths",
    "config_to_dict",
    "RUN_WIDE_SECTIONS",
    "input_paths",
    "field_type",
]


def _range(lo=None, hi=None, *, lo_open=False, hi_open=False, doc=""):
    """Field metadata: allowed closed/open interval and a one-line description."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "doc": doc}


def _f(default, lo=None, hi=None, doc="", **kw):
    return field(default=default, metadata=_range(lo, hi, doc=doc, **kw))


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class ScenarioConfig:
    """``[scenario]``: the scenario's identity."""

    name: str = _f("base", doc="identifier used in outputs (letters, digits, _ and -)")
    description: str = _f("", doc="free text")


@dataclass(frozen=True)
class CarbonConfig:
    """``[carbon]``: which actions the scenario applies, and their parameters.

    Defaults are the paper's (Ramaswami et al. 2017, Tables 1-2 and Methods c-d).
    """

    efficiency_level: Literal["none", "fyp", "high"] = _f(
        "none", doc="single-sector efficiency: none (Base-Case), fyp (Table 1) or high (best practice)")
    symbiosis: bool = _f(False, doc="apply cross-sector energy cascading and material exchange")
    seasonality_fraction: float = _f(
        1.0, 0.0, 1.0, lo_open=True,
        doc="fraction of the year non-CHP waste heat can be used (paper sensitivity: 0.4)")
    heat_availability_high: float = _f(1.0, 0.0, 1.0, doc="share of high-grade (>400 C) waste heat available")
    heat_availability_medium: float = _f(0.25, 0.0, 1.0, doc="share of medium-grade (100-400 C) heat available")
    heat_availability_low: float = _f(0.80, 0.0, 1.0, doc="share of low-grade (<100 C) heat available")
    orc_efficiency: float = _f(0.15, 0.0, 0.5, lo_open=True, doc="ORC heat-to-electricity efficiency")
    fly_ash_saturation: float = _f(0.35, 0.0, 1.0, doc="maximum fly-ash mass share in cement")
    slag_saturation: float = _f(0.25, 0.0, 1.0, doc="maximum steel-slag mass share in cement")
    new_dh_urban_core_only: bool = _f(True, doc="new 4th-generation DES only in the urban core")


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the city, province and grid tables come from."""

    dir: str = _f("", doc="folder with cities.csv, provinces.csv, grids.csv; empty = embedded default")
    cities: str = _f("all", doc="city selector: 'all', or a comma-separated list of city_id/name/province")


@dataclass(frozen=True)
class DispersionConfig:
    """``[dispersion]``: grids and source geometry for the national run."""

    city_resolution_m: float = _f(1000.0, 100.0, 20000.0, doc="receptor and source spacing in the city grid")
    rop_resolution_m: float = _f(5000.0, 500.0, 50000.0, doc="source spacing of the rest-of-province grid")
    city_margin_m: float = _f(10000.0, 0.0, 200000.0, doc="margin of the city grid around the footprint")
    release_height_m: float = _f(0.0, 0.0, 20.0, doc="release height of the area sources")
    initial_sigma_z_m: float = _f(0.0, 0.0, 50.0, doc="initial vertical dispersion of the area sources")
    emission_heights: Literal["sector", "ground"] = field(default="sector", metadata=_range(
        doc="'sector': each sector's PM2.5 leaves in height classes (ground, low / mid / tall stacks with "
            "AERMOD plume rise per met class; engine/data/emission_heights.csv, stack_classes.csv); "
            "'ground': every source at release_height_m (the paper's approach)"))
    mosaic_resolution_deg: float = _f(0.1, 0.01, 2.0, doc="lat-lon resolution of the national NetCDF mosaic")
    source_set: Literal["own", "province", "nation"] = field(default="province", metadata=_range(
        doc="sources a city sees: 'own' (itself and its rest of province), 'province' (also the other "
            "cities of its province: the paper's rest of province), 'nation' (also other provinces' cities "
            "and rests of province within source_reach_km)"))
    source_reach_km: float = _f(300.0, 10.0, 2000.0, doc="half side of the square about a city within which "
                                "other provinces' sources count (source_set = 'nation')")
    footprints_geojson: str = _f(
        "", doc="GeoJSON FeatureCollection of city polygons (property city_id, lon/lat WGS 84) used instead "
                "of the default discs; relative to the config file's folder; empty = discs")
    urban: Literal["auto", True, False] = _f(
        "auto", doc="AERMOD's urban dispersion (URBANOPT) for the city sources: 'auto' = urban where the city's "
                    "population density (population / area_km2) exceeds 750 km-2 (EPA Guideline on Air Quality "
                    "Models, 40 CFR 51 App. W 7.2.1.1), true = every city, false = rural everywhere; an urban "
                    "city's URBANOPT population is its urban_population; rests of province stay rural")
    population_grid: str = _f(
        "", doc="regular lat-lon population grid (CF NetCDF, or CSV lon,lat,population with a '# units:' "
                "line; counts per cell or density per km2, from its units) for population-weighted city "
                "exposure; relative to the config file's folder; empty = area mean")

    #: keys holding file paths (resolved against the config file's folder by :meth:`resolve_paths`)
    PATH_KEYS = ("footprints_geojson", "population_grid")

    def resolve_paths(self, config_paths=()):
        """``{key: Path}`` of the file keys that are set, each checked to exist.

        A relative path is taken relative to the folder of the configuration file(s) it came
        from (``config_paths``; the current folder when there are none). Run-wide settings are
        the same string in every file of a run, so files in different folders must resolve it
        to the same file.

        Raises
        ------
        InputError
            The key names a file that does not exist (or is a folder), or resolves to different
            files for different configuration files.
        """
        folders = [Path(p).resolve().parent for p in config_paths] or [Path.cwd()]
        out = {}
        for key in self.PATH_KEYS:
            value = getattr(self, key)
            if not value:
                continue
            raw = Path(value).expanduser()
            cands = sorted({(raw if raw.is_absolute() else folder / raw).resolve() for folder in folders})
            if len(cands) > 1:
                raise InputError(f"[dispersion] {key} = {value!r} resolves to different files for the "
                                 f"configuration files of this run ({', '.join(map(str, cands))}); "
                                 "give an absolute path")
            path = cands[0]
            if not path.is_file():
                what = "is a folder, not a file" if path.is_dir() else "does not exist"
                raise InputError(f"[dispersion] {key} = {value!r}: {path} {what}")
            out[key] = path
        return out


@dataclass(frozen=True)
class MetConfig:
    """``[met]``: meteorology. Empty paths = the documented default climatology."""

    climatology: str = _f("default", doc="built-in climatology set: 'default' (= 'aermet': built the AERMET way, "
                          "met-site surface characteristics per region and season, calms; engine.dispersion.climatology) or "
                          "'golder' (the v1 Pasquill/Golder classes at z0 = 1 m, too dispersive; kept for comparison)")
    climatology_file: str = _f("", doc="climatology file made by `cobenefits met-climatology` (used for every city)")
    sfc_file: str = _f("", doc="AERMET surface file used for every city instead of the default")
    pfl_file: str = _f("", doc="AERMET profile file matching sfc_file")
    star_file: str = _f("", doc="ISC-style STAR joint-frequency table used instead of the default")
    seasonal_emissions: bool = _f(True, doc="with a seasonal climatology (the default, or a climatology_file with "
                                  "both seasons): one source-receptor matrix per season and each source's "
                                  "heating-season emission share, so the annual mean keeps the covariance of "
                                  "heating emissions with winter met; false = one annual matrix, flat emissions")


@dataclass(frozen=True)
class HealthConfig:
    """``[health]``: concentration-response function and Monte Carlo settings."""

    crf: Literal["ier2010", "gemm_ncd_lri", "gemm_5cod", "loglinear_krewski2009", "user"] = _f(
        "ier2010", doc="concentration-response function ('user' = functions_file)")
    functions_file: str = _f("", doc="user-defined functions CSV (crf = 'user'; engine.health.read_user_functions)")
    background: str = _f("", doc="CSV region,pm25_total_ug_m3: apply the primary-PM2.5 change on top of this "
                                 "total-PM2.5 background (empty = health at the primary concentration)")
    cohort: Literal["with_china", "without_china"] = _f("with_china", doc="GEMM cohort set")
    draws: int = _f(1000, 0, 100000, doc="Monte Carlo draws (0 = central parameters only)")
    seed: int = _f(20170901, 0, 2**32 - 1, doc="random seed (GEMM/log-linear draws)")
    avoided_method: Literal["subtraction", "pif"] = _f(
        "subtraction", doc="avoided deaths by subtraction of two burdens, or potential impact fraction")
    rates_file: str = _f("", doc="baseline rates CSV replacing the default China rates")


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: execution settings of ``cobenefits run``."""

    workers: int = _f(0, 0, 1024, doc="Dask workers (0 = the machine's cores)")
    scheduler: str = _f("", doc="address of an existing dask.distributed scheduler; empty = local")
    pool: Literal["processes", "threads"] = _f(
        "processes", doc="local workers of the receptor pass: processes forked after the kernels are built "
                         "(Linux; elsewhere threads) or threads")
    stall_timeout_s: float = _f(0.0, 0.0, 86400.0,
                                doc="cluster only: seconds without a finished city task before the unfinished "
                                    "tasks are resubmitted (0 = automatic: 900 s before the first result, then "
                                    "max(120 s, 10x the slowest task))")


@dataclass(frozen=True)
class ScenarioFile:
    """One parsed configuration file."""

    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    carbon: CarbonConfig = field(default_factory=CarbonConfig)
    data: DataConfig = field(default_factory=DataConfig)
    dispersion: DispersionConfig = field(default_factory=DispersionConfig)
    met: MetConfig = field(default_factory=MetConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    run: RunConfig = field(default_factory=RunConfig)
    path: str = field(default="", metadata={"internal": True})


RUN_WIDE_SECTIONS = ("data", "dispersion", "met", "health", "run")


@dataclass(frozen=True)
class Config:
    """A resolved run configuration: several scenarios, one set of run-wide settings."""

    scenarios: tuple  # of (ScenarioConfig, CarbonConfig)
    data: DataConfig
    dispersion: DispersionConfig
    met: MetConfig
    health: HealthConfig
    run: RunConfig
    paths: tuple = ()

    @property
    def scenario_names(self):
        return tuple(s.name for s, _ in self.scenarios)

    def replace(self, **changes):
        """Copy with some sections replaced (``cfg.replace(health=...)``)."""
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- parsing
def _suggest(key, valid):
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _toml_repr(value):
    """``value`` as TOML spells it (true/false, quoted strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _check_value(cls_name, f, value, where):
    key = f"{where}.{f.name}" if where else f.name
    tp = f.type if not isinstance(f.type, str) else _TYPE_HINTS[cls_name][f.name]
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        # exact type as well as value: 1 == True, but `urban = 1` is not `urban = true`
        if not any(value == c and type(value) is type(c) for c in choices):
            raise InputError(f"{key} = {_toml_repr(value)} is not allowed; choose one of "
                             f"{', '.join(map(_toml_repr, choices))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise InputError(f"{key} = {value!r} must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{key} = {value!r} must be an integer")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{key} = {value!r} must be a number")
        value = float(value)
        if not math.isfinite(value):
            raise InputError(f"{key} = {value!r} must be finite")
    elif tp is str:
        if not isinstance(value, str):
            raise InputError(f"{key} = {value!r} must be a string")
        return value
    md = f.metadata
    lo, hi = md.get("lo"), md.get("hi")
    bad_lo = lo is not None and (value <= lo if md.get("lo_open") else value < lo)
    bad_hi = hi is not None and (value >= hi if md.get("hi_open") else value > hi)
    if bad_lo or bad_hi:
        lb = "(" if md.get("lo_open") else "["
        rb = ")" if md.get("hi_open") else "]"
        raise InputError(f"{key} = {value!r} is outside the allowed range {lb}{lo}, {hi}{rb}")
    return value


def _build(cls, table, where):
    if not isinstance(table, dict):
        raise InputError(f"[{where}] must be a table of key = value pairs")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for key, value in table.items():
        if key not in fields:
            raise InputError(f"unknown key '{key}' in [{where}]{_suggest(key, list(fields))} "
                             f"(allowed: {', '.join(fields)})")
        kwargs[key] = _check_value(cls.__name__, fields[key], value, where)
    return cls(**kwargs)


_SECTIONS = {
    "scenario": ScenarioConfig,
    "carbon": CarbonConfig,
    "data": DataConfig,
    "dispersion": DispersionConfig,
    "met": MetConfig,
    "health": HealthConfig,
    "run": RunConfig,
}
_TYPE_HINTS = {cls.__name__: typing.get_type_hints(cls) for cls in _SECTIONS.values()}


def field_type(section_cls, name):
    """The resolved type of a key of a configuration section (``Literal[...]``, ``bool``, ``int``,
    ``float`` or ``str``); its range is in the field's metadata (``lo``, ``hi``, ``lo_open``,
    ``hi_open``)."""
    return _TYPE_HINTS[section_cls.__name__][name]


def parse_config(table, *, source="<config>"):
    """Validate one configuration mapping (a parsed TOML document) into a ``ScenarioFile``."""
    sections = {}
    for key, value in table.items():
        if key not in _SECTIONS:
            raise InputError(f"{source}: unknown section [{key}]{_suggest(key, list(_SECTIONS))} "
                             f"(allowed: {', '.join(_SECTIONS)})")
        try:
            sections[key] = _build(_SECTIONS[key], value, key)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None
    sf = ScenarioFile(**sections, path=source)
    name = sf.scenario.name
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise InputError(f"{source}: scenario.name = {name!r} must be non-empty letters, digits, _ or -")
    return sf


#: largest configuration file accepted [bytes]; a scenario file is a few hundred bytes
MAX_CONFIG_BYTES = 1_000_000


def _read_toml(path):
    """Parse one TOML file; every failure is an :class:`InputError` naming the file.

    UTF-8 with or without a byte-order mark is accepted (TOML 1.0 is UTF-8); UTF-16/32 (what
    some Windows editors save) is refused with a hint, as are folders, unreadable and binary files.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise InputError(f"configuration file {path} is a folder; give a scenario .toml file")
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise InputError(f"configuration file {path} is {size} bytes; a scenario file is at most "
                             f"{MAX_CONFIG_BYTES} bytes (is it the right file?)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"configuration file {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"configuration file {path}: cannot be read ({exc.strerror or exc})") from None
    for bom, enc in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                     (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if raw.startswith(bom):
            raise InputError(f"configuration file {path} is {enc} encoded; TOML files must be UTF-8 "
                             "(save it as UTF-8)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"configuration file {path}: byte {exc.start} is not UTF-8 ({exc.reason}); TOML "
                         "files must be UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None


def default_scenario_paths():
    """The four scenario files shipped in ``config/`` (installed as ``engine.scenarios``)."""
    root = resources.files("engine.scenarios")
    names = ("base", "fyp_efficiency", "fyp_symbiosis", "high_efficiency_symbiosis")
    return [Path(str(root / f"{n}.toml")) for n in names]


#: file-path keys per section; a relative path in a configuration file is taken relative to
#: that file's folder, and one given on the command line relative to the current folder
PATH_KEYS = {
    "data": ("dir",),
    "met": ("sfc_file", "pfl_file", "star_file", "climatology_file"),
    "health": ("rates_file", "functions_file", "background"),
    "dispersion": ("footprints_geojson", "population_grid"),
}


def _resolve_paths(table, folder):
    for sec, keys in PATH_KEYS.items():
        t = table.get(sec)
        if not isinstance(t, dict):
            continue
        for k in keys:
            v = t.get(k)
            if isinstance(v, str) and v and not Path(v).is_absolute():
                t[k] = str(Path(folder) / v)


def load_config(paths=None, *, overrides=None):
    """Load scenario files into one :class:`Config`.

    Parameters
    ----------
    paths : list of path-like, optional
        Scenario TOML files; default :func:`default_scenario_paths`.
    overrides : dict, optional
        ``{section: {key: value}}`` applied to the run-wide sections of every file
        (used by command-line options such as ``--workers``).

    Relative file paths (``[data] dir``, ``[met] *_file``, ``[health] rates_file``,
    ``[dispersion] footprints_geojson``/``population_grid``) are taken relative to the folder of
    the file that sets them; those in ``overrides`` relative to the current folder.

    Raises
    ------
    InputError
        Unknown section/key, wrong type, value out of range, duplicate scenario names, or
        run-wide sections that differ between files.
    """
    paths = list(paths) if paths else default_scenario_paths()
    files = []
    for p in paths:
        table = _read_toml(p)
        name = table.get("scenario", {}).get("name") if isinstance(table.get("scenario"), dict) else None
        if name is None:
            what = "is empty (comments only)" if not table else "has no [scenario] name"
            raise InputError(f"{p}: {what}; a scenario file must set [scenario] name = \"...\" (an empty or "
                             "truncated file is refused rather than run as the Base-Case)")
        _resolve_paths(table, Path(p).resolve().parent)
        over = {sec: dict(kv) for sec, kv in (overrides or {}).items()}
        _resolve_paths(over, Path.cwd())
        for sec, kv in over.items():
            table.setdefault(sec, {}).update(kv)
        files.append(parse_config(table, source=str(p)))
    names = [f.scenario.name for f in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"scenario name(s) {', '.join(dup)} appear in more than one file: "
                         f"{', '.join(str(p) for p in paths)}")
    first = files[0]
    for sec in RUN_WIDE_SECTIONS:
        for f in files[1:]:
            a, b = getattr(first, sec), getattr(f, sec)
            if a != b:
                diff = [fl.name for fl in dataclasses.fields(a) if getattr(a, fl.name) != getattr(b, fl.name)]
                raise InputError(
                    f"[{sec}] differs between {first.path} and {f.path} (key(s): {', '.join(diff)}); "
                    "run-wide settings must be the same in every scenario file of a run")
    return Config(
        scenarios=tuple((f.scenario, f.carbon) for f in files),
        data=first.data, dispersion=first.dispersion, met=first.met,
        health=first.health, run=first.run, paths=tuple(str(p) for p in paths),
    )


def input_paths(cfg):
    """Every input file or folder a run of ``cfg`` reads: the scenario files, the data folder (the
    embedded one when ``[data] dir`` is empty), met, rates, footprint and population files.

    For :class:`engine.output.persist.OutputTransaction`, which refuses an ``--out`` that is, contains or
    lies in one of them and records them in ``manifest.json``.
    """
    from engine.data.dataset import default_data_dir

    out = [Path(p) for p in cfg.paths]
    out.append(Path(cfg.data.dir) if cfg.data.dir else default_data_dir())
    for sec, keys in PATH_KEYS.items():
        if sec == "data":
            continue
        for k in keys:
            v = getattr(getattr(cfg, sec), k, "")
            if v:
                out.append(Path(v))
    return out


def config_to_dict(cfg):
    """The resolved configuration as plain data (recorded in every output)."""
    out = {"scenarios": [{"scenario": dataclasses.asdict(s), "carbon": dataclasses.asdict(c)}
                         for s, c in cfg.scenarios]}
    for sec in RUN_WIDE_SECTIONS:
        out[sec] = dataclasses.asdict(getattr(cfg, sec))
    out["files"] = list(cfg.paths)
    return out
