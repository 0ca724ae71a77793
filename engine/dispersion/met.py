"""Meteorology for the dispersion kernels: the :class:`MetHours` container and AERMET readers.

AERMET surface (``.SFC``) and profile (``.PFL``) files are read once and normalised at the
boundary: AERMET's missing-value codes become NaN, degrees Celsius become kelvin, and the
profile's sigma-theta becomes sigma-v as AERMOD's PFLCNV does (see
:func:`sigma_v_from_sigma_theta`). The engine never sees a foreign convention.

Calm and missing hours follow AERMOD: an hour is *calm* when the reference wind speed is 0;
it is *missing* when any of the reference wind speed, wind direction, u*, L, the mechanical
mixing height (and the convective one when L < 0), z0 or the temperature is missing. Both give
concentration 0 and are excluded from period-average denominators (EPA calms policy; AERMOD
divides the PERIOD sum by the number of hours minus calm and missing hours).

Glossary (field: unit)
----------------------
wind_speed_m_s: m s-1 at reference_height_m; wind_from_deg: degrees clockwise from north,
direction the wind blows FROM; friction_velocity_m_s (u*); convective_velocity_m_s (w*, NaN
when stable); monin_obukhov_length_m (L); conv_mixing_height_m (zic, NaN when stable);
mech_mixing_height_m (zim); roughness_length_m (z0); temperature_k; temperature_height_m;
theta_gradient_k_m (d theta/dz above zi; NaN -> AERMOD default 0.005); weight (1 per hour, or
the class frequency of a climatology); calm, missing (bool).
Profile arrays (n, n_levels), NaN padded: profile_height_m, profile_wind_speed_m_s,
profile_wind_from_deg, profile_sigma_v_m_s, profile_sigma_w_m_s, profile_temperature_k.
"""

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from engine.constants import MAX_MIXING_HEIGHT_M, SVMIN_M_S, SWMIN_M_S
from engine.errors import InputError, read_text_file

__all__ = ["MetHours", "read_sfc", "read_pfl", "read_aermet", "sigma_v_from_sigma_theta",
           "check_hour_sequence"]

_PROFILE_FIELDS = (
    "profile_height_m",
    "profile_wind_speed_m_s",
    "profile_wind_from_deg",
    "profile_sigma_v_m_s",
    "profile_sigma_w_m_s",
    "profile_temperature_k",
)


def _arr(v, n=None, fill=np.nan):
    if v is None:
        return np.full(n, fill, dtype=np.float64)
    a = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if n is not None and a.shape == (1,) and n != 1:
        a = np.full(n, a[0])
    return a


@dataclass(frozen=True, eq=False)
class MetHours:
    """One entry per met hour (or climatology class); 1-D float64 arrays of equal length n.

    Build with :meth:`from_arrays` (fills defaults, validates ranges) or the AERMET readers.
    """

    wind_speed_m_s: np.ndarray
    wind_from_deg: np.ndarray
    reference_height_m: np.ndarray
    friction_velocity_m_s: np.ndarray
    convective_velocity_m_s: np.ndarray
    monin_obukhov_length_m: np.ndarray
    conv_mixing_height_m: np.ndarray
    mech_mixing_height_m: np.ndarray
    roughness_length_m: np.ndarray
    temperature_k: np.ndarray
    theta_gradient_k_m: np.ndarray
    weight: np.ndarray
    calm: np.ndarray
    missing: np.ndarray
    temperature_height_m: np.ndarray = None
    #: AERMOD hour label YYMMDDHH (hour-ending) when read from a file, else 1..n
    date: np.ndarray = None
    profile_height_m: np.ndarray = None
    profile_wind_speed_m_s: np.ndarray = None
    profile_wind_from_deg: np.ndarray = None
    profile_sigma_v_m_s: np.ndarray = None
    profile_sigma_w_m_s: np.ndarray = None
    profile_temperature_k: np.ndarray = None
    source: str = field(default="arrays")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(cls, *, wind_speed_m_s, wind_from_deg, friction_velocity_m_s,
                    monin_obukhov_length_m, mech_mixing_height_m, roughness_length_m,
                    temperature_k=293.15, reference_height_m=10.0,
                    convective_velocity_m_s=None, conv_mixing_height_m=None,
                    theta_gradient_k_m=None, weight=1.0, calm=None, missing=None,
                    temperature_height_m=2.0, date=None, source="arrays", **profiles):
        """Build and validate a :class:`MetHours`.

        Scalars broadcast to the number of hours. ``calm`` defaults to ``wind_speed == 0``;
        ``missing`` to "an essential field is NaN". Profiles are optional ``(n, n_levels)``
        arrays named as in the module glossary.

        Raises
        ------
        InputError
            A field has the wrong length or a value outside its physical range (the message
            names the field, the first offending hour and the allowed range).
        """
        ws = _arr(wind_speed_m_s)
        n = ws.shape[0]
        kw = dict(
            wind_speed_m_s=ws,
            wind_from_deg=_arr(wind_from_deg, n),
            reference_height_m=_arr(reference_height_m, n),
            friction_velocity_m_s=_arr(friction_velocity_m_s, n),
            convective_velocity_m_s=_arr(convective_velocity_m_s, n),
            monin_obukhov_length_m=_arr(monin_obukhov_length_m, n),
            conv_mixing_height_m=_arr(conv_mixing_height_m, n),
            mech_mixing_height_m=_arr(mech_mixing_height_m, n),
            roughness_length_m=_arr(roughness_length_m, n),
            temperature_k=_arr(temperature_k, n),
            theta_gradient_k_m=_arr(theta_gradient_k_m, n),
            weight=_arr(weight, n),
            temperature_height_m=_arr(temperature_height_m, n),
        )
        for name, a in kw.items():
            if a.shape != (n,):
                raise InputError(f"MetHours: {name} has shape {a.shape}, expected ({n},) like wind_speed_m_s")
        unknown = set(profiles) - set(_PROFILE_FIELDS)
        if unknown:
            raise InputError(f"MetHours: unknown field(s) {sorted(unknown)}; profile fields are {list(_PROFILE_FIELDS)}")
        prof = {}
        for name in _PROFILE_FIELDS:
            if profiles.get(name) is not None:
                a = np.asarray(profiles[name], dtype=np.float64)
                if a.ndim == 1:
                    a = a[:, None]
                if a.ndim != 2 or a.shape[0] != n:
                    raise InputError(f"MetHours: {name} must have shape ({n}, n_levels), got {a.shape}")
                prof[name] = a
        shapes = {a.shape for a in prof.values()}
        if len(shapes) > 1:
            raise InputError(f"MetHours: profile arrays have different shapes {sorted(shapes)}")
        L = kw["monin_obukhov_length_m"]
        stable = L > 0
        # w* and zic are undefined in stable hours
        kw["convective_velocity_m_s"] = np.where(stable, np.nan, kw["convective_velocity_m_s"])
        kw["conv_mixing_height_m"] = np.where(stable, np.nan, kw["conv_mixing_height_m"])
        ess = ["wind_speed_m_s", "wind_from_deg", "friction_velocity_m_s", "monin_obukhov_length_m",
               "mech_mixing_height_m", "roughness_length_m", "temperature_k", "reference_height_m"]
        miss_auto = np.zeros(n, bool)
        for name in ess:
            miss_auto |= np.isnan(kw[name])
        unstable = L < 0
        miss_auto |= unstable & (np.isnan(kw["conv_mixing_height_m"]) | np.isnan(kw["convective_velocity_m_s"]))
        calm_auto = (ws == 0.0)
        calm_a = calm_auto if calm is None else np.broadcast_to(np.asarray(calm, bool), (n,)).copy()
        miss_a = miss_auto if missing is None else (np.broadcast_to(np.asarray(missing, bool), (n,)) | miss_auto)
        calm_a = calm_a & ~miss_a
        if date is None:
            date = np.arange(1, n + 1, dtype=np.int64)
        date = np.asarray(date, dtype=np.int64)
        met = cls(**kw, calm=calm_a, missing=miss_a, date=date, source=source, **prof)
        met._validate()
        return met

    def _validate(self):
        ok = ~(self.calm | self.missing)
        checks = [
            ("wind_speed_m_s", lambda a: a >= 0, "finite, >= 0 m/s"),
            ("wind_from_deg", lambda a: (a >= 0) & (a <= 360), "0..360 degrees"),
            ("reference_height_m", lambda a: a > 0, "finite, > 0 m"),
            ("friction_velocity_m_s", lambda a: a > 0, "finite, > 0 m/s"),
            ("monin_obukhov_length_m", lambda a: a != 0, "non-zero m"),
            ("mech_mixing_height_m", lambda a: a > 0, "finite, > 0 m"),
            ("roughness_length_m", lambda a: (a > 0) & (a < 10), "0 < z0 < 10 m"),
            ("temperature_k", lambda a: (a > 150) & (a < 350), "150..350 K"),
        ]
        for name, test, rng in checks:
            a = getattr(self, name)
            # infinities are refused (u* = inf passed '> 0'); |L| = inf is exactly neutral, allowed
            inf = np.isinf(a) if name != "monin_obukhov_length_m" else np.zeros(a.shape, bool)
            bad = ok & (inf | ~test(np.nan_to_num(a, nan=-1e30 if name != "monin_obukhov_length_m" else 0.0)))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"MetHours ({self.source}): {name} = {float(a[i]):g} at hour index {i} "
                                 f"(date {int(self.date[i])}); allowed range {rng}")
        unstable = ok & (self.monin_obukhov_length_m < 0)
        for name in ("convective_velocity_m_s", "conv_mixing_height_m"):
            a = getattr(self, name)
            bad = unstable & (np.isinf(a) | ~(np.nan_to_num(a, nan=-1.0) > 0))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"MetHours ({self.source}): {name} = {float(a[i]):g} at hour index {i}; "
                                 f"must be > 0 in a convective hour (L < 0)")
        w = self.weight
        if np.isnan(w).any() or (w < 0).any():
            i = int(np.flatnonzero(np.isnan(w) | (w < 0))[0])
            raise InputError(f"MetHours ({self.source}): weight = {w[i]!r} at index {i}; allowed range >= 0")

    # ------------------------------------------------------------------ helpers
    def __len__(self):
        return int(self.wind_speed_m_s.shape[0])

    @property
    def n_hours(self):
        return len(self)

    @property
    def valid(self):
        """Hours with a computed concentration (not calm, not missing)."""
        return ~(self.calm | self.missing)

    def select(self, index):
        """A new :class:`MetHours` with the hours picked by ``index`` (slice, mask or ints)."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v[index] if isinstance(v, np.ndarray) else v
        return replace(self, **kw)

    def kernel_arrays(self):
        """(hours (n, 13), profiles tuple of six (n, n_levels)) for :mod:`kernels.plume`."""
        n = len(self)
        h = np.empty((n, 13))
        h[:, 0] = self.wind_speed_m_s
        h[:, 1] = self.wind_from_deg
        h[:, 2] = self.reference_height_m
        h[:, 3] = self.friction_velocity_m_s
        h[:, 4] = self.convective_velocity_m_s
        h[:, 5] = self.monin_obukhov_length_m
        h[:, 6] = self.conv_mixing_height_m
        h[:, 7] = self.mech_mixing_height_m
        h[:, 8] = self.roughness_length_m
        h[:, 9] = self.temperature_k
        h[:, 10] = self.theta_gradient_k_m
        h[:, 11] = (self.temperature_height_m if self.temperature_height_m is not None
                    else np.full(n, 2.0))
        h[:, 12] = self.valid.astype(np.float64)
        present = [getattr(self, f) for f in _PROFILE_FIELDS if getattr(self, f) is not None]
        nl = present[0].shape[1] if present else 1
        prof = []
        for name in _PROFILE_FIELDS:
            a = getattr(self, name)
            prof.append(np.ascontiguousarray(a, dtype=np.float64) if a is not None
                        else np.full((n, nl), np.nan))
        if self.profile_height_m is None:
            # no profile: AERMOD profiles from the reference wind (XTRPWS(UREFHT, UREF))
            prof = [np.full((n, nl), np.nan) for _ in _PROFILE_FIELDS]
        return h, tuple(prof)

    def digest(self):
        """A hash of the numerical content (for caching per-hour tables)."""
        h, prof = self.kernel_arrays()
        import hashlib
        m = hashlib.blake2b(h.tobytes(), digest_size=16)
        for p in prof:
            m.update(np.ascontiguousarray(p).tobytes())
        return m.hexdigest()


# ----------------------------------------------------------------------------------------
# AERMET readers
# ----------------------------------------------------------------------------------------
#: .SFC columns (AERMET v24142): name, missing test
_SFC_COLUMNS = [
    ("year", None), ("month", None), ("day", None), ("julian_day", None), ("hour", None),
    ("sensible_heat_flux_w_m2", lambda v: v <= -900.0),
    ("friction_velocity_m_s", lambda v: v <= -9.0),
    ("convective_velocity_m_s", lambda v: v <= -9.0),
    ("theta_gradient_k_m", lambda v: v <= -9.0),
    ("conv_mixing_height_m", lambda v: v <= -999.0),
    ("mech_mixing_height_m", lambda v: v <= -999.0),
    ("monin_obukhov_length_m", lambda v: v <= -99999.0),
    ("roughness_length_m", lambda v: v <= -9.0),
    ("bowen_ratio", lambda v: v <= -9.0),
    ("albedo", lambda v: v <= -9.0),
    ("wind_speed_m_s", lambda v: v < 0.0 or v >= 90.0),
    ("wind_from_deg", lambda v: v < 0.0 or v > 900.0),
    ("reference_height_m", lambda v: v <= -9.0),
    ("temperature_k", lambda v: v <= -9.0 or v >= 900.0),
    ("temperature_height_m", lambda v: v <= -9.0),
]


def _check_date_fields(path, lineno, vals, columns):
    """Date fields must be finite whole numbers: InputError naming the file, line and column."""
    for name, col in columns.items():
        v = vals[name]
        if not (np.isfinite(v) and float(v) == int(v)):
            raise InputError(f"{path}, line {lineno}: date field '{name}' (column {col}) = {v!r} is not a "
                             f"whole number; expected year 0..99 or 4 digits, month 1..12, day 1..31, hour 1..24")


def _parse_float(tok, path, lineno, name, col):
    """A field of an AERMET record: a finite number (AERMET marks a missing value with its
    missing code, e.g. 999.0 for the wind speed, never with ``nan`` or ``inf``)."""
    try:
        v = float(tok)
    except ValueError:
        raise InputError(f"{path}, line {lineno}: field '{name}' (column {col}) should be a number, "
                         f"got {tok!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{path}, line {lineno}: field '{name}' (column {col}) = {tok!r} is not a finite number; "
                         "allowed: a finite number, or AERMET's missing code for the field (e.g. 999 for the "
                         "wind speed, -9 for u*)")
    return v


def read_sfc(path):
    """Read an AERMET surface file into a dict of 1-D arrays (missing codes -> NaN).

    Keys: the names of ``_SFC_COLUMNS`` plus ``date`` (YYMMDDHH int) and ``line``.

    Raises
    ------
    InputError
        Unreadable file, or a malformed line (message names file, line number and field).
    """
    path = Path(path)
    text = read_text_file(path, "AERMET surface file")
    lines = text.splitlines()
    if not lines:
        raise InputError(f"{path}: empty AERMET surface file (expected a header line and hourly records)")
    cols = {name: [] for name, _ in _SFC_COLUMNS}
    dates, linenos = [], []
    ncol = len(_SFC_COLUMNS)
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        toks = line.split()
        if len(toks) < ncol:
            name = _SFC_COLUMNS[len(toks)][0]
            raise InputError(f"{path}, line {lineno}: only {len(toks)} fields; expected at least {ncol} "
                             f"(missing field '{name}', column {len(toks) + 1})")
        vals = []
        for c, (name, miss) in enumerate(_SFC_COLUMNS):
            v = _parse_float(toks[c], path, lineno, name, c + 1)
            if miss is not None and miss(v):
                v = np.nan
            vals.append(v)
            cols[name].append(v)
        _check_date_fields(path, lineno, {"year": vals[0], "month": vals[1], "day": vals[2], "hour": vals[4]},
                           {"year": 1, "month": 2, "day": 3, "hour": 5})
        yy, mo, dd, hh = (int(vals[0]), int(vals[1]), int(vals[2]), int(vals[4]))
        if not (1 <= mo <= 12 and 1 <= dd <= 31 and 1 <= hh <= 24):
            raise InputError(f"{path}, line {lineno}: date fields month={mo} day={dd} hour={hh} out of "
                             f"range (month 1..12, day 1..31, hour 1..24)")
        dates.append((yy % 100) * 1000000 + mo * 10000 + dd * 100 + hh)
        linenos.append(lineno)
    if not dates:
        raise InputError(f"{path}: no hourly records after the header line")
    out = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
    out["date"] = np.asarray(dates, dtype=np.int64)
    out["line"] = np.asarray(linenos, dtype=np.int64)
    return out


_PFL_COLUMNS = [
    ("year", None), ("month", None), ("day", None), ("hour", None),
    ("height_m", lambda v: v < 0.0 or v >= 9000.0),
    ("top_flag", None),
    ("wind_from_deg", lambda v: v < 0.0 or v >= 900.0),
    ("wind_speed_m_s", lambda v: v < 0.0 or v >= 90.0),
    ("temperature_c", lambda v: v <= -90.0 or v >= 99.0),
    ("sigma_theta_deg", lambda v: v < 0.0 or v >= 99.0),
    ("sigma_w_m_s", lambda v: v < 0.0 or v >= 99.0),
]


#: coefficient of the sigma-theta correction in AERMOD's PFLCNV (modules.f GSIGV) [rad-1]
GSIGV = 0.073864


def sigma_v_from_sigma_theta(sigma_theta_deg, wind_speed_m_s):
    """Lateral turbulence sigma-v [m s-1] from observed sigma-theta [deg], as AERMOD's PFLCNV.

    AERMOD (metext.f ``PFLCNV``): with s = sigma-theta in radians,
    eps = sin(s) (1 - GSIGV s), the mean along-wind component is
    U_v = U sqrt(1 - eps^2) and sigma-v = max(SVMIN, s U_v), SVMIN = 0.2 m s-1. NaN when
    sigma-theta is missing or the wind speed is missing or not > 0 (AERMOD: -99).
    """
    st = float(sigma_theta_deg)
    u = float(wind_speed_m_s)
    if np.isnan(st) or np.isnan(u) or not u > 0.0 or st < 0.0:
        return np.nan
    s = np.deg2rad(st)
    eps = np.sin(s) * (1.0 - GSIGV * s)
    return max(SVMIN_M_S, s * u * np.sqrt(1.0 - eps * eps))


def read_pfl(path, lines_out=None):
    """Read an AERMET profile file. Returns ``{date: list of level dicts}`` in file order.

    ``lines_out``, when a dict, receives ``{date: line of the hour's first record}``.

    Each level dict holds ``height_m, wind_from_deg, wind_speed_m_s, temperature_k,
    sigma_v_m_s, sigma_w_m_s`` (NaN when missing; sigma-v from sigma-theta and the wind
    speed by :func:`sigma_v_from_sigma_theta`; sigma-w floored at SWMIN, as AERMOD PFLCNV).
    """
    path = Path(path)
    text = read_text_file(path, "AERMET profile file")
    prof = {}
    first_line = {}
    last_date = None
    ncol = len(_PFL_COLUMNS)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        toks = line.split()
        if len(toks) < ncol:
            name = _PFL_COLUMNS[len(toks)][0]
            raise InputError(f"{path}, line {lineno}: only {len(toks)} fields; expected {ncol} "
                             f"(missing field '{name}', column {len(toks) + 1})")
        vals = {}
        for c, (name, miss) in enumerate(_PFL_COLUMNS):
            v = _parse_float(toks[c], path, lineno, name, c + 1)
            if miss is not None and miss(v):
                v = np.nan
            vals[name] = v
        _check_date_fields(path, lineno, vals, {"year": 1, "month": 2, "day": 3, "hour": 4})
        mo, dd, hh = int(vals["month"]), int(vals["day"]), int(vals["hour"])
        if not (1 <= mo <= 12 and 1 <= dd <= 31 and 1 <= hh <= 24):
            raise InputError(f"{path}, line {lineno}: date fields month={mo} day={dd} hour={hh} out of "
                             f"range (month 1..12, day 1..31, hour 1..24)")
        if np.isnan(vals["height_m"]):
            raise InputError(f"{path}, line {lineno}: field 'height_m' (column 5) is missing or out of "
                             f"range; expected 0..9000 m")
        date = (int(vals["year"]) % 100) * 1000000 + mo * 10000 + dd * 100 + hh
        ws = vals["wind_speed_m_s"]
        wd = vals["wind_from_deg"]
        # AERMOD PFLCNV (metext.f): a calm level (speed 0 and direction 0) is missing; a
        # direction of 0 with a non-zero speed means north (360)
        if ws == 0.0 and wd == 0.0:
            ws = wd = np.nan
        elif ws > 0.0 and wd == 0.0:
            wd = 360.0
        sw = vals["sigma_w_m_s"]
        if date not in prof:
            first_line[date] = lineno
        level = dict(
            height_m=vals["height_m"],
            wind_from_deg=wd,
            wind_speed_m_s=ws,
            temperature_k=vals["temperature_c"] + 273.15,
            sigma_v_m_s=sigma_v_from_sigma_theta(vals["sigma_theta_deg"], ws),
            sigma_w_m_s=max(sw, SWMIN_M_S) if not np.isnan(sw) else np.nan,
        )
        if date in prof and last_date != date:
            raise InputError(f"{path}, line {lineno}: profile hour {date:08d} appears again "
                             f"(first on line {first_line[date]}); each hour's levels must be "
                             "consecutive records (AERMOD E450: record out of sequence)")
        prof.setdefault(date, []).append(level)
        last_date = date
    if lines_out is not None:
        lines_out.update(first_line)
    return prof


def _hour_index(date):
    """Hours since 1900-01-01 00:00 of an AERMOD stamp YYMMDDHH (hour ending 1..24);
    None for an impossible calendar date. Two-digit years: 50-99 -> 19xx, else 20xx (AERMOD's
    window)."""
    import datetime as _dt

    yy, rest = divmod(int(date), 1_000_000)
    mm, rest = divmod(rest, 10_000)
    dd, hh = divmod(rest, 100)
    year = 1900 + yy if yy >= 50 else 2000 + yy
    try:
        day = _dt.date(year, mm, dd)
    except ValueError:
        return None
    return (day - _dt.date(1900, 1, 1)).days * 24 + hh


def check_hour_sequence(dates, lines, path):
    """AERMOD's record-sequence check (metext.f ``CHKDAT``, error E450) on a surface file.

    Every hour must follow the previous one by exactly one hour. The only gap AERMOD accepts
    (with a warning) is one of whole calendar years: hour 24 of 31 December followed by hour
    01 of 1 January of a later year.

    Raises
    ------
    InputError
        An impossible date, a repeated hour, an hour out of order or a gap, naming the file,
        the line and the previous record's line.
    """
    prev = None
    for i, d in enumerate(np.asarray(dates)):
        t = _hour_index(d)
        if t is None:
            raise InputError(f"{path}, line {int(lines[i])}: date {int(d):08d} (YYMMDDHH) is not a "
                             "calendar date")
        if prev is not None:
            tp, dp, lp = prev
            step = t - tp
            if step == 0:
                raise InputError(f"{path}, line {int(lines[i])}: hour {int(d):08d} repeats line {lp} "
                                 "(AERMOD E450: record out of sequence; each hour once, in order)")
            if step < 0:
                raise InputError(f"{path}, line {int(lines[i])}: hour {int(d):08d} comes after "
                                 f"{dp:08d} (line {lp}) (AERMOD E450: record out of sequence)")
            whole_years = (dp % 1_000_000 == 123124 and int(d) % 1_000_000 == 10101)
            if step > 1 and not whole_years:
                raise InputError(f"{path}, line {int(lines[i])}: {step - 1}-hour gap between "
                                 f"{dp:08d} (line {lp}) and {int(d):08d} (AERMOD E450: record out "
                                 "of sequence; AERMET files must list every hour, with missing "
                                 "values coded as missing)")
        prev = (t, int(d), int(lines[i]))


_ESSENTIAL_SFC = (("wind_speed_m_s", "reference wind speed"), ("wind_from_deg", "wind direction"),
                  ("friction_velocity_m_s", "u*"), ("monin_obukhov_length_m", "L"),
                  ("mech_mixing_height_m", "mechanical mixing height"),
                  ("roughness_length_m", "z0"), ("temperature_k", "temperature"),
                  ("reference_height_m", "reference height"))


def _why_missing(s, i):
    names = [label for key, label in _ESSENTIAL_SFC if np.isnan(s[key][i])]
    if not names and s["monin_obukhov_length_m"][i] < 0:
        names = [label for key, label in (("conv_mixing_height_m", "convective mixing height"),
                                          ("convective_velocity_m_s", "w*"))
                 if np.isnan(s[key][i])]
    if names:
        return ", ".join(names) + " missing or out of range"
    return "calm (reference wind speed 0)"


def read_aermet(sfc, pfl=None):
    """Read an AERMET .SFC (and optionally .PFL) pair into :class:`MetHours`.

    Profile levels are matched to surface hours by date; hours without profile data use the
    surface file's reference wind (as AERMOD does when the profile is missing).
    """
    s = read_sfc(sfc)
    n = s["date"].shape[0]
    check_hour_sequence(s["date"], s["line"], sfc)
    # AERMOD SET_METDATA: mixing heights below 1 m are raised to 1 m and limited to 4000 m
    for key in ("conv_mixing_height_m", "mech_mixing_height_m"):
        zi = s[key]
        s[key] = np.where((zi >= 0.0) & (zi < 1.0), 1.0, np.minimum(zi, MAX_MIXING_HEIGHT_M))
    profiles = {}
    if pfl is not None:
        pfl_lines = {}
        p = read_pfl(pfl, lines_out=pfl_lines)
        # METEXT reads one .PFL hour per .SFC hour and stops on a date mismatch
        pdates = list(p)
        for i, d in enumerate(s["date"]):
            d = int(d)
            if i >= len(pdates):
                raise InputError(f"{pfl}: profile file ends before surface hour {d:08d} ({sfc}, line "
                                 f"{int(s['line'][i])}); the two files must cover the same hours")
            if pdates[i] != d:
                raise InputError(f"{pfl}, line {pfl_lines[pdates[i]]}: profile hour {pdates[i]:08d} "
                                 f"does not match surface hour {d:08d} ({sfc}, line "
                                 f"{int(s['line'][i])}); the two files must list the same hours "
                                 "in the same order (AERMOD stops on this)")
        if len(pdates) > n:
            extra = pdates[n]
            raise InputError(f"{pfl}, line {pfl_lines[extra]}: profile hour {extra:08d} has no "
                             f"surface record ({sfc} ends at {int(s['date'][-1]):08d}, line "
                             f"{int(s['line'][-1])})")
        nl = max((len(v) for v in p.values()), default=1)
        arrays = {k: np.full((n, nl), np.nan) for k in _PROFILE_FIELDS}
        keymap = dict(profile_height_m="height_m", profile_wind_speed_m_s="wind_speed_m_s",
                      profile_wind_from_deg="wind_from_deg", profile_sigma_v_m_s="sigma_v_m_s",
                      profile_sigma_w_m_s="sigma_w_m_s", profile_temperature_k="temperature_k")
        for i, d in enumerate(s["date"]):
            levels = p.get(int(d), [])
            levels = sorted(levels, key=lambda lv: lv["height_m"])
            for j, lv in enumerate(levels):
                for k, src in keymap.items():
                    arrays[k][i, j] = lv[src]
        profiles = arrays
    ws = s["wind_speed_m_s"]
    met = MetHours.from_arrays(
        wind_speed_m_s=ws,
        wind_from_deg=s["wind_from_deg"],
        reference_height_m=s["reference_height_m"],
        friction_velocity_m_s=s["friction_velocity_m_s"],
        convective_velocity_m_s=s["convective_velocity_m_s"],
        monin_obukhov_length_m=s["monin_obukhov_length_m"],
        conv_mixing_height_m=s["conv_mixing_height_m"],
        mech_mixing_height_m=s["mech_mixing_height_m"],
        roughness_length_m=s["roughness_length_m"],
        temperature_k=s["temperature_k"],
        temperature_height_m=np.where(np.isnan(s["temperature_height_m"]), 2.0, s["temperature_height_m"]),
        theta_gradient_k_m=s["theta_gradient_k_m"],
        date=s["date"],
        source=str(sfc),
        **profiles,
    )
    if not met.valid.any():
        n_miss = int(met.missing.sum())
        raise InputError(f"{sfc}: no usable hour: all {n} hours (lines {int(s['line'][0])}-"
                         f"{int(s['line'][-1])}) are missing ({n_miss}) or calm ({n - n_miss}); "
                         f"e.g. line {int(s['line'][0])}: {_why_missing(s, 0)}")
    return met
