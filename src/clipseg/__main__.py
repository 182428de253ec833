"""`python -m clipseg ...` (also under `torchrun ... -m clipseg train ...`): the `clipseg` command line."""

from .cli.main import main

if __name__ == "__main__":
    main()
