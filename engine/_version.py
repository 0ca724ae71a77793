"""The package version, at the floor of the import graph (any module may import it)."""

__version__ = "0.1.0"
