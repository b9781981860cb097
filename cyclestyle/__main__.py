"""``python -m cyclestyle``: the same program as the ``cyclestyle`` command (and the form that
``accelerate launch -m cyclestyle`` uses)."""

import sys

from .cli import main

sys.exit(main())
