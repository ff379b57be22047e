"""Instance extraction from traced torch programs, checked against an independent count.

The independent count runs the same traced graph eagerly on real CPU tensors through
``torch.fx.Interpreter`` (which frees each value after its last use) under a
``TorchDispatchMode`` that watches every storage the program allocates: the number of distinct
storages and the peak of their live bytes must equal the extraction's buffers and peak.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

try:
    from rlsuite.envs.malloc import extraction as ex
except ModuleNotFoundError:  # the extraction venv (torch + torchvision) lacks rlsuite's deps
    _path = Path(__file__).resolve().parents[3] / "envs" / "malloc" / "extraction.py"
    _spec = importlib.util.spec_from_file_location("malloc_extraction", _path)
    assert _spec is not None and _spec.loader is not None
    ex = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = ex
    _spec.loader.exec_module(ex)

DATA = Path(__file__).resolve().parents[3] / "envs" / "malloc" / "data"


# -- the independent count ---------------------------------------------------------------------
class _StorageWatcher(TorchDispatchMode):
    """Records every storage that ops return and samples live bytes after each op."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[StorageWeakRef, int] = {}
        self.peak = 0

    def track(self, tensor: torch.Tensor) -> None:
        key = StorageWeakRef(tensor.untyped_storage())
        nbytes = tensor.untyped_storage().nbytes()
        if key not in self.sizes and nbytes > 0:
            self.sizes[key] = nbytes

    def sample(self) -> None:
        live = sum(n for key, n in self.sizes.items() if not key.expired())
        self.peak = max(self.peak, live)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for leaf in tree_flatten(out)[0]:
            if isinstance(leaf, torch.Tensor):
                self.track(leaf)
        self.sample()
        return out


class _FreeingInterpreter(torch.fx.Interpreter):
    """Owns its inputs (popped as placeholders run) and drops values nobody reads at once, so
    every storage dies right after its last reader, as the extraction assumes."""

    def __init__(self, gm: torch.fx.GraphModule, inputs: list[Any], watcher: _StorageWatcher):
        super().__init__(gm, garbage_collect_values=True)
        self.inputs = inputs
        self.watcher = watcher

    def placeholder(self, target, args, kwargs):  # type: ignore[no-untyped-def]
        return self.inputs.pop(0)

    def run_node(self, n: torch.fx.Node) -> Any:
        value = super().run_node(n)
        if n.op == "placeholder" and n.users:  # an input nobody reads is no buffer
            self.watcher.track(value)
        return None if not n.users and n.op != "output" else value


def eager_count(traced: ex.TracedProgram) -> tuple[int, int]:
    """(distinct storages, peak live bytes) of running ``traced`` eagerly on real tensors."""
    inputs = [t.detach().clone() for t in traced.inputs]
    watcher = _StorageWatcher()
    interp = _FreeingInterpreter(traced.graph_module, inputs, watcher)
    with torch.no_grad(), watcher:
        outputs = interp.run(enable_io_processing=False)
    watcher.sample()
    del outputs
    return len(watcher.sizes), watcher.peak


def _read_instance(csv_path: Path) -> tuple[list[tuple[int, int, int, int, list]], dict]:
    rows = []
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            size = int(row["size"])
            uses = []
            for entry in row["uses"].split(";"):
                op, _, moved = entry.partition(":")
                uses.append((int(op), int(moved) if moved else size))
            rows.append((int(row["id"]), int(row["lower"]), int(row["upper"]), size, uses))
    return rows, json.loads(csv_path.with_suffix(".json").read_text())


def check_consistent(inst: ex.MemoryInstance) -> None:
    """Ids, live ranges and uses obey the format's conventions."""
    T = inst.num_ops
    assert [b.id for b in inst.buffers] == list(range(len(inst.buffers)))
    assert [b.lower for b in inst.buffers] == sorted(b.lower for b in inst.buffers)
    assert len(inst.op_flops) == T and all(f >= 0 for f in inst.op_flops)
    for b in inst.buffers:
        ops = [op for op, _ in b.uses]
        assert b.size > 0 and ops, b
        assert ops == sorted(set(ops)), b
        assert all(moved > 0 for _, moved in b.uses), b
        assert b.lower <= ops[0] and ops[-1] < b.upper <= T, b
        assert b.lower == 0 or ops[0] == b.lower, b  # a produced buffer is used by its producer
        assert b.upper == T or b.upper - 1 == ops[-1], b  # outputs live to the end


# -- tiny models -------------------------------------------------------------------------------
def _convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 5),
    )


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 3)
    )


CASES = [(_convnet, (2, 3, 8, 8)), (_mlp, (4, 12))]


def _step_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    model.train()
    x = torch.randn(shape)
    params = list(model.parameters())
    with FlopCounterMode(display=False) as counter:
        logits = model(x)
        y = torch.randint(0, logits.shape[1], (shape[0],))
        torch.autograd.grad(nn.functional.cross_entropy(logits, y), params)
    return counter.get_total_flops()


@pytest.mark.parametrize(("make", "shape"), CASES, ids=["convnet", "mlp"])
def test_training_step_matches_eager_storage_count(make, shape) -> None:
    model = make()
    traced = ex.trace_training_step(model, shape)
    inst = ex.extract_instance(traced.graph_module, name="tiny")
    check_consistent(inst)
    count, peak = eager_count(traced)
    assert len(inst.buffers) == count
    assert inst.peak_live_bytes() == peak
    assert inst.total_flops == _step_flops(make(), shape)
    # the loss and one gradient per parameter live to the end
    outputs = [b for b in inst.buffers if b.upper == inst.num_ops and b.uses[-1][0] < b.upper - 1]
    assert len(outputs) >= 1
    assert len([b for b in inst.buffers if b.upper == inst.num_ops]) >= 1 + len(
        list(model.parameters())
    )


def test_views_fold_into_their_base() -> None:
    inst = ex.extract_model(_mlp(), (4, 12), name="mlp")
    assert not any(
        name.split(".")[1] in {"t", "view", "detach", "expand"} for name in inst.op_names
    )
    assert "aten.addmm.default" in inst.op_names
    # the first weight (32 x 12 floats) is read by addmm (through t) and by the input-grad mm
    weight = next(b for b in inst.buffers if b.size == 32 * 12 * 4 and b.lower == 0)
    assert len(weight.uses) >= 1


def test_inference_graph_via_export() -> None:
    model = _convnet()
    traced = ex.trace_inference(model, (2, 3, 8, 8))
    inst = ex.extract_instance(traced.graph_module, name="tiny-inference")
    check_consistent(inst)
    count, peak = eager_count(traced)
    assert len(inst.buffers) == count
    assert inst.peak_live_bytes() == peak
    assert inst.op_names[0] == "aten.convolution.default"
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 3, 8, 8))
    assert inst.total_flops == counter.get_total_flops()


def test_depthwise_conv_backward_costs_twice_its_forward() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 4),
    )
    inst = ex.extract_model(model, (2, 3, 6, 6))
    fwd = [
        f
        for n, f in zip(inst.op_names, inst.op_flops, strict=True)
        if n == "aten.convolution.default"
    ]
    bwd = [
        f
        for n, f in zip(inst.op_names, inst.op_flops, strict=True)
        if n.startswith("aten.convolution_b")
    ]
    # backward runs last layer first; the first layer's input needs no gradient
    assert bwd == [2 * fwd[1], fwd[0]]


def test_writer_round_trip(tmp_path: Path) -> None:
    inst = ex.extract_model(_convnet(), (2, 3, 8, 8), name="tiny-train", source={"model": "tiny"})
    csv_path, _json = ex.write_instance(inst, tmp_path)
    assert csv_path.read_text().splitlines()[0] == "id,lower,upper,size,uses"
    rows, meta = _read_instance(csv_path)
    assert rows == [(b.id, b.lower, b.upper, b.size, list(b.uses)) for b in inst.buffers]
    assert meta["format"] == "rlsuite-malloc/1" and meta["name"] == "tiny-train"
    assert meta["num_ops"] == inst.num_ops == len(meta["op_flops"]) == len(meta["op_names"])
    assert meta["op_flops"] == list(inst.op_flops)
    assert meta["source"]["model"] == "tiny" and meta["source"]["mode"] == "train"
    assert meta["source"]["tracer"] == "make_fx" and meta["source"]["dtype"] == "float32"


def test_written_files_load_as_game_instances(tmp_path: Path) -> None:
    """The extraction's writer and the games' loader agree on the format (checked benefits and
    all), though the writer must run without rlsuite's dependencies."""
    instances = pytest.importorskip("rlsuite.envs.malloc.instances")
    assert ex.FORMAT == instances.FORMAT
    inst = ex.extract_model(_convnet(), (2, 3, 8, 8), name="tiny-train", source={"model": "tiny"})
    csv_path, _ = ex.write_instance(inst, tmp_path)
    loaded = instances.load_instance(csv_path)
    assert loaded.num_buffers == len(inst.buffers) and loaded.num_ops == inst.num_ops
    assert loaded.op_flops.tolist() == list(inst.op_flops)


def test_partial_access_is_written_with_bytes() -> None:
    buf = ex.Buffer(id=1, lower=1, upper=4, size=8192, uses=((1, 4096), (2, 8192), (3, 8192)))
    assert ex.format_uses(buf) == "1:4096;2;3"


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="mode must be 'train' or 'inference'"):
        ex.extract_model(_mlp(), (4, 12), mode="eval")
    with pytest.raises(ValueError, match="GraphModule"):
        ex.extract_instance(_mlp())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_shape"):
        ex.trace_training_step(_mlp(), (0, 12))
    with pytest.raises(ValueError, match="instance name"):
        ex.write_instance(ex.MemoryInstance("a/b", (), (), ()), "/tmp")


# -- torchvision (run in the extraction venv: python -m pytest -m slow ...) ---------------------
@pytest.mark.slow
def test_resnet18_training_step_matches_eager() -> None:
    torchvision = pytest.importorskip("torchvision")
    shape = (8, 3, 224, 224)
    make = lambda: torchvision.models.resnet18(weights=None)  # noqa: E731
    traced = ex.trace_training_step(make(), shape)
    inst = ex.extract_instance(traced.graph_module, name="resnet18")
    check_consistent(inst)
    count, peak = eager_count(traced)
    assert len(inst.buffers) == count
    assert inst.peak_live_bytes() == peak
    torch.manual_seed(0)
    assert inst.total_flops == _step_flops(make(), shape)


SHIPPED_TRAIN = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "efficientnet_b0",
    "vit_b_16",
    "squeezenet1_1",
    "shufflenet_v2_x1_0",
    "regnet_y_400mf",
    "mnasnet1_0",
    "vgg11",
    "resnext50_32x4d",
    "convnext_tiny",
    "densenet121",
    "swin_t",
]
SHIPPED_INFERENCE = ["googlenet", "densenet121", "convnext_tiny", "swin_t"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "mode"),
    [(m, "train") for m in SHIPPED_TRAIN] + [(m, "inference") for m in SHIPPED_INFERENCE],
)
def test_shipped_instance_matches_re_extraction(model: str, mode: str) -> None:
    torchvision = pytest.importorskip("torchvision")
    name = f"{model}-{mode}-b8-r224"
    csv_path = DATA / f"{name}.csv"
    assert csv_path.exists(), f"{name} should ship in envs/malloc/data"
    rows, meta = _read_instance(csv_path)
    inst = ex.extract_model(
        getattr(torchvision.models, model)(weights=None), (8, 3, 224, 224), mode=mode
    )
    assert meta["name"] == name and meta["num_ops"] == inst.num_ops
    assert meta["op_names"] == list(inst.op_names) and meta["op_flops"] == list(inst.op_flops)
    assert rows == [(b.id, b.lower, b.upper, b.size, list(b.uses)) for b in inst.buffers]
    assert meta["source"]["model"] == model and meta["source"]["batch_size"] == 8
    assert meta["source"]["mode"] == mode


def test_every_shipped_file_is_re_extracted() -> None:
    """The list above covers every shipped instance (so the slow check misses none)."""
    shipped = sorted(p.stem for p in DATA.glob("*.csv"))
    listed = [f"{m}-train-b8-r224" for m in SHIPPED_TRAIN]
    listed += [f"{m}-inference-b8-r224" for m in SHIPPED_INFERENCE]
    assert shipped == sorted(listed)
