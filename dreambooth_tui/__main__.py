"""`python -m dreambooth_tui`: the same as the `dreambooth-tui` console script."""

import sys

from dreambooth_tui import main

if __name__ == "__main__":
    sys.exit(main())
