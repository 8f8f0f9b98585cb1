"""`python -m tide.engines.builtin --model-dir DIR --port 0 --served-model-name NAME ...`"""

import sys

from tide.engines.builtin.main import main

sys.exit(main())
