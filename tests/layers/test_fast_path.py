"""The compiled fast path computes exactly the reference losses, and is chosen when it should be.

Compilation dominates the cost of this file: each fused loss compiles once in float64 (dynamic
batch size, eps and gamma) and every test reuses it; focal_eiou compiles a second time for
non-default gammas and eiou also compiles in float32.
"""

import inspect
import logging
import os
import subprocess
import sys

import pytest
import torch
from box_samples import random_pairs

from focal_eiou_d2.layers import (
    BOX_LOSSES,
    FUSED_LOSSES,
    box_regression_loss,
    compile_error,
    fast_path,
    path_counts,
    select_path,
    set_fast_path,
)

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


def _assert_same(ours, reference, **tolerance):
    for mine, theirs in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine, theirs, **(tolerance or TOLERANCE))


def _compiled_calls():
    return path_counts().get("compiled", 0)


@pytest.mark.parametrize("name,params", CALLS)
def test_fused_math_matches_reference_eagerly(name, params):
    # The closed form itself, without compilation; the target gradient swaps the boxes.
    pred, target = all_pairs()
    kernel = FUSED_LOSSES[name]
    loss, pred_grad = kernel(pred, target, **params)
    target_grad = kernel(target, pred, **params)[1]
    reference = _value_and_grads(lambda a, b: BOX_LOSSES[name].fn(a, b, **params), pred, target)
    _assert_same((loss, pred_grad, target_grad), reference)


@pytest.mark.parametrize("name,params", CALLS)
def test_compiled_path_matches_reference(name, params):
    pred, target = all_pairs()
    assert select_path(name, pred, target, **params) == "compiled"
    before = _compiled_calls()
    ours = _value_and_grads(lambda a, b: box_regression_loss(name, a, b, **params), pred, target)
    assert _compiled_calls() == before + 1, compile_error()
    reference = _value_and_grads(lambda a, b: BOX_LOSSES[name].fn(a, b, **params), pred, target)
    _assert_same(ours, reference)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(FUSED_LOSSES))
def test_compiled_path_on_cuda_matches_reference(name, dtype):
    pred, target = (boxes.to("cuda", dtype) for boxes in all_pairs())
    assert select_path(name, pred, target) == "compiled"
    before = _compiled_calls()
    ours = _value_and_grads(lambda a, b: box_regression_loss(name, a, b), pred, target)
    assert _compiled_calls() == before + 1, compile_error()
    reference = _value_and_grads(BOX_LOSSES[name].fn, pred, target)
    tolerance = TOLERANCE if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    _assert_same(ours, reference, **tolerance)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("name", ["giou", "focal_eiou"])
def test_compiled_reductions_and_pred_only_gradient(name, reduction):
    pred, target = random_pairs(1000, seed=12)
    pred.requires_grad_(True)
    before = _compiled_calls()
    loss = box_regression_loss(name, pred, target, reduction=reduction)
    (grad,) = torch.autograd.grad(loss, pred)
    assert _compiled_calls() == before + 1
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
        before = _compiled_calls()
        ours = box_regression_loss("diou", view, target[:, :size], eps=eps)
        assert _compiled_calls() == before + 1 and ours.shape == (2, size)
        reference = BOX_LOSSES["diou"].fn(view, target[:, :size], eps=eps)
        _assert_same(
            (ours, *torch.autograd.grad(ours.sum(), wide)),
            (reference, *torch.autograd.grad(reference.sum(), wide)),
        )
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= graphs + 1


def test_new_gamma_and_eps_do_not_recompile():
    pred, target = random_pairs(300, seed=21)
    box_regression_loss("focal_eiou", pred, target, gamma=1.0)  # compiles the non-default gamma
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for gamma, eps in [(0.25, 1e-9), (1.5, 1e-7), (2.0, 1e-5)]:
        ours = box_regression_loss("focal_eiou", pred, target, gamma=gamma, eps=eps)
        reference = BOX_LOSSES["focal_eiou"].fn(pred, target, gamma=gamma, eps=eps)
        torch.testing.assert_close(ours, reference, **TOLERANCE)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_float32_and_half_precision(dtype):
    # Half precision is upcast to float32 as the reference does; the gradient keeps the dtype.
    pred, target = (boxes.to(dtype) for boxes in random_pairs(3000, seed=14))
    before = _compiled_calls()
    ours = _value_and_grads(lambda a, b: box_regression_loss("eiou", a, b), pred, target)
    assert _compiled_calls() == before + 1
    reference = _value_and_grads(BOX_LOSSES["eiou"].fn, pred, target)
    assert ours[0].dtype == torch.float32 and ours[1].dtype == dtype
    _assert_same(ours, reference, rtol=1e-3 if dtype == torch.float16 else 1e-4, atol=1e-5)


def test_autocast_leaves_the_loss_in_float32():
    pred, target = (boxes.float() for boxes in random_pairs(1000, seed=20))
    before = _compiled_calls()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = _value_and_grads(lambda a, b: box_regression_loss("eiou", a, b), pred, target)
    assert _compiled_calls() == before + 1
    reference = _value_and_grads(BOX_LOSSES["eiou"].fn, pred, target)
    _assert_same(ours, reference, rtol=1e-4, atol=1e-5)


def test_double_backward_raises():
    pred, target = random_pairs(600, seed=15)
    pred.requires_grad_(True)
    loss = box_regression_loss("eiou", pred, target).sum()
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(loss, pred, create_graph=True)


def test_retained_graph_backward_twice_with_weights():
    """The first backward gives its buffers away (scaled in place); the second recomputes them.
    Changing the first result in place must not change the second."""
    pred, target = random_pairs(600, seed=17)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    weights = torch.rand(600, generator=torch.Generator().manual_seed(18), dtype=torch.float64)
    before = _compiled_calls()
    loss = box_regression_loss("focal_eiou", pred, target)
    assert _compiled_calls() == before + 1
    first = torch.autograd.grad(loss, [pred, target], weights, retain_graph=True)
    expected = [grad.clone() for grad in first]
    for grad in first:
        grad.zero_()
    second = torch.autograd.grad(loss, [pred, target], weights)
    reference_loss = BOX_LOSSES["focal_eiou"].fn(pred, target)
    reference = torch.autograd.grad(reference_loss, [pred, target], weights)
    _assert_same(second, expected)
    _assert_same(expected, reference)


@pytest.mark.parametrize("scale", [1.0, 0.25, -3.0])
def test_upstream_gradient_of_a_scaled_sum(scale):
    # The upstream gradient of scale * loss.sum() reaches the backward as one value expanded to N
    # (stride 0): scaled as a scalar, or not at all for 1.
    pred, target = random_pairs(600, seed=20)
    pred.requires_grad_(True)
    before = _compiled_calls()
    ours = torch.autograd.grad(scale * box_regression_loss("diou", pred, target).sum(), pred)
    assert _compiled_calls() == before + 1
    reference = torch.autograd.grad(scale * BOX_LOSSES["diou"].fn(pred, target).sum(), pred)
    _assert_same(ours, reference)


def _reference_cases():
    pred, target = random_pairs(600, seed=16)
    few = fast_path.MIN_PAIRS - 1
    return [
        ("integer boxes", "eiou", pred.round().long(), target.round().long(), {}),
        ("broadcast target", "eiou", pred.reshape(2, 300, 4), target[:300], {}),
        ("mixed dtypes", "giou", pred, target.float(), {}),
        ("weighted reduction", "focal_eiou", pred, target, {"reduction": "weighted"}),
        ("undetached weight", "focal_eiou", pred, target, {"detach_weight": False}),
        ("no fast path", "focal_eiou_star", pred, target, {}),
        ("too few pairs", "ciou", pred[:few], target[:few], {}),
        ("empty", "ciou", pred[:0], target[:0], {}),
        ("meta device", "iou", pred.to("meta"), target.to("meta"), {}),
    ]


@pytest.mark.parametrize("case", _reference_cases(), ids=lambda case: case[0])
def test_reference_path_where_unsupported(case):
    _, name, pred, target, params = case
    assert select_path(name, pred, target, **params) == "reference"
    before = path_counts().get("reference", 0)
    box_regression_loss(name, pred, target, **params)
    assert path_counts().get("reference", 0) == before + 1


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


def test_environment_variable_switches_off():
    code = (
        "import torch; from focal_eiou_d2.layers import select_path; "
        "print(select_path('eiou', torch.rand(600, 4), torch.rand(600, 4)))"
    )
    env = {**os.environ, "FOCAL_EIOU_D2_FAST_PATH": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "reference"


def test_compile_failure_falls_back_once_with_a_warning(monkeypatch, caplog):
    def failing_kernel(name, dtype, device):
        def kernel(pred, target, **params):
            raise RuntimeError("no working C++ compiler")

        return kernel

    monkeypatch.setattr(fast_path, "_compiled_kernel", failing_kernel)
    monkeypatch.setitem(fast_path._state, "compile_error", None)
    pred, target = random_pairs(600, seed=19)
    with caplog.at_level(logging.WARNING, logger=fast_path.__name__):
        first = box_regression_loss("ciou", pred, target)
        second = box_regression_loss("ciou", pred, target)
    assert "no working C++ compiler" in str(compile_error())
    warnings = [record for record in caplog.records if record.name == fast_path.__name__]
    assert len(warnings) == 1 and "reference path" in warnings[0].getMessage()
    assert select_path("ciou", pred, target) == "reference"
    torch.testing.assert_close(first, BOX_LOSSES["ciou"].fn(pred, target), rtol=0, atol=0)
    torch.testing.assert_close(second, first, rtol=0, atol=0)


@pytest.mark.parametrize("name", FUSED_LOSSES)
def test_fused_defaults_match_reference(name):
    def defaults(fn):
        parameters = inspect.signature(fn).parameters.values()
        return {p.name: p.default for p in parameters if p.default is not p.empty}

    fused, reference = defaults(FUSED_LOSSES[name]), defaults(BOX_LOSSES[name].fn)
    assert fused == {key: reference[key] for key in fused}
