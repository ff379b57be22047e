"""Extract mallocGame memory-mapping instances from ML programs traced with torch.

The mallocGame (Wang et al., "Optimizing memory mapping using deep reinforcement learning",
DeepMind, arXiv 2305.07440) asks which buffers of a compiled program to place in a small, fast
memory. This module turns a traced torch program into such an instance.

**Programs.** A program is a :class:`torch.fx.GraphModule` whose nodes carry
``node.meta["val"]`` — the (fake) tensors each node produced while tracing — as made by
``make_fx(f, tracing_mode="fake")`` or by ``torch.export.export(...).run_decompositions()``
(either ``exported.graph_module`` or ``exported.module()``). :func:`trace_training_step` builds
a training step (forward, cross-entropy loss, backward with respect to the parameters) and
:func:`trace_inference` an inference forward pass of any ``nn.Module``.

**Schedule.** The operations are the graph's ``call_function`` nodes, in graph order, except

* views and aliases — any op whose every output aliases an input without writing it: detected
  from the op schema's alias annotations (``aten.view``, ``t``, ``transpose``, ``permute``,
  ``expand``, ``slice``, ``select``, ``as_strided``, ``alias``, ``detach``, ``unsqueeze``,
  ``squeeze``, ``split``/``unbind``, ...), from :data:`ALIAS_OPS` (``_unsafe_view`` returns a
  view but its schema says otherwise), and from the traced tensors themselves (an output that
  shares an input's storage);
* ``getitem`` nodes, which pick one output of a multi-output op;
* nodes that produce no tensor and write none (assertions, symbolic size queries).

Schedule time ``t ∈ [0, T)`` is the index of the ``t``-th operation.

**Buffers.** A buffer is one storage: every program input (placeholder or ``get_attr``:
parameters, running statistics, the input batch, the targets) and every fresh tensor output of
an operation (a multi-output op such as ``native_batch_norm`` or ``convolution_backward`` makes
one buffer per tensor output; ``None`` outputs make none). Views are folded into their base: a
view's readers are readers of the base, and an in-place op (``add_``) accesses the buffer it
writes. A buffer's ``size`` is its storage in bytes (``untyped_storage().nbytes()`` of the
traced tensor; ``numel * element_size`` for a fresh contiguous output). Empty storages are not
buffers, nor are inputs that no operation reads.

**Live ranges** are half-open, ``[lower, upper)``: a buffer made by op ``t`` has
``lower = t``; an input has ``lower = 0``. ``upper`` is one past the last op that accesses the
buffer, or ``T`` for the graph's outputs (the loss and the gradients of a training step), which
stay live to the end of the program. A buffer that nothing reads lives only during its producer.

**Uses** are the ops that access a buffer — its producer and every reader — ascending, each at
most once, with the bytes moved (a full-buffer access moves ``size`` bytes; an access through a
view moves the view's ``numel * element_size``, at most ``size``; an op that reads one buffer
through several arguments moves the sum).

**FLOPs** of each op come from :mod:`torch.utils.flop_counter`'s formulas (the ones
:class:`~torch.utils.flop_counter.FlopCounterMode` uses, applied to the traced shapes), plus
:data:`EXTRA_FLOP_FORMULAS` for the CPU fused-attention kernels it lacks; an op without a
formula (element-wise ops, reductions, normalisation) counts 0. One correction: for grouped
(depthwise) convolutions ``flop_counter``'s ``convolution_backward`` formula ignores ``groups``
and overcounts by about the channels per group, so there each gradient costs the forward's FLOPs.

**Files.** :func:`write_instance` writes ``NAME.csv`` (the MiniMalloc CSV format,
``id,lower,upper,size`` plus ``uses``, e.g. ``1,1,4,8192,1:4096;2;3``) and the sidecar
``NAME.json`` (``{"format": "rlsuite-malloc/1", "name", "num_ops", "op_flops", "op_names",
"source"}``). Ids are ``0..N-1`` in order of ``lower``, then of creation. Units: bytes, FLOPs,
schedule steps.
"""

from __future__ import annotations

import csv
import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils import flop_counter

FORMAT = "rlsuite-malloc/1"
"""The ``format`` field of the JSON sidecar."""

ALIAS_OPS: frozenset[str] = frozenset(
    {
        "aten._unsafe_view",
        "aten._reshape_alias",
        "aten.alias",
        "aten.lift_fresh",
    }
)
"""Op packets whose output is a view of their first input although their schema may not say so."""

_NON_OPS = frozenset({operator.getitem})


def _sdpa_cpu_flops(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    return int(flop_counter.sdpa_flop_count(query.shape, key.shape, value.shape))


def _sdpa_cpu_backward_flops(
    grad_out: Any, query: Any, key: Any, value: Any, *a: Any, **k: Any
) -> int:
    return int(
        flop_counter.sdpa_backward_flop_count(grad_out.shape, query.shape, key.shape, value.shape)
    )


EXTRA_FLOP_FORMULAS: dict[str, Callable[..., int]] = {
    "aten._scaled_dot_product_flash_attention_for_cpu": _sdpa_cpu_flops,
    "aten._scaled_dot_product_flash_attention_for_cpu_backward": _sdpa_cpu_backward_flops,
}
"""FLOP formulas (called with the op's traced arguments) for ops ``flop_counter`` lacks."""


@dataclass(frozen=True)
class Buffer:
    """One buffer: live over ``[lower, upper)``, ``size`` bytes, accessed by ``uses``.

    ``uses`` holds ``(op, bytes)`` pairs — schedule index and bytes moved — ascending in ``op``.
    """

    id: int
    lower: int
    upper: int
    size: int
    uses: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class MemoryInstance:
    """A memory-mapping instance: the buffers of a program and its per-op FLOPs and names."""

    name: str
    buffers: tuple[Buffer, ...]
    op_names: tuple[str, ...]
    op_flops: tuple[int, ...]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def num_ops(self) -> int:
        """``T``, the number of operations (schedule steps)."""
        return len(self.op_names)

    @property
    def total_flops(self) -> int:
        """FLOPs of the whole program."""
        return sum(self.op_flops)

    def live_bytes(self) -> list[int]:
        """Bytes live at each schedule step ``t``: ``Σ size`` over buffers with ``lower <= t < upper``."""
        delta = [0] * (self.num_ops + 1)
        for buf in self.buffers:
            delta[buf.lower] += buf.size
            delta[buf.upper] -= buf.size
        live, total = [], 0
        for t in range(self.num_ops):
            total += delta[t]
            live.append(total)
        return live

    def peak_live_bytes(self) -> int:
        """The most bytes live at once (what a memory planner without reuse limits can't beat)."""
        return max(self.live_bytes(), default=0)


# -- extraction --------------------------------------------------------------------------------
@dataclass
class _Buf:
    size: int
    lower: int
    order: int
    accesses: dict[int, int] = field(default_factory=dict)
    is_output: bool = False


@dataclass(frozen=True)
class _Ref:
    """A tensor value: which buffer holds it and how many bytes the tensor itself spans."""

    buf: int
    nbytes: int


def _storage_key(tensor: torch.Tensor) -> StorageWeakRef:
    return StorageWeakRef(tensor.untyped_storage())


def _static_int(value: Any, what: str, node: torch.fx.Node) -> int:
    try:
        return int(value)
    except (TypeError, RuntimeError) as err:
        raise ValueError(
            f"node {node.name!r}: {what} {value!r} is not a static integer; trace with static "
            "shapes (make_fx tracing_mode='fake' or torch.export without dynamic_shapes)"
        ) from err


def _tensor_nbytes(tensor: torch.Tensor, node: torch.fx.Node) -> int:
    return _static_int(tensor.numel(), "numel", node) * tensor.element_size()


def _storage_nbytes(tensor: torch.Tensor, node: torch.fx.Node) -> int:
    try:
        return _static_int(tensor.untyped_storage().nbytes(), "storage size", node)
    except (RuntimeError, NotImplementedError):  # tensors without an accessible storage
        return _tensor_nbytes(tensor, node)  # (some fake/functional tensors): numel × itemsize


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _flatten(item)]
    return [value]


def _node_value(node: torch.fx.Node, gm: torch.fx.GraphModule) -> Any:
    if "val" in node.meta:
        return node.meta["val"]
    if node.op == "get_attr":
        value: Any = gm
        for part in str(node.target).split("."):
            value = getattr(value, part)
        return value
    if node.op == "call_function" and node.target in _NON_OPS:
        return None
    raise ValueError(
        f"node {node.name!r} ({node.op} {node.target}) has no meta['val']; trace the program "
        "with make_fx(tracing_mode='fake') or torch.export so every node carries its tensors"
    )


def _packet_name(target: Any) -> str:
    packet = getattr(target, "overloadpacket", None)
    return str(packet) if packet is not None else getattr(target, "__name__", str(target))


def _op_name(target: Any) -> str:
    return str(target) if isinstance(target, torch._ops.OpOverload) else _packet_name(target)


def _writes_input(target: Any) -> bool:
    schema = getattr(target, "_schema", None)
    if schema is None:
        return False
    return any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments)


def _schema_says_view(target: Any) -> bool:
    schema = getattr(target, "_schema", None)
    if schema is None or not schema.returns:
        return False
    return all(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns)


def _grouped_conv_backward_flops(target: Any, args: Any, kwargs: dict[str, Any]) -> int | None:
    """``convolution_backward`` FLOPs for ``groups > 1``, where ``flop_counter``'s formula
    ignores the groups (it counts a depthwise conv's backward as if it were dense). Each of
    grad_input and grad_weight costs what the forward convolution costs; ``None`` for
    ``groups == 1``, where ``flop_counter`` is right."""
    names = [a.name for a in target._schema.arguments]
    bound = {**dict(zip(names, args, strict=False)), **kwargs}
    if int(bound["groups"]) == 1:
        return None
    grad_out, x, w = bound["grad_output"], bound["input"], bound["weight"]
    forward = flop_counter.conv_flop_count(x.shape, w.shape, grad_out.shape, bound["transposed"])
    mask = bound["output_mask"]
    return int(forward) * (int(bool(mask[0])) + int(bool(mask[1])))


def _op_flops(target: Any, args: Any, kwargs: dict[str, Any], out: Any) -> int:
    if _packet_name(target) == "aten.convolution_backward":
        grouped = _grouped_conv_backward_flops(target, args, kwargs)
        if grouped is not None:
            return grouped
    packet = getattr(target, "overloadpacket", None)
    if packet is not None and packet in flop_counter.flop_registry:
        return int(flop_counter.flop_registry[packet](*args, **kwargs, out_val=out))
    extra = EXTRA_FLOP_FORMULAS.get(_packet_name(target))
    return int(extra(*args, **kwargs)) if extra is not None else 0


def extract_instance(
    gm: torch.fx.GraphModule, *, name: str = "program", source: dict[str, Any] | None = None
) -> MemoryInstance:
    """The buffers, schedule and per-op FLOPs of a traced program (see the module docstring).

    ``gm``'s nodes must carry ``meta["val"]`` (traced fake or real tensors) with static shapes.
    """
    if not isinstance(gm, torch.fx.GraphModule):
        raise ValueError(f"gm must be a torch.fx.GraphModule, got {type(gm).__name__}")
    bufs: list[_Buf] = []
    by_storage: dict[StorageWeakRef, int] = {}
    refs: dict[torch.fx.Node, Any] = {}
    op_names: list[str] = []
    op_flops: list[int] = []

    def new_ref(tensor: torch.Tensor, node: torch.fx.Node, lower: int) -> _Ref | None:
        key = _storage_key(tensor)
        if key in by_storage:
            return _Ref(by_storage[key], _tensor_nbytes(tensor, node))
        size = _storage_nbytes(tensor, node)
        if size <= 0:
            return None
        by_storage[key] = len(bufs)
        bufs.append(_Buf(size=size, lower=lower, order=len(bufs)))
        return _Ref(len(bufs) - 1, _tensor_nbytes(tensor, node))

    def mirror(value: Any, leaf: Callable[[torch.Tensor], _Ref | None]) -> Any:
        if isinstance(value, (tuple, list)):
            return [mirror(v, leaf) for v in value]
        return leaf(value) if isinstance(value, torch.Tensor) else None

    def input_refs(node: torch.fx.Node) -> list[_Ref]:
        found: list[_Ref] = []
        torch.fx.node.map_arg(
            (node.args, node.kwargs),
            lambda n: found.extend(r for r in _flatten(refs.get(n)) if isinstance(r, _Ref)),
        )
        return found

    def access(t: int, ref: _Ref) -> None:
        buf = bufs[ref.buf]
        moved = min(ref.nbytes, buf.size)
        if moved > 0:
            buf.accesses[t] = buf.accesses.get(t, 0) + moved

    for node in gm.graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            refs[node] = mirror(_node_value(node, gm), lambda x, n=node: new_ref(x, n, 0))
        elif node.op == "output":
            for ref in input_refs(node):
                bufs[ref.buf].is_output = True
        elif node.op == "call_function" and node.target in _NON_OPS:
            source_refs = refs.get(node.args[0])
            index = node.args[1]
            picked = source_refs[index] if isinstance(source_refs, list) else None
            refs[node] = picked
        elif node.op == "call_function":
            value = _node_value(node, gm)
            outputs = [x for x in _flatten(value) if isinstance(x, torch.Tensor)]
            inputs = input_refs(node)
            writes = _writes_input(node.target)
            shares = bool(outputs) and all(
                _storage_key(x) in by_storage
                and by_storage[_storage_key(x)] in {r.buf for r in inputs}
                for x in outputs
            )
            is_view = not writes and (
                _packet_name(node.target) in ALIAS_OPS or _schema_says_view(node.target) or shares
            )
            if is_view:
                base = inputs[0].buf if inputs else None

                def view_leaf(
                    x: torch.Tensor, n: torch.fx.Node = node, b: int | None = base
                ) -> Any:
                    key = _storage_key(x)
                    if key not in by_storage and b is not None:
                        by_storage[key] = b  # an alias whose traced storage differs from its base
                    return new_ref(x, n, len(op_names))

                refs[node] = mirror(value, view_leaf)
                continue
            if not outputs and not writes:
                refs[node] = None  # assertions, symbolic size queries: no data moves
                continue
            t = len(op_names)
            for ref in inputs:
                access(t, ref)
            seen = {r.buf for r in inputs}

            def out_leaf(
                x: torch.Tensor, n: torch.fx.Node = node, t: int = t, seen: set[int] = seen
            ) -> _Ref | None:
                ref = new_ref(x, n, t)
                if ref is not None and ref.buf not in seen:
                    seen.add(ref.buf)
                    access(t, ref)
                return ref

            refs[node] = mirror(value, out_leaf)
            args, kwargs = torch.fx.node.map_arg(
                (node.args, node.kwargs), lambda n: _node_value(n, gm)
            )
            op_names.append(_op_name(node.target))
            op_flops.append(_op_flops(node.target, args, kwargs, value))
        else:
            raise ValueError(
                f"node {node.name!r}: op kind {node.op!r} is not supported; allowed are "
                "placeholder, get_attr, call_function and output (inline call_module/call_method "
                "by tracing with make_fx or torch.export)"
            )

    num_ops = len(op_names)
    if num_ops == 0:
        raise ValueError("the graph has no operations (call_function nodes that are not views)")
    kept = []
    for buf in bufs:
        if not buf.accesses:
            continue  # an input no op reads
        upper = num_ops if buf.is_output else max(buf.accesses) + 1
        kept.append((buf.lower, buf.order, upper, buf))
    kept.sort(key=lambda item: (item[0], item[1]))
    buffers = tuple(
        Buffer(
            id=i,
            lower=lower,
            upper=upper,
            size=buf.size,
            uses=tuple(sorted(buf.accesses.items())),
        )
        for i, (lower, _, upper, buf) in enumerate(kept)
    )
    return MemoryInstance(
        name=name,
        buffers=buffers,
        op_names=tuple(op_names),
        op_flops=tuple(op_flops),
        source=dict(source or {}),
    )


# -- tracing -----------------------------------------------------------------------------------
@dataclass
class TracedProgram:
    """A traced program and real example inputs in placeholder order (for eager re-execution)."""

    graph_module: torch.fx.GraphModule
    inputs: list[torch.Tensor]
    tracer: str


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 1 or any(s < 1 for s in shape):
        raise ValueError(
            f"input_shape must be a non-empty sequence of positive ints (batch first), got "
            f"{tuple(input_shape)!r}"
        )
    return shape


def _num_classes(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> int:
    named = [*model.named_parameters(), *model.named_buffers()]
    state = {k: torch.empty_like(v, device="meta") for k, v in named}
    out = torch.func.functional_call(
        model, state, (torch.empty(shape, dtype=dtype, device="meta"),)
    )
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != shape[0]:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"the model must return (batch, classes) logits for cross-entropy, got {got} for "
            f"input shape {shape}"
        )
    return int(out.shape[1])


def trace_training_step(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> TracedProgram:
    """Trace one training step of ``model`` with ``make_fx(tracing_mode="fake")``.

    The step takes (parameters..., buffers..., inputs, targets) as placeholders, runs the
    functional forward (in train mode: batch-norm statistics update in place), the mean
    cross-entropy against integer ``targets`` and the backward pass with respect to every
    parameter, and returns ``(loss, *grads)``. Nothing real is computed while tracing.
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    shape = _check_shape(input_shape)
    model.train()
    params = {k: v.detach() for k, v in model.named_parameters()}
    if not params:
        raise ValueError("the model has no parameters to differentiate; a training step needs some")
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    classes = _num_classes(model, shape, dtype)
    pnames, bnames = list(params), list(buffers)

    def step(*flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        plist = [p.requires_grad_() for p in flat[: len(pnames)]]
        blist = flat[len(pnames) : len(pnames) + len(bnames)]
        x, y = flat[-2], flat[-1]
        state = {**dict(zip(pnames, plist, strict=True)), **dict(zip(bnames, blist, strict=True))}
        logits = torch.func.functional_call(model, state, (x,))
        loss = nn.functional.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, plist)
        return (loss, *grads)

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    y = torch.randint(0, classes, (shape[0],), generator=gen)
    inputs = [*params.values(), *buffers.values(), x, y]
    gm = make_fx(step, tracing_mode="fake")(*inputs)
    return TracedProgram(gm, inputs, "make_fx")


def trace_inference(
    model: nn.Module, input_shape: Sequence[int], *, dtype: torch.dtype = torch.float32
) -> TracedProgram:
    """Trace ``model.eval()``'s forward pass with ``torch.export`` and the core-ATen
    decompositions; parameters and buffers become placeholders (``exported.graph_module``)."""
    shape = _check_shape(input_shape)
    model.eval()
    x = torch.randn(shape, dtype=dtype)
    with torch.no_grad():
        exported = torch.export.export(model, (x,)).run_decompositions()
    sig = exported.graph_signature
    state = {**exported.state_dict, **exported.constants}
    inputs = []
    for spec in sig.input_specs:
        target = spec.target
        inputs.append(x if target is None else state[target])
    return TracedProgram(exported.graph_module, inputs, "torch.export")


def extract_model(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    mode: str = "train",
    name: str = "program",
    source: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> MemoryInstance:
    """Trace ``model`` (``mode="train"``: a training step; ``"inference"``: the forward pass)
    and extract its instance; ``source`` gains ``mode``, ``dtype``, ``torch`` and ``tracer``."""
    if mode == "train":
        traced = trace_training_step(model, input_shape, dtype=dtype)
    elif mode == "inference":
        traced = trace_inference(model, input_shape, dtype=dtype)
    else:
        raise ValueError(f"mode must be 'train' or 'inference', got {mode!r}")
    info = {
        **(source or {}),
        "mode": mode,
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "tracer": traced.tracer,
    }
    return extract_instance(traced.graph_module, name=name, source=info)


# -- files -------------------------------------------------------------------------------------
def format_uses(buf: Buffer) -> str:
    """The ``uses`` cell: ``op`` for a full-buffer access, ``op:bytes`` otherwise, ``;``-joined."""
    return ";".join(str(op) if moved == buf.size else f"{op}:{moved}" for op, moved in buf.uses)


def write_instance(instance: MemoryInstance, directory: str | Path) -> tuple[Path, Path]:
    """Write ``DIRECTORY/NAME.csv`` and ``DIRECTORY/NAME.json``; return both paths."""
    if not instance.name or "/" in instance.name or instance.name.startswith("."):
        raise ValueError(
            f"instance name {instance.name!r} must be a non-empty file stem without '/' or a "
            "leading '.'"
        )
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{instance.name}.csv"
    json_path = folder / f"{instance.name}.json"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "lower", "upper", "size", "uses"])
        for buf in instance.buffers:
            writer.writerow([buf.id, buf.lower, buf.upper, buf.size, format_uses(buf)])
    meta = {
        "format": FORMAT,
        "name": instance.name,
        "num_ops": instance.num_ops,
        "op_flops": list(instance.op_flops),
        "op_names": list(instance.op_names),
        "source": instance.source,
    }
    json_path.write_text(json.dumps(meta) + "\n")
    return csv_path, json_path
