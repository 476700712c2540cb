"""`python -m phonemekit COMMAND ...` (and the `phonemekit` script): see phonemekit.cli."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
