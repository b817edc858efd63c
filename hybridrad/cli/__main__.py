"""``python -m hybridrad.cli`` runs the command line (as ``python -m hybridrad`` does)."""

import sys

from hybridrad.cli.main import main

sys.exit(main())
