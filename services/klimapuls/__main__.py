"""`python -m klimapuls` is the `klimapuls` command."""

from klimapuls.cli import main

if __name__ == "__main__":
    main()
