"""``python -m cnnbench``: the same command line as the ``cnnbench`` script."""

from cnnbench.cli import entry

entry()
