"""`python -m server.cli` is the `proctor` command."""

import sys

from .main import main

sys.exit(main())
