"""``python -m ase_crystalgen``: the ``crystalgen`` command line."""

import sys

from .cli import main

sys.exit(main())
