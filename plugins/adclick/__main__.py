"""``python -m adclick``: see :mod:`adclick.cli`."""

import sys

from adclick.cli import main

sys.exit(main())
