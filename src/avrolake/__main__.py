"""``python -m avrolake`` runs the ``avrolake`` console script."""

from avrolake.cli import main

main()  # raises SystemExit with the exit code on failure
