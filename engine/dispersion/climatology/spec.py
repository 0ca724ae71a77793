"""Per-city met choice: the :class:`MetSpec` of a city under ``[met]``, and loading its met
(annual :class:`engine.dispersion.met.MetHours`, or per season for a climatology), with the
built-in AERMET-way climatology built once per process."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError

from .aermet import AERMET_VERSION, aermet_climatology
from .files import read_climatology
from .golder import DEFAULT_VERSION, default_climatology_arrays
from .regions import CLIMATE_REGIONS, climate_region_of
from .star import read_star, star_to_arrays
from .tables import MET_DATA_DIR

__all__ = ["CLIMATOLOGY_NAMES", "MetSpec", "to_met_hours", "met_spec_for_city", "load_climatology", "load_met",
           "load_seasonal_met"]


#: names accepted by ``[met] climatology``; 'default' is 'golder' (the v1 construction of :mod:`.golder`)
CLIMATOLOGY_NAMES = ("default", "golder", "aermet")


def to_met_hours(arrays):
    """Build an :class:`engine.dispersion.met.MetHours` from class arrays (``stability_class`` is dropped)."""
    from engine.dispersion.met import MetHours

    kw = {k: v for k, v in arrays.items() if k != "stability_class"}
    n = len(kw["weight"])
    kw.setdefault("calm", np.zeros(n, dtype=bool))
    kw.setdefault("missing", np.zeros(n, dtype=bool))
    return MetHours.from_arrays(**kw)


@dataclass(frozen=True)
class MetSpec:
    """Which met a city uses: ``kind`` in default (= golder) | aermet_climatology (built the AERMET
    way) | climatology_file | star | aermet (hourly AERMET .SFC/.PFL files), identity and content hash.

    Cities with equal specs share one transfer kernel.
    """

    kind: str
    name: str  # region name, or file path(s)
    digest: str  # hash of everything that defines the met

    def describe(self):
        if self.kind == "default":
            return (f"{DEFAULT_VERSION}, climate region '{self.name}' (climatology = 'golder': Pasquill/Golder "
                    "classes at z0 = 1 m, the v1 default; see engine.dispersion.climatology)")
        if self.kind == "aermet_climatology":
            return (f"{AERMET_VERSION}, climate region '{self.name}' (built the AERMET way, two seasons; "
                    "see engine.dispersion.climatology)")
        if self.kind == "climatology_file":
            return f"climatology file: {self.name}"
        return f"{self.kind}: {self.name}"


def _file_digest(*paths):
    h = hashlib.sha256()
    for p in paths:
        try:
            h.update(Path(p).read_bytes())
        except FileNotFoundError:
            raise InputError(f"met file {p} does not exist") from None
    return h.hexdigest()[:20]


def met_spec_for_city(met_cfg, city_id, province_id, *, check_files=True):
    """The :class:`MetSpec` of one city under a ``[met]`` configuration.

    ``sfc_file``/``pfl_file`` may contain ``{city_id}`` (and ``{province_id}``) to give every
    city its own AERMET files; otherwise the same files serve every city. ``star_file`` likewise.
    """
    fmt = {"city_id": int(city_id), "province_id": int(province_id)}
    if met_cfg.sfc_file or met_cfg.pfl_file:
        if not (met_cfg.sfc_file and met_cfg.pfl_file):
            raise InputError("[met] sfc_file and pfl_file must be given together")
        sfc, pfl = met_cfg.sfc_file.format(**fmt), met_cfg.pfl_file.format(**fmt)
        dig = _file_digest(sfc, pfl) if check_files else ""
        return MetSpec("aermet", f"{sfc} + {pfl}", dig)
    if met_cfg.star_file:
        star = met_cfg.star_file.format(**fmt)
        region = climate_region_of(province_id)
        dig = _file_digest(star) if check_files else ""
        return MetSpec("star", f"{star} (temperature and mixing height of region '{region}')",
                       hashlib.sha256(f"{dig}|{region}".encode()).hexdigest()[:20])
    cfile = getattr(met_cfg, "climatology_file", "")
    if cfile:
        cfile = cfile.format(**fmt)
        dig = _file_digest(cfile) if check_files else ""
        return MetSpec("climatology_file", cfile, dig)
    if met_cfg.climatology not in CLIMATOLOGY_NAMES:
        raise InputError(f"[met] climatology = {met_cfg.climatology!r} is not known; valid: "
                         f"{', '.join(CLIMATOLOGY_NAMES)}")
    region = climate_region_of(province_id)
    if met_cfg.climatology in ("aermet", "default"):  # 'default' = the AERMET-way climatology
        h = hashlib.sha256(f"{AERMET_VERSION}|{region}|{CLIMATE_REGIONS[region]}".encode())
        for name in ("aermet_surface_characteristics.csv", "climate_region_seasons.csv"):
            h.update((MET_DATA_DIR / name).read_bytes())
        return MetSpec("aermet_climatology", region, h.hexdigest()[:20])
    dig = hashlib.sha256(f"{DEFAULT_VERSION}|{region}|{CLIMATE_REGIONS[region]}".encode()).hexdigest()[:20]
    return MetSpec("default", region, dig)


def load_climatology(spec):
    """The :class:`Climatology` (per-season met) of a climatology :class:`MetSpec`.

    For ``kind`` 'aermet_climatology' (built-in, :func:`aermet_climatology`) and 'climatology_file'
    (:func:`read_climatology`). Hourly and STAR met have no seasons: ``InputError``.
    """
    if spec.kind == "aermet_climatology":
        return _aermet_climatology_cached(spec.name)
    if spec.kind == "climatology_file":
        return read_climatology(spec.name)
    raise InputError(f"met {spec.describe()} is not a seasonal climatology (use [met] climatology = 'aermet' "
                     "or climatology_file)")


_AERMET_CACHE = {}
#: the files a built-in climatology is made from (their content keys the disk cache)
_AERMET_SOURCES = ("aermet.py", "classes.py", "tables.py", "regions.py", "golder.py")


def _aermet_climatology_cached(region):
    """The built-in AERMET-way climatology of a region: built once per process, and kept in the
    cache folder (``$COBENEFITS_CACHE_DIR/met``, bit-exact arrays) so that a new process reads it
    instead of building it again (seconds per region)."""
    if region not in _AERMET_CACHE:
        path = _aermet_cache_path(region)
        clim = _read_cached_climatology(path) if path is not None else None
        if clim is None:
            clim = aermet_climatology(region)
            if path is not None:
                _write_cached_climatology(clim, path)
        _AERMET_CACHE[region] = clim
    return _AERMET_CACHE[region]


def _aermet_cache_path(region):
    from engine.dispersion.fields import cache_dir

    h = hashlib.sha256(f"{AERMET_VERSION}|{region}|{CLIMATE_REGIONS[region]}".encode())
    for name in ("aermet_surface_characteristics.csv", "climate_region_seasons.csv", "seasonal_emission_profiles.csv"):
        p = MET_DATA_DIR / name
        if p.exists():
            h.update(p.read_bytes())
    here = Path(__file__).resolve().parent
    for name in _AERMET_SOURCES:
        h.update((here / name).read_bytes())
    try:
        return cache_dir("met") / f"aermet_{region}_{h.hexdigest()[:20]}.npz"
    except OSError:
        return None  # no writable cache folder: build in memory only


def _write_cached_climatology(clim, path):
    from engine.output.persist import save_verified_npz

    arrays = {f"class_{k}": np.asarray(v) for k, v in clim.classes.items()}
    seasons = list(clim.season_frequency)
    arrays.update(seasons=np.array(seasons, dtype=str),
                  season_frequency=np.array([clim.season_frequency[s] for s in seasons], dtype=np.float64),
                  calm_frequency=np.array([clim.calm_frequency[s] for s in seasons], dtype=np.float64),
                  source=np.array(clim.source, dtype=str),
                  profile_heights_m=np.asarray(clim.profile_heights_m, dtype=np.float64),
                  class_keys=np.array(list(clim.classes), dtype=str))
    try:
        save_verified_npz(path, **arrays)
    except OSError:
        pass  # the cache is an optimisation; a read-only cache folder is not an error


def _read_cached_climatology(path):
    from engine.output.persist import load_verified_npz

    from .classes import Climatology

    head = load_verified_npz(path, ["class_keys", "seasons", "season_frequency", "calm_frequency", "source",
                                    "profile_heights_m"])
    if head is None:
        return None
    keys = [str(k) for k in head["class_keys"]]
    cls = load_verified_npz(path, [f"class_{k}" for k in keys])
    if cls is None:
        return None
    seasons = [str(s) for s in head["seasons"]]
    return Climatology(classes={k: cls[f"class_{k}"] for k in keys},
                       season_frequency={s: float(v) for s, v in zip(seasons, head["season_frequency"])},
                       calm_frequency={s: float(v) for s, v in zip(seasons, head["calm_frequency"])},
                       source=str(head["source"]), profile_heights_m=tuple(float(z) for z in head["profile_heights_m"]))


def load_met(spec):
    """The :class:`engine.dispersion.met.MetHours` of a :class:`MetSpec` (a climatology's annual met)."""
    if spec.kind in ("aermet_climatology", "climatology_file"):
        return load_climatology(spec).met()
    if spec.kind == "default":
        return to_met_hours(default_climatology_arrays(spec.name))
    if spec.kind == "star":
        path = spec.name.split(" (", 1)[0]
        region = CLIMATE_REGIONS[re.search(r"region '([a-z_]+)'", spec.name).group(1)]
        arrays = star_to_arrays(read_star(path), temperature_k=region.temperature_k,
                                daytime_mixing_height_m=region.daytime_mixing_height_m)
        return to_met_hours(arrays)
    from engine.dispersion.met import read_aermet

    sfc, pfl = spec.name.split(" + ")
    return read_aermet(sfc, pfl)

def load_seasonal_met(spec):
    """``{season: (MetHours, coefficient, digest)}`` of a climatology :class:`MetSpec`.

    ``coefficient`` is :meth:`Climatology.season_coefficients` (the calm correction c_s) and
    ``digest`` a content key for that season's transfer kernels. A seasonal run computes one
    source-receptor matrix S_s per season with ``MetHours`` and superposes

    .. math:: C = \\sum_s c_s\\, S_s\\, (\\mathrm{share}_s \\odot q)

    with q the annual-mean emission intensity of each source and share_s from
    :func:`seasonal_source_shares`. Hourly and STAR met have no seasons (``InputError``).
    """
    clim = load_climatology(spec)
    coef = clim.season_coefficients()
    return {s: (m, coef[s], hashlib.sha256(f"{spec.digest}|season={s}".encode()).hexdigest()[:20])
            for s, m in clim.seasonal_met().items()}
