"""``python -m hybridrad`` runs the command line."""

import sys

from hybridrad.cli import main

sys.exit(main())
