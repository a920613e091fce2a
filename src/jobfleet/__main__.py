"""``python -m jobfleet`` is the ``jobfleet`` command."""

from jobfleet.cli.main import main

main()
