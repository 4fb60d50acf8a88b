"""``python -m qa.cli``: the same as the ``qa`` command."""

import sys

from qa.cli import main

sys.exit(main())
