"""Marginal damages, co-benefit intensities of city actions and targeted adoption (issue 20).

Owns: deaths per kt of primary PM2.5 by source, deaths avoided per Mt CO2 by (place, action),
the allocation that avoids the most deaths at a given CO2 cut. May import :mod:`engine.pipeline`
and below (the sensitivity/report layer of the import rule).
"""

from engine.marginal.damages import marginal_damages
from engine.marginal.intensity import cobenefit_intensity
from engine.marginal.targeting import solve_allocation, target

__all__ = ["marginal_damages", "cobenefit_intensity", "target", "solve_allocation"]
