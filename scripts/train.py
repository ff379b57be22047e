"""Train an agent from a config: ``python scripts/train.py CONFIG.yaml [rlsuite train options]``."""

import sys

from rlsuite.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
