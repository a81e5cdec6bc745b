"""``python -m gamejax compare ...`` is the same as the ``gamejax`` console script."""

import sys

from gamejax.cli import main

sys.exit(main())
