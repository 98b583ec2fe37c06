"""``python -m verifiers`` is the same as ``python -m verifiers.run``."""

import sys

from verifiers.run import main

sys.exit(main())
