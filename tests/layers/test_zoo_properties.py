"""Properties every loss of the box-loss zoo shares with the IoU family: finite values and
gradients on degenerate boxes, half precision computed in float32, reductions and empty inputs,
gradcheck, no data-dependent Python code, and parameter checks naming the parameter."""

import pytest
import torch
from box_samples import generic_pairs, random_pairs
from torch.autograd import gradcheck

from focal_eiou_d2.layers.alpha_iou import alpha_iou_loss, alpha_iou_per_pair
from focal_eiou_d2.layers.inner_iou import inner_iou_loss, inner_iou_per_pair
from focal_eiou_d2.layers.mpdiou import mpdiou_loss, mpdiou_per_pair
from focal_eiou_d2.layers.nwd import nwd_loss, nwd_per_pair
from focal_eiou_d2.layers.shape_iou import shape_iou_loss, shape_iou_per_pair
from focal_eiou_d2.layers.siou import siou_loss, siou_per_pair
from focal_eiou_d2.layers.wise_iou import (
    wiou_v1_loss,
    wiou_v1_per_pair,
    wiou_v3_loss,
    wiou_v3_per_pair,
)

# name: (loss, per-pair form, the parameters a call needs or varies).
ZOO = {
    "siou": (siou_loss, siou_per_pair, {}),
    "siou_theta2": (siou_loss, siou_per_pair, {"theta": 2.0}),
    "wiou_v1": (wiou_v1_loss, wiou_v1_per_pair, {}),
    "wiou_v3": (wiou_v3_loss, wiou_v3_per_pair, {"iou_loss_mean": 0.5}),
    "alpha_iou": (alpha_iou_loss, alpha_iou_per_pair, {}),
    "alpha_iou_half": (alpha_iou_loss, alpha_iou_per_pair, {"alpha": 0.5}),
    "mpdiou": (mpdiou_loss, mpdiou_per_pair, {"image_size": (480, 640)}),
    "inner_iou": (inner_iou_loss, inner_iou_per_pair, {}),
    "inner_ciou_wide": (inner_iou_loss, inner_iou_per_pair, {"ratio": 1.3, "base": "ciou"}),
    "inner_diou_wide": (inner_iou_loss, inner_iou_per_pair, {"ratio": 1.3, "base": "diou"}),
    "inner_eiou": (inner_iou_loss, inner_iou_per_pair, {"base": "eiou"}),
    "inner_siou": (inner_iou_loss, inner_iou_per_pair, {"base": "siou"}),
    "inner_giou": (inner_iou_loss, inner_iou_per_pair, {"ratio": 0.5, "base": "giou"}),
    "shape_iou": (shape_iou_loss, shape_iou_per_pair, {}),
    "shape_iou_scaled": (shape_iou_loss, shape_iou_per_pair, {"scale": 0.5}),
    "nwd": (nwd_loss, nwd_per_pair, {}),
}
# Those whose every term carries its full gradient (WIoU detaches parts, see test_zoo_wise_iou.py;
# CIoU its alpha, see test_gradcheck.py).
FULLY_DIFFERENTIABLE = [name for name in ZOO if "wiou" not in name and "ciou" not in name]

# Boxes about 600 px wide: w_c^2 = 600^2 > 65504 overflows float16.
WIDE_PRED = [[100.0, 100.0, 700.0, 400.0], [20.0, 50.0, 640.0, 300.0]]
WIDE_TARGET = [[150.0, 90.0, 700.0, 420.0], [0.0, 40.0, 700.0, 330.0]]

# Zero width, zero height, a point vs a point, identical zero-width boxes, far-apart huge boxes,
# the same centre with other sides, an inverted box, two inverted boxes, identical boxes, and a
# pair whose centres differ along y only.
DEGENERATE_PRED = [
    [1.0, 1.0, 1.0, 5.0],
    [1.0, 1.0, 5.0, 1.0],
    [2.0, 2.0, 2.0, 2.0],
    [3.0, 0.0, 3.0, 4.0],
    [0.0, 0.0, 1e4, 1e4],
    [1.0, 1.0, 3.0, 3.0],
    [3.0, 0.0, 1.0, 2.0],
    [5.0, 5.0, 1.0, 1.0],
    [2.0, 6.0, 3.0, 9.0],
    [0.0, 3.0, 4.0, 5.0],
]
DEGENERATE_TARGET = [
    [0.0, 0.0, 4.0, 4.0],
    [0.0, 0.0, 4.0, 4.0],
    [0.0, 0.0, 0.0, 0.0],
    [3.0, 0.0, 3.0, 4.0],
    [-2e4, -2e4, -1.9e4, -1.5e4],
    [0.0, 0.0, 4.0, 4.0],
    [0.0, 0.0, 4.0, 4.0],
    [4.0, 4.0, 2.0, 2.0],
    [2.0, 6.0, 3.0, 9.0],
    [0.0, 0.0, 4.0, 2.0],
]


def _call(name, pred, target, **kwargs):
    loss_fn, _, params = ZOO[name]
    return loss_fn(pred, target, **{**params, **kwargs})


@pytest.mark.parametrize("name", ZOO)
def test_degenerate_boxes_are_finite(name):
    pred = torch.tensor(DEGENERATE_PRED, requires_grad=True)
    target = torch.tensor(DEGENERATE_TARGET, requires_grad=True)
    loss = _call(name, pred, target)
    grads = torch.autograd.grad(loss.sum(), [pred, target])
    assert torch.isfinite(loss).all() and (loss >= 0).all()
    assert all(torch.isfinite(grad).all() for grad in grads)


@pytest.mark.parametrize("name", ZOO)
def test_identical_boxes_give_zero(name):
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [10.0, 20.0, 310.0, 90.0]], requires_grad=True)
    loss = _call(name, boxes, boxes.detach().clone())
    (grad,) = torch.autograd.grad(loss.sum(), boxes)
    torch.testing.assert_close(loss, torch.zeros_like(loss), rtol=0, atol=1e-7)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(name, dtype):
    pred = torch.tensor(WIDE_PRED, dtype=dtype, requires_grad=True)
    target = torch.tensor(WIDE_TARGET, dtype=dtype)
    loss = _call(name, pred, target)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    # The same (rounded) coordinates in float32 give the same values; float64 agrees closely.
    torch.testing.assert_close(loss, _call(name, pred.float(), target.float()), rtol=0, atol=0)
    reference = _call(name, pred.double(), target.double())
    torch.testing.assert_close(loss, reference.float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ZOO)
def test_float64_stays_float64_and_integers_compute_in_float32(name):
    pred = torch.tensor(WIDE_PRED, dtype=torch.float64)
    assert _call(name, pred, pred + 1).dtype == torch.float64
    ints = torch.tensor(WIDE_PRED, dtype=torch.int64)
    loss = _call(name, ints, ints + 3)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, _call(name, ints.float(), ints.float() + 3), rtol=0, atol=0)


@pytest.mark.parametrize("name", ZOO)
def test_per_pair_form_and_reductions(name):
    _, per_pair, params = ZOO[name]
    pred, target = random_pairs(64, seed=70)
    loss = _call(name, pred, target)
    assert loss.shape == (64,)
    torch.testing.assert_close(loss, per_pair(pred, target, **params), rtol=0, atol=0)
    torch.testing.assert_close(_call(name, pred, target, reduction="sum"), loss.sum())
    torch.testing.assert_close(_call(name, pred, target, reduction="mean"), loss.mean())
    # Batch dimensions and broadcasting, as in box_pair_geometry.
    batched = _call(name, pred.view(4, 16, 4), target.view(4, 16, 4))
    torch.testing.assert_close(batched, loss.view(4, 16), rtol=1e-12, atol=1e-14)
    one_target = _call(name, pred, target[0])
    torch.testing.assert_close(one_target, _call(name, pred, target[:1].expand(64, 4)))


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_empty_input(name, reduction):
    pred = torch.zeros(0, 4, requires_grad=True)
    loss = _call(name, pred, torch.zeros(0, 4), reduction=reduction)
    if reduction == "none":
        assert loss.shape == (0,)
        return
    assert loss.shape == () and loss.item() == 0.0 and loss.grad_fn is not None
    (grad,) = torch.autograd.grad(loss, pred)
    assert grad.shape == (0, 4)


@pytest.mark.parametrize("name", FULLY_DIFFERENTIABLE)
def test_gradcheck(name):
    def loss_fn(a, b):
        return _call(name, a, b)

    assert gradcheck(loss_fn, generic_pairs())
    pred, target = random_pairs(8, seed=71)
    assert gradcheck(loss_fn, (pred.requires_grad_(True), target.requires_grad_(True)))


@pytest.mark.parametrize("name", ZOO)
def test_no_data_dependent_python_code(name):
    # Meta tensors carry no data: any .item() or branch on tensor values would raise here.
    pred = torch.empty(8, 4, device="meta", requires_grad=True)
    target = torch.empty(8, 4, device="meta")
    _call(name, pred, target, reduction="mean").backward()
    assert pred.grad.shape == (8, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ZOO)
def test_no_host_device_sync_on_cuda(name):
    pred = torch.rand(64, 4, device="cuda").cumsum(dim=-1).requires_grad_(True)
    target = torch.rand(64, 4, device="cuda").cumsum(dim=-1)
    params = {}
    if name == "wiou_v3":
        params["iou_loss_mean"] = torch.tensor(0.5, device="cuda")
    if name == "mpdiou":
        params["image_size"] = torch.tensor([[480.0, 640.0]], device="cuda").expand(64, 2)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _call(name, pred, target, reduction="mean", **params).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


NAN, INF = float("nan"), float("inf")
BAD_PARAMETERS = [
    (siou_loss, {"theta": 0.5}, "theta"),
    (siou_loss, {"theta": INF}, "theta"),
    (shape_iou_loss, {"theta": NAN}, "theta"),
    (shape_iou_loss, {"scale": -0.5}, "scale"),
    (shape_iou_loss, {"scale": INF}, "scale"),
    (wiou_v3_loss, {"iou_loss_mean": 0.5, "alpha": 0.0}, "alpha"),
    (wiou_v3_loss, {"iou_loss_mean": 0.5, "delta": -3.0}, "delta"),
    (alpha_iou_loss, {"alpha": 0.0}, "alpha"),
    (alpha_iou_loss, {"alpha": NAN}, "alpha"),
    (inner_iou_loss, {"ratio": 0.0}, "ratio"),
    (inner_iou_loss, {"ratio": INF}, "ratio"),
    (nwd_loss, {"constant": 0.0}, "constant"),
    (nwd_loss, {"constant": -12.8}, "constant"),
    (siou_loss, {"eps": 0.0}, "eps"),
    (nwd_loss, {"reduction": "weighted"}, "reduction"),
    (mpdiou_loss, {"image_size": (480, 640), "reduction": "max"}, "reduction"),
]


@pytest.mark.parametrize("loss_fn,params,parameter", BAD_PARAMETERS)
def test_rejects_bad_parameters_by_name(loss_fn, params, parameter):
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(ValueError, match=parameter):
        loss_fn(boxes, boxes, **params)


@pytest.mark.parametrize(
    "loss_fn,params",
    [
        (siou_loss, {"theta": torch.tensor(4.0)}),
        (alpha_iou_loss, {"alpha": True}),
        (nwd_loss, {"constant": "12.8"}),
        (mpdiou_loss, {"image_size": (torch.tensor(480), 640)}),
    ],
)
def test_rejects_non_numbers_with_type_error(loss_fn, params):
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(TypeError):
        loss_fn(boxes, boxes, **params)
