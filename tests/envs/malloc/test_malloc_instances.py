"""mallocGame instances: the cost model by hand, the file format and its errors, generators."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from rlsuite.envs.malloc.generators import random_instance, tight_instance
from rlsuite.envs.malloc.instances import (
    HardwareProfile,
    Instance,
    InstanceError,
    load_instance,
    save_instance,
    shipped_instances,
)

HW = HardwareProfile(name="toy", flops_per_s=100.0, slow_bandwidth=10.0, fast_bandwidth=100.0)


def toy() -> Instance:
    """Two operations; buffer A (100 B) is written by op 0 and read by op 1, buffer B (50 B)
    is read by op 1 only. op 0 does 300 FLOP (3 s of compute), op 1 does 100 FLOP (1 s)."""
    return Instance(
        name="toy",
        ids=np.array([0, 1]),
        lower=np.array([0, 0]),
        upper=np.array([2, 2]),
        size=np.array([100, 50]),
        use_ptr=np.array([0, 2, 3]),
        use_op=np.array([0, 1, 1]),
        use_bytes=np.array([100, 100, 50]),
        num_ops=2,
        op_flops=np.array([300.0, 100.0]),
        hardware=HW,
    )


def test_cost_model_by_hand() -> None:
    inst = toy()
    # all slow: op 0 = max(3, 100/10) = 10 s; op 1 = max(1, (100 + 50)/10) = 15 s
    assert inst.slow_time == pytest.approx(25.0)
    # A fast: op 0 = max(3, 1) = 3; op 1 = max(1, 1 + 5) = 6 -> 9 s
    assert inst.program_time(np.array([True, False])) == pytest.approx(9.0)
    # B fast: op 1 = max(1, 10 + 0.5) = 10.5 -> 20.5 s; both: op 1 = max(1, 1.5) = 1.5 -> 4.5 s
    assert inst.program_time(np.array([False, True])) == pytest.approx(20.5)
    assert inst.program_time(np.array([True, True])) == pytest.approx(4.5)
    np.testing.assert_allclose(inst.benefit, [16.0, 4.5])
    assert inst.peak_live_bytes == 150
    np.testing.assert_array_equal(inst.live_bytes(), [150, 150])
    # memory-boundedness benefit / sqrt(size): A 1.6, B 0.64
    np.testing.assert_array_equal(inst.mapping_order(), [0, 1])


def test_save_load_round_trip(tmp_path: Path) -> None:
    inst = random_instance(40, seed=3)
    save_instance(inst, tmp_path / "r.csv")
    back = load_instance(tmp_path / "r.csv")
    for key in ("ids", "lower", "upper", "size", "use_ptr", "use_op", "use_bytes", "op_flops"):
        np.testing.assert_array_equal(getattr(back, key), getattr(inst, key))
    assert back.hardware == inst.hardware and back.num_ops == inst.num_ops
    assert back.slow_time == pytest.approx(inst.slow_time, rel=1e-12)


def test_plain_minimalloc_csv_loads(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("id,lower,upper,size\n0,0,3,64\n1,1,2,32\n2,3,5,16\n")
    inst = load_instance(path)
    assert inst.num_ops == 5 and inst.peak_live_bytes == 96
    # default uses: written at lower, read at upper - 1
    np.testing.assert_array_equal(inst.use_op, [0, 2, 1, 3, 4])
    assert float(inst.op_flops.sum()) == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,lower,size\n0,0,1\n", "header must have the columns"),
        ("id,lower,upper,size,colour\n0,0,1,8,red\n", "header must have the columns"),
        ("id,lower,upper,size\n0,0,2,8\n1,x,2,8\n", "line 3: column 'lower' must be an integer"),
        ("id,lower,upper,size\n0,2,2,8\n", "buffer id 0: the live range"),
        ("id,lower,upper,size\n0,0,2,0\n", "buffer id 0: size must be > 0"),
        ("id,lower,upper,size\n0,0,2,8\n0,1,2,8\n", "buffer id 0 appears more than once"),
        ("id,lower,upper,size,uses\n0,0,2,8,0;5\n", "every use must lie in [lower, upper)"),
        ("id,lower,upper,size,uses\n0,0,3,8,1;0\n", "uses must be distinct and ascending"),
        ("id,lower,upper,size,uses\n0,0,3,8,0:-4\n", "use bytes must be > 0"),
        ("id,lower,upper,size\n", "no buffers"),
        ("id,lower,upper,size,lower\n0,0,2,8,0\n", "each once"),
        ("id,lower,upper,size\n0,0,2,8,9\n", "line 2: 5 fields, the header has 4"),
        ("id,lower,upper,size\n0,0,2,9007199254740993\n", "too large (at most 2**53)"),
        ("id,lower,upper,size,uses\n0,0,2,8,0:\n", "has ':' but no bytes"),
        ("buffer,start,end,size,alignment\nb1,0,2,8,4\n", "alignment constraints and gaps"),
        ("id,lower,upper,size,benefit\n0,0,2,8,1.5\n", "benefit 1.5 s disagrees"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InstanceError, match=re.escape(message)):
        load_instance(path)


def test_minimalloc_files_load(tmp_path: Path) -> None:
    """MiniMalloc's own header (buffer, start, inclusive end), string ids and a solution column."""
    path = tmp_path / "input.12.csv"
    path.write_text("buffer,start,end,size,offset\nb1,0,3,4,0\nb2,3,9,4,0\nb3,0,9,4,4\n")
    inst = load_instance(path)
    np.testing.assert_array_equal(inst.upper, [4, 10, 10])
    np.testing.assert_array_equal(inst.ids, [0, 1, 2])
    assert inst.source["buffer_names"] == ["b1", "b2", "b3"]
    assert inst.peak_live_bytes == 12  # inclusive ends: b1 and b2 share t = 3


def test_hardware_override_applies_after_the_benefit_check(tmp_path: Path) -> None:
    inst = random_instance(20, seed=5)
    save_instance(inst, tmp_path / "r.csv")  # writes benefits for the default hardware
    faster = HardwareProfile("x", 1e15, 1e12, 1e14)
    loaded = load_instance(tmp_path / "r.csv", hardware=faster)
    assert loaded.hardware == faster
    np.testing.assert_allclose(loaded.benefit, inst.with_hardware(faster).benefit)


def test_bad_sidecars(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,lower,upper,size\n0,0,2,8\n")
    sidecar = tmp_path / "p.json"
    sidecar.write_text("{not json")
    with pytest.raises(InstanceError, match="not valid JSON"):
        load_instance(path)
    sidecar.write_text(json.dumps({"num_ops": 2, "op_flops": [1.0]}))
    with pytest.raises(InstanceError, match="op_flops must have 2 entries"):
        load_instance(path)
    sidecar.write_text(json.dumps({"num_ops": 1}))
    with pytest.raises(InstanceError, match="upper must be <= num_ops"):
        load_instance(path)
    sidecar.write_text(json.dumps({"hardware": {"slow_bandwidth": -1}}))
    with pytest.raises(InstanceError, match="slow_bandwidth must be a positive number"):
        load_instance(path)
    sidecar.write_text(json.dumps({"num_ops": 2, "op_flops": ["a", 1]}))
    with pytest.raises(InstanceError, match="op_flops must be a list of numbers"):
        load_instance(path)
    sidecar.write_text(json.dumps({"op_names": "ab"}))
    with pytest.raises(InstanceError, match="op_names must be a list of strings"):
        load_instance(path)
    sidecar.write_text(json.dumps({"num_ops": True}))
    with pytest.raises(InstanceError, match="num_ops must be a positive int"):
        load_instance(path)
    sidecar.write_text(json.dumps({"colour": "red"}))
    with pytest.raises(InstanceError, match="unknown keys"):
        load_instance(path)
    with pytest.raises(InstanceError, match="does not exist"):
        load_instance(tmp_path / "missing.csv")


def test_generators_are_seeded() -> None:
    a, b, c = random_instance(50, seed=1), random_instance(50, seed=1), random_instance(50, seed=2)
    np.testing.assert_array_equal(a.lower, b.lower)
    np.testing.assert_array_equal(a.op_flops, b.op_flops)
    assert not np.array_equal(a.size, c.size)


@pytest.mark.parametrize("seed", range(5))
def test_tight_instances_have_optimum_equal_to_capacity(seed: int) -> None:
    capacity = 1 << 16
    inst, offsets = tight_instance(30, 20, seed, capacity=capacity)
    assert inst.num_buffers == 30
    np.testing.assert_array_equal(inst.live_bytes(), np.full(20, capacity))
    assert inst.peak_live_bytes == capacity
    # the layout the cuts came from is valid and exactly `capacity` high
    assert (offsets >= 0).all() and (offsets + inst.size).max() == capacity
    for i in range(30):
        for j in range(i):
            in_time = inst.lower[i] < inst.upper[j] and inst.lower[j] < inst.upper[i]
            in_space = (
                offsets[i] < offsets[j] + inst.size[j] and offsets[j] < offsets[i] + inst.size[i]
            )
            assert not (in_time and in_space)


SHIPPED = {  # name: (buffers, operations, peak live bytes) as extracted (envs/malloc/data)
    "resnet18-train-b8-r224": (343, 183, 234_471_844),
    "resnet50-train-b8-r224": (878, 461, 796_179_876),
    "mobilenet_v2-train-b8-r224": (888, 453, 643_832_612),
    "efficientnet_b0-train-b8-r224": (1224, 732, 730_853_508),
    "vit_b_16-train-b8-r224": (838, 546, 1_305_127_844),
    "convnext_tiny-train-b8-r224": (746, 480, 993_410_660),
    "densenet121-train-b8-r224": (2553, 1582, 1_078_486_564),
    "mnasnet1_0-train-b8-r224": (852, 418, 375_816_708),
    "regnet_y_400mf-train-b8-r224": (1259, 699, 288_010_404),
    "resnext50_32x4d-train-b8-r224": (878, 461, 1_008_042_916),
    "shufflenet_v2_x1_0-train-b8-r224": (959, 487, 175_469_676),
    "squeezenet1_1-train-b8-r224": (219, 138, 184_300_036),
    "swin_t-train-b8-r224": (1301, 1042, 972_198_372),
    "vgg11-train-b8-r224": (106, 75, 931_050_148),
    "convnext_tiny-inference-b8-r224": (366, 137, 200_872_096),
    "densenet121-inference-b8-r224": (1038, 430, 98_562_464),
    "googlenet-inference-b8-r224": (496, 195, 77_900_448),
    "swin_t-inference-b8-r224": (888, 599, 199_747_880),
}


def test_shipped_instances_load() -> None:
    assert shipped_instances() == sorted(SHIPPED)
    for name, (buffers, ops, peak) in SHIPPED.items():
        inst = load_instance(name)
        assert (inst.num_buffers, inst.num_ops, inst.peak_live_bytes) == (buffers, ops, peak)
        model, mode, batch, resolution = name.split("-")
        assert (inst.source["model"], inst.source["mode"]) == (model, mode)
        assert (batch, resolution) == ("b8", "r224") and inst.source["batch_size"] == 8
        assert inst.source["tracer"] == {"train": "make_fx", "inference": "torch.export"}[mode]
        assert inst.op_flops.sum() > 1e9 and inst.hardware.name == "tpu-v4-like"
