"""``python -m avrolake`` runs the ``avrolake`` console script."""

import sys

from avrolake.cli import main

sys.exit(main())
