"""`python -m pipeline.cli`: the candlebench command line."""

import sys

from pipeline.cli import main

sys.exit(main())
