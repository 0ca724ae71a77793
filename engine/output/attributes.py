"""The global attributes of a national run's NetCDF files (``concentration.nc``, ``city_fields.nc``,
``sr_matrix.nc``): what the numbers are, how they were made, and from which configuration."""

from __future__ import annotations

import json
import time

from engine.output.persist import versions

__all__ = ["run_global_attrs"]

#: what each ``[dispersion] source_set`` lets a city see ({reach} in km)
_SOURCE_SETS = {"own": "each city sees its own and its rest-of-province emissions",
                "province": "each city sees its own, the other cities of its province and its rest of province",
                "nation": "each city sees every city and rest of province within {reach:g} km (square half side)"}


def run_global_attrs(source_set, source_reach_km, met_specs, config):
    """Global attributes (dict of str/int) of a run's NetCDF files.

    Parameters
    ----------
    source_set : {"own", "province", "nation"}
    source_reach_km : float   [km], the reach of ``"nation"``
    met_specs : iterable of the cities' met specifications (``describe()`` and ``kind``)
    config : dict   the run's configuration (:func:`engine.config.config_to_dict`)
    """
    specs = list(met_specs)
    v = versions()
    return {
        "title": "Annual-mean primary PM2.5 from city and rest-of-province emissions, by scenario",
        "institution": "cobenefits engine",
        "source": f"cobenefits {v.get('cobenefits', '')}: Gaussian-plume (AERMOD-style) transfer "
                  "kernels convolved with uniform area emission intensities (Ramaswami et al. 2017 method)",
        "history": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} cobenefits run",
        "references": "Ramaswami et al. 2017, Nature Climate Change 7:736; Cimorelli et al. 2005, J. Appl. Meteor. 44:682",
        "comment": (f"primary PM2.5 only (no secondary aerosol); source_set = '{source_set}': "
                    + _SOURCE_SETS[source_set].format(reach=source_reach_km)
                    + "; footprints are discs of the real areas unless polygons were given"),
        "met": "; ".join(sorted({s.describe() for s in specs})),
        "met_is_default_climatology": int(all(s.kind == "aermet_climatology" for s in specs)),
        "met_is_builtin_climatology": int(all(s.kind in ("default", "aermet_climatology") for s in specs)),
        "cobenefits_config": json.dumps(config),
        "cobenefits_versions": json.dumps(v),
    }
