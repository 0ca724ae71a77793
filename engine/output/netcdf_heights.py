"""The emission-height matrices of ``sr_matrix.nc`` (``[dispersion] emission_heights = "sector"``).

``S_height(height, city, source)`` and, with seasonal met, ``S_season_height(season, height,
city, source)``, written by :func:`engine.output.netcdf.write_sr_matrix_netcdf` inside its
atomic write (docs/dispersion.md, "Emission heights").
"""

import numpy as np

__all__ = ["write_height_matrices"]


def write_height_matrices(ds, shape, height_matrices, season_height_matrices, aux, complevel, *, units,
                          set_attrs, char_var):
    """``S_height(height, city, source)`` and (seasonal met) ``S_season_height(season, height, city,
    source)`` of ``[dispersion] emission_heights = "sector"``, with the class names in ``height_name``;
    ``units``, ``set_attrs`` and ``char_var`` are the caller's (engine.output.netcdf) conventions."""
    names = list(height_matrices)
    ds.createDimension("height", len(names))
    hv = ds.createVariable("height", "i4", ("height",))
    hv[:] = np.arange(len(names), dtype=np.int32)
    set_attrs(hv, long_name="emission-height class index (name in height_name)", units="1")
    char_var(ds, "height_name", "height", names,
              "emission-height class (engine/data/stack_classes.csv; ground = [dispersion] release_height_m)")
    v = ds.createVariable("S_height", "f8", ("height", "city", "source"), zlib=True, complevel=complevel,
                          shuffle=True, fill_value=np.float64(-9999.0))
    set_attrs(v, long_name=("primary PM2.5 exposure of the receptor city per unit emission intensity of the "
                             "source released in the emission-height class, all year"),
               units=units, coordinates=" ".join(["time", "height_name"] + aux), cell_methods="time: mean",
               comment="a scenario's exposure is C = sum over classes of S_height @ (height_share * q); S is the "
                       "ground class")
    for j, k in enumerate(names):
        v[j] = np.asarray(height_matrices[k], dtype=float).reshape(shape)
    if season_height_matrices is not None:
        v = ds.createVariable("S_season_height", "f8", ("season", "height", "city", "source"), zlib=True,
                              complevel=complevel, shuffle=True, fill_value=np.float64(-9999.0))
        set_attrs(v, long_name=("primary PM2.5 exposure of the receptor city per unit emission intensity of the "
                                 "source, by season and emission-height class, times the season's calm coefficient"),
                   units=units, coordinates=" ".join(["time", "season_name", "height_name"] + aux),
                   cell_methods="time: mean",
                   comment="a scenario's annual-mean exposure is C = sum over seasons and classes of "
                           "S_season_height @ (season_height_share * q)")
        v[:] = np.asarray(season_height_matrices, dtype=float)
