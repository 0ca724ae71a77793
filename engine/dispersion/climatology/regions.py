"""Default climate regions of China and the province -> region table.

Each :class:`ClimateRegion` carries the representative annual-mean wind, latitude, temperature,
daytime mixing height, cloudiness and wind rose from which the built-in climatologies
(:mod:`.golder`, :mod:`.aermet`) are constructed; :func:`climate_region_of` assigns a province.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InputError

__all__ = ["ClimateRegion", "CLIMATE_REGIONS", "PROVINCE_REGION", "climate_region_of"]

@dataclass(frozen=True)
class ClimateRegion:
    """Parameters of one default climate region (basis in :data:`CLIMATE_REGIONS`' comments).

    Attributes
    ----------
    mean_wind_m_s : annual-mean 10-m wind speed [m s-1]
    latitude_deg : representative latitude for the solar elevation statistics [deg]
    temperature_k : annual-mean near-surface air temperature [K]
    daytime_mixing_height_m : mean daytime convective boundary-layer height [m]
    overcast_fraction : share of hours that are overcast (class D) [1]
    cloudy_fraction : share of the other hours with >= 4/8 cloud [1]
    rose : ((from_deg, weight), ...) von Mises components; the remaining weight is uniform
    """

    name: str
    mean_wind_m_s: float
    latitude_deg: float
    temperature_k: float
    daytime_mixing_height_m: float
    overcast_fraction: float
    cloudy_fraction: float
    rose: tuple


# Basis (all values rounded, representative, NOT fitted to station data):
# * annual-mean 10-m wind speeds: China's station mean was ~2.4 m/s over 1969-2005, highest in
#   the north-east, Inner Mongolia/north-west and on the Tibetan Plateau and lowest in the
#   Sichuan Basin and the south-west valleys (Guo, Xu & Hu 2011, Int. J. Climatol. 31:349);
# * daytime boundary-layer heights: deepest over the arid north-west and the Plateau, shallow in
#   the humid south-east and shallowest in the Sichuan Basin (Guo et al. 2016, Atmos. Chem.
#   Phys. 16:13309, radiosonde climatology);
# * cloudiness: the Sichuan Basin and Guizhou are the cloudiest parts of China, the arid
#   north-west the clearest (national cloud-cover climatologies);
# * prevailing directions: the East Asian monsoon - northerly/north-westerly winter winds and
#   southerly/south-easterly summer winds in the east, westerlies in the north-west and on the
#   Plateau, the south-west monsoon in Yunnan;
# * annual-mean temperatures: rounded regional means of the Chinese climate normals.
CLIMATE_REGIONS = {
    "northeast": ClimateRegion("northeast", 3.0, 45.0, 278.0, 1100.0, 0.20, 0.45,
                               ((315.0, 0.35), (225.0, 0.40))),
    "north_china": ClimateRegion("north_china", 2.3, 37.0, 286.0, 1000.0, 0.20, 0.45,
                                 ((340.0, 0.35), (190.0, 0.35))),
    "northwest": ClimateRegion("northwest", 2.6, 40.0, 282.0, 1400.0, 0.12, 0.35,
                               ((300.0, 0.45), (100.0, 0.20))),
    "tibetan_plateau": ClimateRegion("tibetan_plateau", 3.0, 33.0, 276.0, 1400.0, 0.20, 0.45,
                                     ((260.0, 0.50), (80.0, 0.20))),
    "yangtze": ClimateRegion("yangtze", 2.4, 30.0, 290.0, 900.0, 0.35, 0.50,
                             ((330.0, 0.30), (135.0, 0.35))),
    "south": ClimateRegion("south", 2.2, 24.0, 294.0, 900.0, 0.35, 0.50,
                           ((30.0, 0.40), (200.0, 0.30))),
    "sichuan_basin": ClimateRegion("sichuan_basin", 1.3, 29.0, 289.0, 700.0, 0.50, 0.55,
                                   ((20.0, 0.35), (190.0, 0.20))),
    "yunnan_plateau": ClimateRegion("yunnan_plateau", 2.2, 25.0, 289.0, 1100.0, 0.25, 0.45,
                                    ((225.0, 0.50), (45.0, 0.10))),
}

#: province code (first two digits of the 2010 admin code) -> climate region
PROVINCE_REGION = {
    11: "north_china", 12: "north_china", 13: "north_china", 14: "north_china",
    15: "northwest", 21: "northeast", 22: "northeast", 23: "northeast",
    31: "yangtze", 32: "yangtze", 33: "yangtze", 34: "yangtze", 35: "south", 36: "yangtze",
    37: "north_china", 41: "north_china", 42: "yangtze", 43: "yangtze", 44: "south",
    45: "south", 46: "south", 50: "sichuan_basin", 51: "sichuan_basin", 52: "sichuan_basin",
    53: "yunnan_plateau", 54: "tibetan_plateau", 61: "northwest", 62: "northwest",
    63: "tibetan_plateau", 64: "northwest", 65: "northwest",
}


def climate_region_of(province_id):
    """Climate region name of a province (2010 admin code, e.g. 510000 -> 'sichuan_basin')."""
    pid = int(province_id)
    key = pid // 10000 if pid >= 10000 else pid
    try:
        return PROVINCE_REGION[key]
    except KeyError:
        raise InputError(f"province {province_id} has no default climate region "
                         f"(known province codes: {', '.join(str(k) for k in sorted(PROVINCE_REGION))}); "
                         "give [met] sfc_file/pfl_file or star_file") from None
