"""Health: concentration-response functions, baseline rates and population, attributable and
avoided deaths with uncertainty over draws.

Modules: :mod:`.parameters` (age groups, causes, the named parameter tables), :mod:`.inputs`
(readers and validators: rates, user functions, background, exposure table, census ages),
:mod:`.curves` (:class:`CurveSet` of each function, relative risks), :mod:`.impact`
(:func:`health_impact`, national totals and result tables). The public API is re-exported here.

May import: :mod:`engine.output`, :mod:`engine.data`, :mod:`engine.config`, the floor modules and
:mod:`kernels`; never carbon or dispersion.
"""

from .curves import CurveSet, curve_set, relative_risk
from .impact import benmap_table, health_impact, impact_table, national_totals, rates_matrix
from .inputs import (PM25_PLAUSIBLE_MAX_UG_M3, UserFunction, age_population, load_rates, population_matrix,
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
    "BENMAP_PERCENTILES", "PM25_PLAUSIBLE_MAX_UG_M3",
]
