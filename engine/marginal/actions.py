"""City and province actions of the carbon stage, adopted place by place.

The carbon stage (:func:`engine.carbon.accounting.evaluate`) takes its scenario knobs per place
(an *adoption*): each sector's efficiency level, the power plants' heat rate, each waste-heat
cascade and each province's material exchange. The actions (Ramaswami et al. 2017, Tables 1-2):

* ``eff_<sector>_<level>``: single-sector efficiency of steel, cement, industrial boilers,
  buildings, other key industry or the power plants' heat rate, at the FYP target or at
  best practice (``high``); any place (city or rest of province); the two levels of one sector
  exclude each other;
* ``cascade_high_grade_orc`` (A), ``cascade_medium_grade`` (B, C and C': industry, existing
  DES, ORC) and ``cascade_low_grade_4gdh`` (D): energy cascading, cities only (as the paper);
* ``materials_exchange``: fly ash and steel slag into cement, settled per province (as the
  paper), so its unit is a province.

Electricity saved anywhere is pooled over the grid region and materials over the province
(the carbon stage's rules), so one place's action moves the emissions of others; all of it is
in the carbon stage's result.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from engine.constants import SECONDS_PER_YEAR
from engine.errors import InputError

__all__ = ["Action", "ACTIONS", "EFFICIENCY_SECTORS", "CASCADES", "ActionModel", "reference_scenario"]

#: the carbon stage's efficiency sectors (engine.carbon.efficiency.SECTORS) and the power plants
EFFICIENCY_SECTORS = ("steel", "cement", "industrial_boiler", "buildings", "other_industry", "power")
#: waste-heat cascades -> the [carbon] availability they switch (engine.carbon.cascade)
CASCADES = {"cascade_high_grade_orc": "avail_high", "cascade_medium_grade": "avail_medium",
            "cascade_low_grade_4gdh": "avail_low"}
_AVAIL_KEY = {"avail_high": "heat_availability_high", "avail_medium": "heat_availability_medium",
              "avail_low": "heat_availability_low"}
_LEVELS = {"fyp": 1, "high": 2}


@dataclasses.dataclass(frozen=True)
class Action:
    """One action: ``kind`` efficiency | cascade | materials; ``unit`` place | city | province."""

    name: str
    kind: str
    key: str          # adoption key: a sector, a cascade or 'materials_exchange'
    level: int        # efficiency level index (1 fyp, 2 high); 1 otherwise
    unit: str


ACTIONS = tuple(
    [Action(f"eff_{s}_{lv}", "efficiency", s, i, "place") for s in EFFICIENCY_SECTORS for lv, i in _LEVELS.items()]
    + [Action(n, "cascade", n, 1, "city") for n in CASCADES]
    + [Action("materials_exchange", "materials", "materials_exchange", 1, "province")])


def reference_scenario(cfg, name=None):
    """The scenario targeting is compared with: ``name``, else ``fyp_symbiosis``, else the first
    with efficiency and symbiosis. Returns ``(name, CarbonConfig)``."""
    sc = {s.name: c for s, c in cfg.scenarios}
    if name is None:
        name = "fyp_symbiosis" if "fyp_symbiosis" in sc else next(
            (n for n, c in sc.items() if c.symbiosis and c.efficiency_level != "none"), None)
    if name not in sc:
        raise InputError(f"reference scenario {name!r}: not in the configuration (known: {', '.join(sc)}); "
                         "targeting needs a scenario with efficiency and symbiosis to compare with")
    return name, sc[name]


class ActionModel:
    """The carbon stage on adoptions, and the emissions each gives at the sources of a run.

    Parameters
    ----------
    prep : engine.pipeline.Prepared
    reference : engine.config.CarbonConfig
        Availabilities, ORC efficiency, seasonality and saturations of the actions.
    params : carbon parameters (default :func:`engine.carbon.parameters.load_parameters`)
    """

    def __init__(self, prep, reference, params=None):
        from engine.carbon.accounting import prepare as cprep
        from engine.carbon.parameters import load_parameters
        from engine.dispersion import climatology as clim

        self.params = params if params is not None else load_parameters()
        self.cp = cprep(prep.data, self.params)
        self.reference = reference
        places = self.cp.places
        self.n_place = len(places)
        self.n_province = len(self.cp.provinces)
        self.kind = places["kind"].to_numpy()
        pid = places["province_id"].to_numpy().astype(np.int64)
        self.place_id = np.where(self.kind == "city", places["city_id"].to_numpy(), pid).astype(np.int64)
        self.place_province = pid
        # English names where the data set has them (the figures' fonts have no CJK glyphs)
        names = places["name_en"].where(places["name_en"].notna(), places["name"]) if "name_en" in places \
            else places["name"]
        self.place_name = np.where(self.kind == "rop", ["rest of " + str(n) for n in names], names.astype(str))
        self.area_km2 = places["area_km2"].to_numpy(float)
        lookup = {(k, int(i)): j for j, (k, i) in enumerate(zip(self.kind, self.place_id))}
        self.source_place = np.array([lookup.get((s.kind, int(s.id)), -1) for s in prep.sources], dtype=np.int64)
        missing = [prep.sources[k].label for k in np.nonzero(self.source_place < 0)[0]
                   if prep.sources[k].kind == "city"]
        if missing:
            raise InputError(f"carbon stage has no place for source(s) {missing[:5]}")
        self.source_labels = list(prep.source_labels)
        self.seasons = prep.seasons
        self.heights = prep.heights  # emission-height classes, or None ([dispersion] emission_heights)
        self.weights = None
        if self.seasons != ("annual",):
            regions = np.array([clim.climate_region_of(p) for p in pid])
            self._regions = regions
            self.weights = {}
        self.base = self.evaluate(self.empty(1))

    # ------------------------------------------------------------------ adoptions
    def empty(self, n):
        """An adoption of nothing for ``n`` rows: ``{key: (n, P)}`` (materials ``(n, R)``)."""
        a = {s: np.zeros((n, self.n_place), dtype=np.int64) for s in EFFICIENCY_SECTORS}
        a.update({c: np.zeros((n, self.n_place)) for c in CASCADES})
        a["materials_exchange"] = np.zeros((n, self.n_province))
        return a

    def uniform(self, level=1):
        """Every place adopts every action (efficiency at ``level``): the paper's scenario."""
        a = self.empty(1)
        for s in EFFICIENCY_SECTORS:
            a[s][:] = level
        for c in CASCADES:
            a[c][:] = 1.0
        a["materials_exchange"][:] = 1.0
        return a

    def units(self, action):
        """Indices (into places or provinces) of the units that can take ``action``."""
        if action.unit == "province":
            return np.arange(self.n_province)
        if action.unit == "city":
            return np.nonzero(self.kind == "city")[0]
        return np.arange(self.n_place)

    def single(self, action, units):
        """The adoption in which unit ``units[i]`` alone takes ``action`` (row i)."""
        a = self.empty(len(units))
        rows = np.arange(len(units))
        a[action.key][rows, units] = action.level
        return a

    def evaluate(self, adoption):
        """:func:`engine.carbon.accounting.evaluate` on an adoption; arrays ``(n, P)``."""
        from engine.carbon.accounting import evaluate

        r = self.reference
        n = adoption["steel"].shape[0]
        args = {"level": {s: adoption[s] for s in EFFICIENCY_SECTORS if s != "power"},
                "heat_rate_level": adoption["power"], "symbiosis": np.ones((1, 1)),
                "materials_enabled": adoption["materials_exchange"],
                "seasonality": float(r.seasonality_fraction), "orc_efficiency": float(r.orc_efficiency),
                "fly_ash_saturation": float(r.fly_ash_saturation), "slag_saturation": float(r.slag_saturation)}
        for c, arg in CASCADES.items():
            args[arg] = float(getattr(r, _AVAIL_KEY[arg])) * adoption[c]
        res = evaluate(self.cp, self.params, **args)
        shape = (n, self.n_place)
        return {"co2_mt": np.broadcast_to(res["co2_mt"], shape), "pm25_t": np.broadcast_to(res["pm25_t"], shape),
                "pm25_by_sector_t": {k: np.broadcast_to(v, shape) for k, v in res["pm25_by_sector_t"].items()}}

    # ------------------------------------------------------------------ emissions
    def _season_weights(self, sector):
        from engine.dispersion import climatology as clim

        if sector not in self.weights:
            table = {g: clim.seasonal_emission_shares(sector, g) for g in np.unique(self._regions)}
            self.weights[sector] = {s: np.array([table[g][s] for g in self._regions]) for s in self.seasons}
        return self.weights[sector]

    def emissions(self, res, labels=None):
        """``q(sample, source)`` [g m-2 s-1] (and ``season_share(season, sample, source)``) of an
        evaluated adoption, as :func:`engine.pipeline.emissions` forms them from the carbon
        tables: q = PM2.5 [t] / area [km2] / seconds per year; the seasonal share of a place is
        its sectors' shares weighted by their PM2.5 (the vectorised form of
        :func:`engine.dispersion.climatology.seasonal_source_shares`, tested equal)."""
        from engine.dispersion import climatology as clim

        pm = np.asarray(res["pm25_t"], dtype=float)
        q_place = np.divide(pm, self.area_km2, out=np.zeros_like(pm), where=self.area_km2 > 0) / SECONDS_PER_YEAR
        sp = np.maximum(self.source_place, 0)
        has = self.source_place >= 0
        q = np.where(has, q_place[:, sp], 0.0)
        ds = xr.Dataset({"q": (("sample", "source"), q, {"units": "g m-2 s-1"})},
                        coords={"source": self.source_labels})
        if self.seasons != ("annual",):
            share = np.empty((len(self.seasons),) + q.shape)
            for j, s in enumerate(self.seasons):
                num = sum(np.asarray(v, dtype=float) * self._season_weights(k)[s]
                          for k, v in res["pm25_by_sector_t"].items())
                flat = clim.SEASON_DAYS[s] / 365.0
                sh = np.divide(num, pm, out=np.full(pm.shape, flat), where=pm > 0)
                share[j] = np.where(has, sh[:, sp], flat)
            ds["season_share"] = (("season", "sample", "source"), share, {"units": "1"})
            ds = ds.assign_coords(season=list(self.seasons))
        if self.heights is not None:
            ds = self._height_shares(ds, res, pm, sp, has)
        return ds

    def _height_shares(self, ds, res, pm, sp, has):
        """``height_share(height, sample, source)`` and with seasons the joint
        ``season_height_share`` (as :func:`engine.pipeline.emissions`: each sector's PM2.5 times its
        class share, engine/data/emission_heights.csv; a place that emits nothing is at the ground)."""
        from engine.dispersion import climatology as clim

        classes = self.heights.classes
        seasons = self.seasons if self.seasons != ("annual",) else ()
        hs = np.empty((len(classes),) + ds["q"].shape)
        joint = np.empty((len(seasons), len(classes)) + ds["q"].shape) if seasons else None
        for h, c in enumerate(classes):
            ground = 1.0 if c == "ground" else 0.0
            num = sum(np.asarray(v, dtype=float) * self.heights.sector_share(k, c)
                      for k, v in res["pm25_by_sector_t"].items())
            sh = np.divide(num, pm, out=np.full(pm.shape, ground), where=pm > 0)
            hs[h] = np.where(has, sh[:, sp], ground)
            for j, sname in enumerate(seasons):
                flat = clim.SEASON_DAYS[sname] / 365.0
                num = sum(np.asarray(v, dtype=float) * self.heights.sector_share(k, c) * self._season_weights(k)[sname]
                          for k, v in res["pm25_by_sector_t"].items())
                sj = np.divide(num, pm, out=np.full(pm.shape, flat * ground), where=pm > 0)
                joint[j, h] = np.where(has, sj[:, sp], flat * ground)
        ds["height_share"] = (("height", "sample", "source"), hs, {"units": "1"})
        if joint is not None:
            ds["season_height_share"] = (("season", "height", "sample", "source"), joint, {"units": "1"})
        return ds.assign_coords(height=list(classes))

    def co2_cut_mt(self, res):
        """National CO2 cut of each row from the Base-Case [Mt yr-1]."""
        return float(np.asarray(self.base["co2_mt"]).sum()) - np.asarray(res["co2_mt"]).sum(axis=-1)
