"""``python -m tfscorecam``: the command line."""

import sys

from tfscorecam.interfaces.cli import main

sys.exit(main())
