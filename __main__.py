"""`python -m extes`: the same command line as `extes` (the recipe runs its stages this way)."""

from extes.cli import main

if __name__ == "__main__":
    main()
