"""Extract a mallocGame instance from a torchvision model: ``python scripts/extract_malloc_instance.py
MODEL --batch-size 8 --resolution 224 --mode train|inference --out DIR [--name NAME]``.

Builds ``torchvision.models.MODEL(weights=None)`` (random weights: nothing is downloaded), traces
a training step (``make_fx``, fake tensors) or the inference forward pass (``torch.export``),
writes ``DIR/NAME.csv`` and ``DIR/NAME.json`` (see ``rlsuite.envs.malloc.extraction``) and prints
``NAME: N buffers, T ops, peak live P bytes``. Run it in the extraction environment, which pairs
torch with a matching torchvision (``pip install torch==2.14.1 torchvision==0.29.1``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

INSTALL_HINT = "install the extraction environment: pip install torch==2.14.1 torchvision==0.29.1"


def _load_extraction() -> ModuleType:
    """``rlsuite.envs.malloc.extraction``, or the same file loaded directly where rlsuite's own
    dependencies (gymnasium, ...) are not installed, as in the extraction environment."""
    try:
        from rlsuite.envs.malloc import extraction

        return extraction
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parents[1] / "envs" / "malloc" / "extraction.py"
        spec = importlib.util.spec_from_file_location("malloc_extraction", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load the extraction module from {path}") from None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, extract one instance, write its files and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a torchvision.models constructor, e.g. resnet18")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=224, help="input height = width")
    parser.add_argument("--mode", choices=("train", "inference"), default="train")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--name", help="file stem (default MODEL-MODE-bB-rR)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.resolution < 1:
        parser.error(
            f"--batch-size and --resolution must be >= 1, got {args.batch_size} and "
            f"{args.resolution}"
        )
    try:
        import torchvision
    except ImportError as err:
        raise SystemExit(f"torchvision is not importable ({err}); {INSTALL_HINT}") from None
    models = sorted(torchvision.models.list_models(module=torchvision.models))
    if args.model not in models:
        parser.error(f"unknown model {args.model!r}; torchvision.models has: {', '.join(models)}")
    constructor = getattr(torchvision.models, args.model)

    extraction = _load_extraction()
    name = args.name or f"{args.model}-{args.mode}-b{args.batch_size}-r{args.resolution}"
    source = {
        "model": args.model,
        "mode": args.mode,
        "batch_size": args.batch_size,
        "resolution": args.resolution,
        "torchvision": torchvision.__version__,
    }
    instance = extraction.extract_model(
        constructor(weights=None),
        (args.batch_size, 3, args.resolution, args.resolution),
        mode=args.mode,
        name=name,
        source=source,
    )
    extraction.write_instance(instance, args.out)
    print(
        f"{name}: {len(instance.buffers)} buffers, {instance.num_ops} ops, "
        f"peak live {instance.peak_live_bytes()} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
