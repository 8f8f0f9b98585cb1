"""`python -m tide.model DIR [--seed N]`: build the tiny demo model into DIR."""

import sys

from tide.model.tiny import main

sys.exit(main())
