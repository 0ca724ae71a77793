"""Health parameters: age groups, causes, the named concentration-response parameter tables
(:data:`CRF_PARAMETERS`, one per published model) and the embedded data they are read from."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from engine.constants import CRF_NAMES
from engine.errors import InputError
from kernels import crf as _k

__all__ = ["AGE_GROUPS", "AGE_LOWER", "POPULATION_COLUMNS", "CAUSES", "CAUSE_LONG_NAMES", "USER_FORMS",
           "USER_FUNCTION_REQUIRED", "USER_FUNCTION_OPTIONAL", "BENMAP_PERCENTILES", "COHORTS", "AVOIDED_METHODS",
           "CRF_NAMES", "CRF_PARAMETERS", "data_path", "read_health_table", "check_choice", "age_index"]

#: the 17 age groups of the population and rate tables
AGE_GROUPS = ("0_4", "5_9", "10_14", "15_19", "20_24", "25_29", "30_34", "35_39", "40_44",
              "45_49", "50_54", "55_59", "60_64", "65_69", "70_74", "75_79", "80plus")
AGE_LOWER = tuple(5 * i for i in range(17))
POPULATION_COLUMNS = tuple(f"pop_{g}" for g in AGE_GROUPS)
#: causes of death known to the engine (rates file names)
CAUSES = ("ihd", "stroke", "copd", "lc", "lri", "ncd_lri")
CAUSE_LONG_NAMES = {
    "ihd": "ischaemic heart disease", "stroke": "stroke",
    "copd": "chronic obstructive pulmonary disease", "lc": "lung cancer",
    "lri": "lower respiratory infections",
    "ncd_lri": "non-communicable diseases and lower respiratory infections",
}
#: forms of user-defined functions (BenMAP-CE function forms, kernels.crf)
USER_FORMS = {"log_linear": _k.FORM_LOGLINEAR, "log_log": _k.FORM_LOGLOG, "linear": _k.FORM_LINEAR}
#: columns of a user-defined functions file (required first, then optional)
USER_FUNCTION_REQUIRED = ("form", "cause", "beta", "beta_se", "min_age")
USER_FUNCTION_OPTIONAL = ("function", "max_age", "zcf", "incidence_per_100k")
#: the percentiles of the BenMAP-style table: BenMAP's 20 (2.5, 7.5, ..., 97.5)
BENMAP_PERCENTILES = tuple(2.5 + 5.0 * i for i in range(20))
COHORTS = ("with_china", "without_china")
AVOIDED_METHODS = ("subtraction", "pif")


def data_path(*parts):
    """Path of a file in the embedded data set (engine/data)."""
    return Path(str(resources.files("engine").joinpath("data", *parts)))


#: named parameter tables, one per published model: name -> (file under engine/data/health, description)
CRF_PARAMETERS = {
    "ier2010": ("ier_draws_gbd2010.csv",
                "IER, Burnett et al. 2014 EHP 122:397; 1000 GBD 2010 parameter draws per cause x age"),
    "gemm_ncd_lri": ("gemm_params_2018.csv",
                     "GEMM NCD+LRI, Burnett et al. 2018 PNAS 115:9592; theta ~ Normal(theta, SE)"),
    "gemm_5cod": ("gemm_params_2018.csv",
                  "GEMM 5 causes (IHD, stroke, COPD, LC, LRI), Burnett et al. 2018; theta ~ Normal(theta, SE)"),
    "loglinear_krewski2009": ("loglinear_params.csv",
                              "log-linear, Krewski et al. 2009 ACS all-cause (BenMAP form), ages 30+; "
                              "beta ~ Normal(beta, SE)"),
    "user": ("", "user-defined functions (BenMAP-CE forms log-linear, log-log, linear); beta ~ Normal(beta, SE)"),
}

_CACHE = {}


def read_health_table(name):
    """The parameter table ``name`` of engine/data/health as a DataFrame (read once per process)."""
    if name not in _CACHE:
        _CACHE[name] = pd.read_csv(data_path("health", name), comment="#",
                                   dtype={"age": str, "age_group": str})
    return _CACHE[name]


def check_choice(name, value, choices):
    """:class:`InputError` unless ``value`` is one of ``choices`` (the message lists them)."""
    if value not in choices:
        raise InputError(f"{name} = {value!r} is not one of {', '.join(map(repr, choices))}")


def age_index(lower_age):
    """Index into :data:`AGE_GROUPS` of the group starting at ``lower_age`` [years]."""
    return AGE_LOWER.index(lower_age)
