"""The C++ CPU kernels give bit for bit the results of the torch.compile kernels they replace.

Each (loss, dtype) compiles once with torch.compile here; the C++ library builds once per test
session into a temporary cache (about a second), and once more in the build tests.
"""

import logging

import pytest
import torch
from box_samples import random_pairs
from test_fast_path import degenerate_pairs, grid_pairs

from focal_eiou_d2.layers import BOX_LOSSES, box_regression_loss, cpu_kernel, fast_path, path_counts

# Every float32 class a coordinate can fall in: NaN, infinities, signed zeros, the largest and
# the smallest (subnormal) magnitudes, and ordinary values.
SPECIAL = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1.0, 2.0, -1.0, 3e38, -3e38]
SPECIAL += [1e-45, 5.0]


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Build the library into a fresh cache directory, as on a new machine."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FOCAL_EIOU_D2_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        cpu_kernel._library.cache_clear()
        yield
    cpu_kernel._library.cache_clear()


def special_pairs(num_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 pairs whose coordinates are drawn from SPECIAL."""
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(0, len(SPECIAL), (2, num_pairs, 4), generator=generator)
    values = torch.tensor(SPECIAL, dtype=torch.float64)
    return values[index[0]], values[index[1]]


def sample_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    samples = [
        random_pairs(20000, seed=30),
        grid_pairs(5000, seed=31),
        degenerate_pairs(),
        special_pairs(20000, seed=32),
    ]
    return tuple(torch.cat(boxes) for boxes in zip(*samples, strict=True))


def assert_identical(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Equal values (0.0 == -0.0) and NaN at the same places."""
    same = (ours == theirs) | (ours.isnan() & theirs.isnan())
    assert bool(same.all()), f"{int((~same).sum())} of {same.numel()} values differ"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", cpu_kernel.CPU_LOSSES)
def test_bit_identical_to_the_compiled_kernel(name, dtype):
    pred, target = (boxes.to(dtype) for boxes in sample_pairs())
    compiled = fast_path._compiled_kernel(name, dtype, torch.device("cpu"))
    for eps in (1e-7, 1e-9):
        kernel = cpu_kernel.find_kernel(name, dtype, {"eps": eps})
        assert kernel is not None, cpu_kernel.build_error()
        for boxes, other in ((pred, target), (target, pred)):
            for ours, theirs in zip(
                kernel(boxes, other), compiled(boxes, other, eps=eps), strict=True
            ):
                assert_identical(ours, theirs)


def test_nan_free_and_nan_inputs_in_one_call_match_separate_calls():
    # A NaN anywhere makes the kernel take its second, exact pass over the whole batch; the
    # other pairs must come out the same as without it.
    pred, target = (boxes.float() for boxes in random_pairs(6000, seed=33))
    kernel = cpu_kernel.find_kernel("focal_eiou", torch.float32, {})
    clean = kernel(pred, target)
    pred[17, 0] = float("nan")
    mixed = kernel(pred, target)
    keep = torch.ones(len(pred), dtype=torch.bool)
    keep[17] = False
    for with_nan, without in zip(mixed, clean, strict=True):
        assert torch.equal(with_nan[keep], without[keep])
    assert bool(mixed[0][17].isnan()) and bool(mixed[1][17].isnan().any())


def test_thread_count_does_not_change_results():
    pred, target = (boxes.float() for boxes in random_pairs(10000, seed=34))
    kernel = cpu_kernel.find_kernel("eiou", torch.float32, {})
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = kernel(pred, target)
        torch.set_num_threads(2)
        parallel = kernel(pred, target)
    finally:
        torch.set_num_threads(threads)
    for ours, theirs in zip(serial, parallel, strict=True):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize(
    "name,dtype,params,covered",
    [
        ("focal_eiou", torch.float32, {"gamma": 0.5, "eps": 1e-6}, True),
        ("focal_eiou", torch.float32, {"gamma": 1.0}, False),
        ("ciou", torch.float32, {}, False),
        ("giou", torch.float16, {}, False),
        ("giou", torch.float64, {"gamma": 0.5}, False),
    ],
)
def test_which_calls_the_cpu_kernels_cover(name, dtype, params, covered):
    assert (cpu_kernel.find_kernel(name, dtype, params) is not None) == covered


def test_fast_path_takes_the_cpu_kernel_and_the_switch_returns_to_torch_compile(monkeypatch):
    pred, target = random_pairs(2000, seed=35)
    calls = []
    original = cpu_kernel._call
    monkeypatch.setattr(cpu_kernel, "_call", lambda *args: calls.append(1) or original(*args))
    before = path_counts().get("compiled", 0)
    ours = box_regression_loss("diou", pred, target)
    assert len(calls) == 1
    previous = cpu_kernel.set_cpu_kernel(False)
    try:
        compiled = box_regression_loss("diou", pred, target)
    finally:
        cpu_kernel.set_cpu_kernel(previous)
    assert len(calls) == 1 and path_counts()["compiled"] == before + 2
    assert torch.equal(ours, compiled)


def test_library_is_built_once_per_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FOCAL_EIOU_D2_CACHE_DIR", str(tmp_path))
    first = cpu_kernel._build()
    built_at = first.stat().st_mtime_ns
    assert cpu_kernel._build() == first and first.stat().st_mtime_ns == built_at
    assert [path.name for path in tmp_path.iterdir()] == [first.name]


def test_build_failure_falls_back_to_torch_compile_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FOCAL_EIOU_D2_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setitem(cpu_kernel._state, "build_error", None)
    cpu_kernel._library.cache_clear()
    pred, target = random_pairs(2000, seed=36)
    try:
        with caplog.at_level(logging.WARNING, logger=cpu_kernel.__name__):
            first = box_regression_loss("giou", pred, target)
            second = box_regression_loss("giou", pred, target)
        assert cpu_kernel.find_kernel("giou", torch.float64, {}) is None
        assert "no-such-compiler" in str(cpu_kernel.build_error())
    finally:
        cpu_kernel._library.cache_clear()
    warnings = [record for record in caplog.records if record.name == cpu_kernel.__name__]
    assert len(warnings) == 1 and "torch.compile" in warnings[0].getMessage()
    assert fast_path.compile_error() is None
    assert torch.equal(first, second)
    torch.testing.assert_close(first, BOX_LOSSES["giou"].fn(pred, target))


def test_compiler_errors_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("FOCAL_EIOU_D2_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cpu_kernel, "FLAGS", cpu_kernel.FLAGS + ("-fno-such-flag",))
    with pytest.raises(OSError, match="no-such-flag"):
        cpu_kernel._build()
    assert list(tmp_path.iterdir()) == []
