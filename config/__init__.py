"""Scenario configurations shipped with cobenefits (installed as ``engine.scenarios``)."""
