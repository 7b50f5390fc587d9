"""``python -m capsim``: the ``capsim`` command."""
import sys

from capsim.cli import main

sys.exit(main())
