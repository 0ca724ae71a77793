"""cobenefits engine: orchestration, physics wrappers, data, I/O and the command line."""

__version__ = "0.1.0"
