"""``python -m prefloop.cli``: the ``prefloop`` command."""

from prefloop.cli import main

main()
