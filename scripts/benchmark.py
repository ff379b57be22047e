"""Native batched env vs SyncVectorEnv: ``python scripts/benchmark.py ENV_ID [rlsuite bench options]``."""

import sys

from rlsuite.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
