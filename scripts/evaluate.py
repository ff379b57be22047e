"""Evaluate a run or checkpoint: ``python scripts/evaluate.py RUN_DIR [rlsuite eval options]``."""

import sys

from rlsuite.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
