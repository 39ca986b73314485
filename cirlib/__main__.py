"""``python -m cirlib ...`` (and ``torchrun -m cirlib ...``): the same as the ``cirlib`` command."""

import sys

from cirlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
