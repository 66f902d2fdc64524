"""``python -m keyless`` runs the command line."""

from keyless.cli import main

main()
