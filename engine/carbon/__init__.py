"""Carbon front stage: efficiency, energy cascading, material exchange, grid pooling.

``run_carbon(cfg, data)`` evaluates every scenario of a configuration on a data set.
"""

from engine.carbon.accounting import CarbonResult, evaluate, prepare, run_carbon

__all__ = ["run_carbon", "CarbonResult", "evaluate", "prepare"]
