"""``python -m cno``: the command line of :mod:`cno.cli`."""
import sys

from cno.cli import main

if __name__ == "__main__":
    sys.exit(main())
