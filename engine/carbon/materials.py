"""Material exchange at the provincial scale (Ramaswami et al. 2017, Methods c; Table 2).

* Fly ash from coal power plants -> cement, beyond today's provincial reuse rate, up to a fly-ash
  mass share of ``fly_ash_saturation`` (35 %) of the province's cement:

  .. math:: A = \\min\\big(a G (1-r),\\; \\max(0, s_{fa} M_{cem} - r a G)\\big)

  with G the province's power coal [Mt], a fly ash per tonne of coal, r the reuse rate.
* Blast-furnace slag by dry granulation (none in 2010) -> cement, up to ``slag_saturation`` (25 %);
  the granulation heat gives ``slag_electricity_mwh_per_t`` of electricity per tonne of slag used.
* The cement displaced reduces cement production evenly across the province's places (paper
  Fig. 2 note), by the calibrated energy-displacement factor of each pathway.

``M`` is the place -> province one-hot matrix ``(P, R)``; arrays broadcast ``(..., S, P)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["material_exchange"]


def _to_prov(x, M):
    return x @ M


def material_exchange(power_coal_mt, cement_mt, pig_iron_mt, M, reuse_rate, params, *, enabled,
                      fly_ash_saturation, slag_saturation):
    """Cement displaced by fly ash and slag, per province and its effect on each place.

    Returns a dict: ``fly_ash_cement_mt`` and ``slag_cement_mt`` (…, S, R), ``cement_reduction``
    (…, S, P) fraction of each place's cement energy avoided, ``slag_electricity_twh`` (…, S, P)
    at the steel plants (by pig-iron share within the province).
    """
    p = params
    on = np.asarray(enabled, dtype=float)
    G = _to_prov(power_coal_mt, M)
    cem = _to_prov(np.broadcast_to(cement_mt, np.broadcast(power_coal_mt, cement_mt).shape), M)
    pig = pig_iron_mt @ M
    ash = p["fly_ash_t_per_t_coal"] * G
    fa_avail = ash * (1.0 - reuse_rate)
    fa_cap = np.maximum(fly_ash_saturation * cem - reuse_rate * ash, 0.0)
    fa = np.minimum(fa_avail, fa_cap) * on
    slag = p["slag_t_per_t_pig_iron"] * pig
    sl = np.minimum(slag, slag_saturation * cem) * on
    energy_avoided = fa * p["fly_ash_cement_energy_displacement"] + sl * p["slag_cement_energy_displacement"]
    red_prov = np.divide(energy_avoided, cem, out=np.zeros(np.broadcast(energy_avoided, cem).shape), where=cem > 0)
    red_prov = np.minimum(red_prov, 1.0)
    red_place = red_prov @ M.T
    pig_prov = pig @ M.T
    pig_share = np.divide(pig_iron_mt, pig_prov, out=np.zeros_like(pig_prov), where=pig_prov > 0)
    slag_used_place = (sl @ M.T) * pig_share
    return {
        "fly_ash_cement_mt": fa,
        "slag_cement_mt": sl,
        "cement_reduction": red_place,
        "slag_electricity_twh": slag_used_place * p["slag_electricity_mwh_per_t"],
        "slag_used_mt_place": slag_used_place,
    }
