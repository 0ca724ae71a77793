"""Default met climatologies by climate region, ISC-style STAR tables, and per-city met choice.

Two built-in constructions, chosen by ``[met] climatology``:

* ``"aermet"`` (= ``"default"``; :func:`aermet_climatology`, :mod:`.aermet`): met-site surface
  characteristics per region and season (:mod:`.tables`), boundary-layer parameters by AERMET's
  own formulas hour by hour over each season, calms, two seasons (heating Nov-Mar, non-heating),
  grouped into classes by :func:`classify_hours` (:mod:`.classes`; the same grouping ``cobenefits
  met-climatology`` applies to an hourly AERMET file, :func:`climatology_from_met`); a
  :class:`Climatology` gives one MetHours per season and the season coefficients of a seasonal
  superposition; :func:`seasonal_emission_shares` (:mod:`.shares`) gives each sector's seasonal shares.
* ``"golder"``: the v1 construction (:mod:`.golder`, Pasquill-Turner classes with Golder 1972 L).

Users with real data give a STAR table (:mod:`.star`), a climatology file (:mod:`.files`) or
hourly AERMET files; :mod:`.spec` chooses each city's met (:class:`MetSpec`) and loads it.
Climate regions and the province table are in :mod:`.regions`.

Consistency checks of a climatology (season frequencies, header against rows, class winds) are
in :mod:`.checks`. Modules, in import order: regions -> golder -> star, classes -> checks -> tables -> aermet, files ->
shares, spec. Every public name is re-exported here (``from engine.dispersion import
climatology as clim; clim.load_met``).

Glossary: ``wind_speed_m_s`` [m s-1] at ``reference_height_m`` [m]; ``wind_from_deg`` [deg];
``friction_velocity_m_s`` u* [m s-1]; ``convective_velocity_m_s`` w* [m s-1];
``monin_obukhov_length_m`` L [m]; ``conv_mixing_height_m`` z_ic [m]; ``mech_mixing_height_m``
z_im [m]; ``roughness_length_m`` z0 [m]; ``temperature_k`` [K]; ``weight`` class frequency [1].
"""

from .aermet import (AERMET_BETA_M, AERMET_C1_W_M2_K6, AERMET_C2_W_M2, AERMET_C3, AERMET_MAX_ABS_L_M,
                     AERMET_MIN_ABS_L_M, AERMET_VERSION, CARSON_ENTRAINMENT_A,
                     CLOUD_FRACTION, MAX_USTAR_THETASTAR, MORNING_THETA_GRADIENT_K_M, RHO_CP,
                     STEFAN_BOLTZMANN_W_M2_K4, WEIBULL_SHAPE, aermet_climatology, aermet_hours,
                     convective_scales, net_radiation, stable_scales)
from .checks import SEASON_SUM_TOLERANCE, check_climatology
from .classes import (CALM_THRESHOLD_M_S, CLASS_FIELDS, CLIMATOLOGY_SPEED_EDGES_M_S, HEATING_MONTHS, SEASON_DAYS,
                      SEASONS, STABILITY_CLASSES, Climatology, classify_hours, climatology_from_met,
                      season_of_month, sector_index, speed_class_index, stability_class_index)
from .files import CLIMATOLOGY_FORMAT, read_climatology, write_climatology
from .golder import (DEFAULT_VERSION, GOLDER_1972, MIN_CLASS_FREQUENCY, MIN_WIND_SPEED_M_S, REFERENCE_HEIGHT_M,
                     SECTORS, STAR_SPEED_CLASS_M_S, STAR_SPEED_EDGES_M_S, URBAN_ROUGHNESS_M,
                     default_climatology_arrays, friction_velocity, monin_obukhov_from_class)
from .regions import CLIMATE_REGIONS, PROVINCE_REGION, ClimateRegion, climate_region_of
from .shares import seasonal_emission_shares, seasonal_source_shares
from .spec import (CLIMATOLOGY_NAMES, MetSpec, load_climatology, load_met, load_seasonal_met, met_spec_for_city,
                   to_met_hours)
from .star import read_star, star_to_arrays
from .tables import MET_DATA_DIR, surface_characteristics

__all__ = [
    "DEFAULT_VERSION",
    "CLIMATE_REGIONS",
    "PROVINCE_REGION",
    "GOLDER_1972",
    "STAR_SPEED_EDGES_M_S",
    "STAR_SPEED_CLASS_M_S",
    "MetSpec",
    "ClimateRegion",
    "climate_region_of",
    "default_climatology_arrays",
    "star_to_arrays",
    "read_star",
    "monin_obukhov_from_class",
    "friction_velocity",
    "to_met_hours",
    "met_spec_for_city",
    "load_met",
    "CLIMATOLOGY_NAMES",
    "check_climatology",
    "SEASON_SUM_TOLERANCE",
    "SEASONS",
    "STABILITY_CLASSES",
    "CALM_THRESHOLD_M_S",
    "CLIMATOLOGY_SPEED_EDGES_M_S",
    "Climatology",
    "classify_hours",
    "climatology_from_met",
    "season_of_month",
    "stability_class_index",
    "speed_class_index",
    "sector_index",
    "surface_characteristics",
    "net_radiation",
    "convective_scales",
    "stable_scales",
    "aermet_hours",
    "aermet_climatology",
    "seasonal_emission_shares",
    "write_climatology",
    "read_climatology",
    "load_climatology",
    "load_seasonal_met",
    "seasonal_source_shares",
]

#: constants of the submodules, importable from here as before the split (not part of ``*``)
_CONSTANTS = (AERMET_BETA_M, AERMET_C1_W_M2_K6, AERMET_C2_W_M2, AERMET_C3, AERMET_MAX_ABS_L_M,
              AERMET_MIN_ABS_L_M, AERMET_VERSION, CARSON_ENTRAINMENT_A, CLOUD_FRACTION,
              MAX_USTAR_THETASTAR, MORNING_THETA_GRADIENT_K_M, RHO_CP, STEFAN_BOLTZMANN_W_M2_K4, WEIBULL_SHAPE,
              CLASS_FIELDS, HEATING_MONTHS, SEASON_DAYS, CLIMATOLOGY_FORMAT, MIN_CLASS_FREQUENCY,
              MIN_WIND_SPEED_M_S, REFERENCE_HEIGHT_M, SECTORS, URBAN_ROUGHNESS_M, MET_DATA_DIR)
