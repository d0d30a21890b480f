"""``python -m core.cli``: the ``facemask`` command."""

import sys

from core.cli import main

sys.exit(main())
