"""``python -m bayesqcd.cli``: the same as the ``bayesqcd`` command."""

import sys

from bayesqcd.cli import main

sys.exit(main())
