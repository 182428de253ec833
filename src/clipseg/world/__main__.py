"""`python -m clipseg.world`: the same commands as `clipseg world` (see `clipseg.cli.world`)."""

from __future__ import annotations

import sys

from ..cli.world import main

if __name__ == "__main__":
    sys.exit(main())
