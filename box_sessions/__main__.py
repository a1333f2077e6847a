"""``python -m box_sessions``: the same as the ``box-sessions`` command."""

import sys

from ._cli import main

sys.exit(main())
