"""Sensitivity sweeps: the sweep specification, sampling, chunked evaluation over samples and
the sensitivity indices.

May import: :mod:`engine.pipeline` and everything below it.
"""
