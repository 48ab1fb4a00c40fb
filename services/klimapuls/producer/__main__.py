"""Produce a file of events: `python -m klimapuls.producer KIND FILE`."""

import sys

from klimapuls.cli import main

if __name__ == "__main__":
    main(["produce", *sys.argv[1:]])
