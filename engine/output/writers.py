"""Output writers, one import for the callers: the table and text writers (:mod:`.tables`), the
NetCDF writers (:mod:`.netcdf`) and the atomic-file primitives and provenance of
:mod:`.persist`. Every file is written atomically: to a temporary name in the same folder,
flushed, then renamed over the target, so an interrupted run never leaves a half-written file
that looks complete."""

from engine.output.netcdf import (CONVENTIONS, PM25_STANDARD_NAME, STANDARD_NAME_VOCABULARY, UNIT_RESPONSE_UNITS,
                                  city_met, crs_wkt_aeqd, crs_wkt_latlon, open_city, write_city_fields_netcdf,
                                  write_city_netcdf, write_concentration_netcdf, write_sr_dataset_netcdf,
                                  write_sr_matrix_netcdf)
from engine.output.attributes import run_global_attrs
from engine.output.persist import atomic_path, versions, write_json
from engine.output.tables import round_significant, write_csv, write_text

__all__ = ["atomic_path", "run_global_attrs", "write_csv", "write_json", "write_text", "write_concentration_netcdf", "versions",
           "write_city_netcdf", "write_city_fields_netcdf", "write_sr_matrix_netcdf", "write_sr_dataset_netcdf",
           "open_city",
           "crs_wkt_latlon", "crs_wkt_aeqd", "round_significant", "PM25_STANDARD_NAME", "UNIT_RESPONSE_UNITS",
           "CONVENTIONS", "STANDARD_NAME_VOCABULARY"]

