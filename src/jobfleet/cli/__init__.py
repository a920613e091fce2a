"""The ``jobfleet`` command line (``jobfleet.cli.main:main``)."""

from jobfleet.cli.main import main

__all__ = ["main"]
