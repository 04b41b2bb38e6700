"""`python -m engine VERB ...`: what the app launches (the same verbs as `dreambooth-tui`)."""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
