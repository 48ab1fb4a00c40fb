"""`python -m klimapuls` and the `klimapuls` command.

The command's modules load inside `main`: a Ctrl-C while they load (most of
a second on a busy machine) gets the line any other Ctrl-C gets, not a
traceback from deep inside an import.
"""

import sys


def main() -> None:
    """Load the command line and run it."""
    try:
        from klimapuls.cli import main as run
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)
        sys.exit(1)
    run()


if __name__ == "__main__":
    main()
