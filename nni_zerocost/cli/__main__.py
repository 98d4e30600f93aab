"""``python -m nni_zerocost.cli``: the command line."""
import sys

from . import main

sys.exit(main())
