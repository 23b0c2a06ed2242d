"""``python -m prefloop``: the ``prefloop`` command."""

from prefloop.cli import main

main()
