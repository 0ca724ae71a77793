"""Subcommands of the ``cobenefits`` command line, one module each."""
