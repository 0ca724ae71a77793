"""Health: concentration-response functions, baseline rates and population, attributable and
avoided deaths with uncertainty over draws.

Modules: :mod:`.parameters` (age groups, causes, the named parameter tables), :mod:`.inputs`
(readers and validators: rates, user functions, background, exposure table, census ages),
:mod:`.checks` (plausibility of user functions and backgrounds), :mod:`.curves` (:class:`CurveSet` of each function, relative risks), :mod:`.impact`
(:func:`health_impact`, national totals and result tables). The public API is re-exported here.

May import: :mod:`engine.output`, :mod:`engine.data`, :mod:`engine.config`, the floor modules and
:mod:`kernels`; never carbon or dispersion.
"""

from .checks import BETA_MAX, MAX_INCIDENCE_PER_100K, check_background, check_user_function
from .curves import CurveSet, curve_set, relative_risk
from .impact import benmap_table, health_impact, impact_table, national_totals, rates_matrix
from .inputs import (PM25_PLAUSIBLE_MAX_UG_M3, UserFunction, age_population, check_health_config, load_rates, population_matrix,
                     read_background, read_exposure_table, read_rates, read_user_functions,
                     rest_of_province_population)
from .parameters import (AGE_GROUPS, AGE_LOWER, AVOIDED_METHODS, BENMAP_PERCENTILES, CAUSES, COHORTS, CRF_NAMES,
                         CRF_PARAMETERS, POPULATION_COLUMNS, USER_FORMS)

__all__ = [
    "AGE_GROUPS", "AGE_LOWER", "POPULATION_COLUMNS", "CAUSES", "CRF_NAMES", "COHORTS", "AVOIDED_METHODS",
    "CRF_PARAMETERS", "health_impact", "national_totals", "impact_table", "rates_matrix",
    "load_rates", "read_rates", "read_exposure_table", "age_population", "population_matrix",
    "rest_of_province_population", "relative_risk", "curve_set", "CurveSet",
    "USER_FORMS", "UserFunction", "read_user_functions", "read_background", "benmap_table",
    "BENMAP_PERCENTILES", "PM25_PLAUSIBLE_MAX_UG_M3", "check_background", "check_health_config",
    "check_user_function", "BETA_MAX", "MAX_INCIDENCE_PER_100K",
]
