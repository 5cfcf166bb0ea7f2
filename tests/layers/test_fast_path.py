"""The fused kernels compute exactly the reference losses, and are chosen when they should be.

The reference is each loss function with the fast path off. Compilation dominates the cost of
this file: each fused loss compiles once in float64 with torch.compile (dynamic batch size, eps
and gamma) and every test reuses it; focal_eiou compiles a second time for non-default gammas
and eiou and diou also compile in float32.
"""

import functools
import logging
import os
import subprocess
import sys

import pytest
import torch
from box_samples import random_pairs
from fast_path_switch import fast_path_enabled

from focal_eiou_d2.layers import (
    BOX_LOSSES,
    FUSED_LOSSES,
    box_regression_loss,
    compile_error,
    compiled_kernel,
    fast_path,
    path_counts,
    select_path,
    set_fast_path,
)
from focal_eiou_d2.layers.hyperparams import EPS, FOCAL_EIOU_GAMMA

TOLERANCE = dict(rtol=1e-9, atol=1e-12)

# Degenerate pairs, each against the reference's conventions: zero width, zero height, points,
# identical boxes (ties in every max/min), identical points, far apart, inverted boxes, shared
# edges, nested boxes, heights at and below CIoU's clamp (eps = 1e-7).
DEGENERATE = [
    ([1, 1, 1, 5], [0, 0, 4, 4]),
    ([1, 1, 5, 1], [0, 0, 4, 4]),
    ([2, 2, 2, 2], [0, 0, 0, 0]),
    ([3, 0, 3, 4], [3, 0, 3, 4]),
    ([2, 3, 2, 3], [2, 3, 2, 3]),
    ([0, 0, 4, 4], [0, 0, 4, 4]),
    ([10, 20, 310, 90], [10, 20, 310, 90]),
    ([0, 0, 1e4, 1e4], [-2e4, -2e4, -1.9e4, -1.5e4]),
    ([3, 0, 1, 2], [0, 0, 4, 4]),
    ([5, 5, 1, 1], [4, 4, 2, 2]),
    ([2, 6, 3, 1], [2, 6, 3, 1]),
    ([0, 0, 4, 4], [0, 2, 4, 6]),
    ([1, 1, 3, 3], [1, 0, 3, 3]),
    ([0, 0, 2, 2], [0, 0, 4, 4]),
    ([4, 0, 6, 2], [0, 0, 2, 2]),
    ([0, 0, 3, 1e-7], [0, 0, 2, 1]),
    ([0, 0, 3, 1e-8], [0, 0, 2, 1e-7]),
]


def degenerate_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs of DEGENERATE as two float64 tensors of shape (len(DEGENERATE), 4)."""
    return tuple(
        torch.tensor(boxes, dtype=torch.float64) for boxes in zip(*DEGENERATE, strict=True)
    )


def grid_pairs(num_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random float64 pairs with corners on the integer grid 0..4: inverted, empty, identical and
    edge-sharing boxes in large numbers."""
    generator = torch.Generator().manual_seed(seed)
    corners = torch.randint(0, 5, (2, num_pairs, 4), generator=generator)
    return corners[0].double(), corners[1].double()


def all_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """4000 random pairs, 2000 grid pairs and the degenerate pairs, float64."""
    samples = [random_pairs(4000, seed=10), grid_pairs(2000, seed=11), degenerate_pairs()]
    return tuple(torch.cat(boxes) for boxes in zip(*samples, strict=True))


# (name, params) for every fused loss, and focal_eiou with a second gamma (0^0 = 1 included).
CALLS = [(name, {}) for name in FUSED_LOSSES] + [("focal_eiou", {"gamma": 0.0, "eps": 1e-9})]


def _value_and_grads(loss_fn, pred, target):
    pred = pred.clone().requires_grad_(True)
    target = target.clone().requires_grad_(True)
    loss = loss_fn(pred, target)
    pred_grad, target_grad = torch.autograd.grad(loss.sum(), [pred, target])
    return loss.detach(), pred_grad, target_grad


def _reference(name, pred, target, **params):
    """Value and gradients of the loss's reference implementation (the fast path off)."""
    with fast_path_enabled(False):
        return _value_and_grads(lambda a, b: BOX_LOSSES[name].fn(a, b, **params), pred, target)


def _assert_same(ours, reference, **tolerance):
    for mine, theirs in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine, theirs, **(tolerance or TOLERANCE))


def _calls(path):
    return path_counts().get(path, 0)


@pytest.mark.parametrize("name,params", CALLS)
def test_fused_math_matches_reference_eagerly(name, params):
    # The closed form itself, without compilation; the target gradient swaps the boxes.
    pred, target = all_pairs()
    kernel_params = {"eps": EPS, **params}
    if name == "focal_eiou":
        kernel_params.setdefault("gamma", FOCAL_EIOU_GAMMA)
    loss, pred_grad = FUSED_LOSSES[name](pred, target, **kernel_params)
    target_grad = FUSED_LOSSES[name](target, pred, **kernel_params)[1]
    _assert_same((loss, pred_grad, target_grad), _reference(name, pred, target, **params))


@pytest.mark.parametrize("name,params", CALLS)
def test_named_function_takes_the_fused_path_and_matches_reference(name, params):
    # The functions users import (eiou_loss, ...), called directly: float64, degenerate boxes
    # included, gradients of both boxes.
    pred, target = all_pairs()
    assert select_path(name, pred, target, **params) == "compiled"
    before = _calls("compiled")
    ours = _value_and_grads(lambda a, b: BOX_LOSSES[name].fn(a, b, **params), pred, target)
    assert _calls("compiled") == before + 1, compile_error()
    _assert_same(ours, _reference(name, pred, target, **params))


@pytest.mark.parametrize("name", list(FUSED_LOSSES))
def test_dispatch_and_named_function_take_the_same_path(name):
    pred, target = random_pairs(600, seed=22)
    cases = [
        ((pred, target), {}),
        ((pred[:10], target[:10]), {}),
        ((pred.float(), target), {}),
        ((pred.round().long(), target.round().long()), {}),
        ((pred, target), {"reduction": "mean"}),
    ]
    if name == "focal_eiou":
        cases += [((pred, target), {"reduction": "weighted"}), ((pred, target), {"gamma": 2.0})]
        cases += [((pred, target), {"detach_weight": False})]
    for enabled in (True, False):
        with fast_path_enabled(enabled):
            for boxes, params in cases:
                path = select_path(name, *boxes, **params)
                by_name = functools.partial(box_regression_loss, name)
                for call in (BOX_LOSSES[name].fn, by_name):
                    before = _calls(path)
                    call(*boxes, **params)
                    assert _calls(path) == before + 1, (enabled, params, path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(FUSED_LOSSES))
def test_compiled_path_on_cuda_matches_reference(name, dtype):
    pred, target = (boxes.to("cuda", dtype) for boxes in all_pairs())
    assert select_path(name, pred, target) == "compiled"
    before = _calls("compiled")
    ours = _value_and_grads(BOX_LOSSES[name].fn, pred, target)
    assert _calls("compiled") == before + 1, compile_error()
    tolerance = TOLERANCE if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    _assert_same(ours, _reference(name, pred, target), **tolerance)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("name,params", CALLS + [("focal_eiou", {"gamma": 1.5})])
def test_no_host_device_sync_in_the_fused_path_on_cuda(name, params, reduction):
    pred, target = (boxes.to("cuda") for boxes in random_pairs(4 * fast_path.MIN_PAIRS, seed=23))
    pred.requires_grad_(True)
    weights = torch.rand(len(pred), device="cuda")

    def step():
        loss = BOX_LOSSES[name].fn(pred, target, reduction=reduction, **params)
        # "sum" and "mean" hand the kernel's backward a gradient of stride 0, weights a dense one.
        (loss if reduction != "none" else (weights * loss).sum()).backward()

    step()  # compiles the kernel: compilation itself may synchronize
    torch.cuda.synchronize()
    before = _calls("compiled")
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()  # any synchronizing operation raises a RuntimeError here
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert _calls("compiled") == before + 1


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("name", ["giou", "focal_eiou"])
def test_fused_reductions_and_pred_only_gradient(name, reduction):
    pred, target = random_pairs(1000, seed=12)
    pred.requires_grad_(True)
    before = _calls("compiled")
    loss = BOX_LOSSES[name].fn(pred, target, reduction=reduction)
    (grad,) = torch.autograd.grad(loss, pred)
    assert _calls("compiled") == before + 1
    with fast_path_enabled(False):
        reference = BOX_LOSSES[name].fn(pred, target, reduction=reduction)
    (reference_grad,) = torch.autograd.grad(reference, pred)
    _assert_same((loss, grad), (reference, reference_grad))


def test_batch_shape_strided_input_and_no_recompilation():
    # A strided (2, n, 4) view of (2, 700, 8) boxes; new sizes and eps reuse the compiled kernel.
    pred, target = random_pairs(1400, seed=13)
    wide = torch.cat([pred, pred], dim=-1).reshape(2, 700, 8).requires_grad_(True)
    target = target.reshape(2, 700, 4)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for size, eps in [(700, 1e-7), (333, 1e-5), (fast_path.MIN_PAIRS // 2, 1e-9)]:
        view = wide[:, :size, 2:6]
        assert not view.is_contiguous()
        before = _calls("compiled")
        ours = box_regression_loss("diou", view, target[:, :size], eps=eps)
        assert _calls("compiled") == before + 1 and ours.shape == (2, size)
        with fast_path_enabled(False):
            reference = box_regression_loss("diou", view, target[:, :size], eps=eps)
        _assert_same(
            (ours, *torch.autograd.grad(ours.sum(), wide)),
            (reference, *torch.autograd.grad(reference.sum(), wide)),
        )
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= graphs + 1


def test_negative_bit_views_are_read_as_their_values():
    # A _neg_view stores -x and reads as x; its storage must not reach a kernel as is.
    pred, target = random_pairs(600, seed=24)
    stored_negated = torch._neg_view(-pred)
    assert stored_negated.is_neg() and torch.equal(stored_negated, pred)
    by_name = box_regression_loss("giou", stored_negated, target)
    named = BOX_LOSSES["giou"].fn(stored_negated, target)
    with fast_path_enabled(False):
        reference = BOX_LOSSES["giou"].fn(pred, target)
    torch.testing.assert_close(by_name, reference, **TOLERANCE)
    torch.testing.assert_close(named, reference, **TOLERANCE)


def test_new_gamma_and_eps_do_not_recompile():
    pred, target = random_pairs(300, seed=21)
    box_regression_loss("focal_eiou", pred, target, gamma=1.0)  # compiles the non-default gamma
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for gamma, eps in [(0.25, 1e-9), (1.5, 1e-7), (2.0, 1e-5)]:
        ours = box_regression_loss("focal_eiou", pred, target, gamma=gamma, eps=eps)
        with fast_path_enabled(False):
            reference = BOX_LOSSES["focal_eiou"].fn(pred, target, gamma=gamma, eps=eps)
        torch.testing.assert_close(ours, reference, **TOLERANCE)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_float32_and_half_precision(dtype):
    # Half precision is upcast to float32 as the reference does; the gradient keeps the dtype.
    pred, target = (boxes.to(dtype) for boxes in random_pairs(3000, seed=14))
    before = _calls("compiled")
    ours = _value_and_grads(BOX_LOSSES["eiou"].fn, pred, target)
    assert _calls("compiled") == before + 1
    assert ours[0].dtype == torch.float32 and ours[1].dtype == dtype
    tolerance = dict(rtol=1e-3 if dtype == torch.float16 else 1e-4, atol=1e-5)
    _assert_same(ours, _reference("eiou", pred, target), **tolerance)


def test_small_batches_run_on_one_thread(monkeypatch):
    # The compiled loop always starts every thread; small batches use one, then restore them.
    seen = []
    original = compiled_kernel._compiled

    def spy(source, dtype, device):
        compiled = original(source, dtype, device)

        def counted(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return compiled(*args, **kwargs)

        return counted

    monkeypatch.setattr(compiled_kernel, "_compiled", spy)
    pred, target = random_pairs(compiled_kernel.PARALLEL_MIN_PAIRS, seed=26)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        small = BOX_LOSSES["giou"].fn(pred[:-1], target[:-1])
        large = BOX_LOSSES["giou"].fn(pred, target)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert seen == [1, 2]
    assert torch.equal(small, large[:-1])


def test_thread_count_does_not_change_results():
    pred, target = (boxes.float() for boxes in random_pairs(10000, seed=34))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = BOX_LOSSES["diou"].fn(pred, target)
        torch.set_num_threads(2)
        parallel = BOX_LOSSES["diou"].fn(pred, target)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(serial, parallel)


def test_autocast_leaves_the_loss_in_float32():
    pred, target = (boxes.float() for boxes in random_pairs(1000, seed=20))
    before = _calls("compiled")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = _value_and_grads(BOX_LOSSES["eiou"].fn, pred, target)
    assert _calls("compiled") == before + 1
    _assert_same(ours, _reference("eiou", pred, target), rtol=1e-4, atol=1e-5)


def test_double_backward_raises_naming_the_switch():
    pred, target = random_pairs(600, seed=15)
    pred.requires_grad_(True)
    loss = BOX_LOSSES["eiou"].fn(pred, target).sum()
    with pytest.raises(RuntimeError, match=r"double backward.*set_fast_path\(False\)"):
        torch.autograd.grad(loss, pred, create_graph=True)


def test_retained_graph_backward_twice_with_weights():
    """The first backward gives its buffers away (scaled in place); the second recomputes them.
    Changing the first result in place must not change the second."""
    pred, target = random_pairs(600, seed=17)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    weights = torch.rand(600, generator=torch.Generator().manual_seed(18), dtype=torch.float64)
    before = _calls("compiled")
    loss = BOX_LOSSES["focal_eiou"].fn(pred, target)
    assert _calls("compiled") == before + 1
    first = torch.autograd.grad(loss, [pred, target], weights, retain_graph=True)
    expected = [grad.clone() for grad in first]
    for grad in first:
        grad.zero_()
    second = torch.autograd.grad(loss, [pred, target], weights)
    with fast_path_enabled(False):
        reference_loss = BOX_LOSSES["focal_eiou"].fn(pred, target)
    reference = torch.autograd.grad(reference_loss, [pred, target], weights)
    _assert_same(second, expected)
    _assert_same(expected, reference)


@pytest.mark.parametrize("scale", [1.0, 0.25, -3.0])
def test_upstream_gradient_of_a_scaled_sum(scale):
    # The upstream gradient of scale * loss.sum() reaches the backward as one value expanded to N
    # (stride 0): not multiplied at all for 1 on the CPU.
    pred, target = random_pairs(600, seed=20)
    pred.requires_grad_(True)
    before = _calls("compiled")
    ours = torch.autograd.grad(scale * BOX_LOSSES["diou"].fn(pred, target).sum(), pred)
    assert _calls("compiled") == before + 1
    with fast_path_enabled(False):
        reference = torch.autograd.grad(scale * BOX_LOSSES["diou"].fn(pred, target).sum(), pred)
    _assert_same(ours, reference)


@pytest.mark.parametrize("dense", [False, True])
def test_scaling_reads_no_value_off_the_cpu(dense):
    # Meta tensors hold no values: reading one (a host-device sync on CUDA) would raise.
    grad = torch.empty(600, 4, device="meta")
    grad_loss = torch.empty(600, device="meta") if dense else torch.empty((), device="meta")
    scaled = fast_path._scale_(grad, grad_loss if dense else grad_loss.expand(600))
    assert scaled.shape == (600, 4) and scaled.device.type == "meta"


def _reference_cases():
    pred, target = random_pairs(600, seed=16)
    few = fast_path.MIN_PAIRS - 1
    return [
        ("integer boxes", "eiou", pred.round().long(), target.round().long(), {}),
        ("broadcast target", "eiou", pred.reshape(2, 300, 4), target[:300], {}),
        ("mixed dtypes", "giou", pred, target.float(), {}),
        ("weighted reduction", "focal_eiou", pred, target, {"reduction": "weighted"}),
        ("undetached weight", "focal_eiou", pred, target, {"detach_weight": False}),
        ("too few pairs", "ciou", pred[:few], target[:few], {}),
        ("empty", "ciou", pred[:0], target[:0], {}),
        ("meta device", "iou", pred.to("meta"), target.to("meta"), {}),
    ]


@pytest.mark.parametrize("case", _reference_cases(), ids=lambda case: case[0])
def test_reference_path_where_unsupported(case):
    _, name, pred, target, params = case
    assert select_path(name, pred, target, **params) == "reference"
    before = _calls("reference")
    BOX_LOSSES[name].fn(pred, target, **params)
    assert _calls("reference") == before + 1


def test_losses_without_a_fused_kernel_take_the_reference_path():
    pred, target = random_pairs(600, seed=25)
    assert {name for name in BOX_LOSSES if select_path(name, pred, target) != "reference"} == set(
        FUSED_LOSSES
    )


def test_minimum_size_is_the_boundary():
    pred, target = random_pairs(fast_path.MIN_PAIRS, seed=17)
    assert select_path("iou", pred, target) == "compiled"
    assert select_path("iou", pred[1:], target[1:]) == "reference"


def test_switch(monkeypatch):
    pred, target = random_pairs(600, seed=18)
    monkeypatch.setitem(fast_path._state, "enabled", True)
    assert set_fast_path(False) is True
    assert select_path("eiou", pred, target) == "reference"
    assert set_fast_path(True) is False
    assert select_path("eiou", pred, target) == "compiled"
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert select_path("eiou", pred, target) == "reference"


@pytest.mark.parametrize("value", ["off", 0, None])
def test_switch_takes_booleans_only(value):
    with pytest.raises(TypeError, match="set_fast_path takes True or False"):
        set_fast_path(value)


def _path_in_subprocess(value):
    code = (
        "import torch; from focal_eiou_d2.layers import select_path; "
        "print(select_path('eiou', torch.rand(600, 4), torch.rand(600, 4)))"
    )
    env = {**os.environ, "FOCAL_EIOU_D2_FAST_PATH": value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    "value,path", [("off", "reference"), ("0", "reference"), (" ON ", "compiled"), ("", "compiled")]
)
def test_environment_variable(value, path):
    result = _path_in_subprocess(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == path


def test_invalid_environment_variable_fails_at_import_naming_it():
    result = _path_in_subprocess("auto")
    assert result.returncode != 0
    assert "FOCAL_EIOU_D2_FAST_PATH='auto' is neither 'on'" in result.stderr


def test_compile_failure_falls_back_once_with_a_warning(monkeypatch, caplog):
    def failing_compiled(source, dtype, device):
        def kernel(pred, target, **params):
            raise RuntimeError("no working C++ compiler")

        return kernel

    monkeypatch.setattr(compiled_kernel, "_compiled", failing_compiled)
    monkeypatch.setitem(fast_path._state, "compile_error", None)
    pred, target = random_pairs(600, seed=19)
    with caplog.at_level(logging.WARNING, logger=fast_path.__name__):
        first = BOX_LOSSES["ciou"].fn(pred, target)
        second = BOX_LOSSES["ciou"].fn(pred, target)
    assert "no working C++ compiler" in str(compile_error())
    warnings = [record for record in caplog.records if record.name == fast_path.__name__]
    assert len(warnings) == 1 and "reference implementation" in warnings[0].getMessage()
    assert select_path("ciou", pred, target) == "reference"
    assert select_path("eiou", pred, target) == "reference"
    with fast_path_enabled(False):
        torch.testing.assert_close(first, BOX_LOSSES["ciou"].fn(pred, target), rtol=0, atol=0)
    torch.testing.assert_close(second, first, rtol=0, atol=0)
