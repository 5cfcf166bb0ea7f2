import pytest
import torch
from box_samples import head_inputs

from focal_eiou_d2.layers import BOX_LOSSES, box_regression_loss, eiou_loss

# (name, reduction) for every reduction each loss supports.
NAME_REDUCTIONS = [(name, r) for name, spec in BOX_LOSSES.items() for r in spec.reductions]

# Boxes about 600 px wide: w_c^2 = 600^2 > 65504 overflows float16.
WIDE_PRED = [[100.0, 100.0, 700.0, 400.0], [20.0, 50.0, 640.0, 300.0]]
WIDE_TARGET = [[150.0, 90.0, 700.0, 420.0], [0.0, 40.0, 700.0, 330.0]]


def test_float16_is_computed_in_float32():
    pred, target = torch.tensor(WIDE_PRED).half(), torch.tensor(WIDE_TARGET).half()
    loss = eiou_loss(pred, target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, eiou_loss(pred.float(), target.float()), rtol=0, atol=0)
    reference = eiou_loss(pred.double(), target.double())
    torch.testing.assert_close(loss, reference.float(), rtol=0, atol=1e-6)

    # Naively in float16, the width term (w - w_gt)^2 / w_c^2 of Eq. 7 becomes 0 since w_c^2 = inf.
    # It is (600 - 550)^2 / 600^2 and (620 - 700)^2 / 700^2, far above the 1e-6 agreement above.
    width_diff = (pred[:, 2] - pred[:, 0]) - (target[:, 2] - target[:, 0])
    enclosing_width = torch.maximum(pred[:, 2], target[:, 2]) - torch.minimum(
        pred[:, 0], target[:, 0]
    )
    assert (width_diff**2 / (enclosing_width**2 + 1e-7) == 0).all()
    assert ((width_diff.double() / enclosing_width.double()) ** 2 > 5e-3).all()


def test_bfloat16_is_computed_in_float32():
    pred, target = torch.tensor(WIDE_PRED).bfloat16(), torch.tensor(WIDE_TARGET).bfloat16()
    loss = eiou_loss(pred, target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, eiou_loss(pred.float(), target.float()), rtol=0, atol=0)


@pytest.mark.parametrize("name", list(BOX_LOSSES))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_output_and_gradients(name, dtype):
    pred = torch.tensor(WIDE_PRED, dtype=dtype, requires_grad=True)
    loss = box_regression_loss(
        name, pred, torch.tensor(WIDE_TARGET, dtype=dtype), **head_inputs(name)
    )
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", list(BOX_LOSSES))
def test_float64_stays_float64(name):
    pred = torch.tensor(WIDE_PRED, dtype=torch.float64)
    assert box_regression_loss(name, pred, pred + 1, **head_inputs(name)).dtype == torch.float64


@pytest.mark.parametrize("name", list(BOX_LOSSES))
def test_degenerate_boxes_are_finite(name):
    # Zero width, zero height, a point, identical zero-width boxes, and far apart huge boxes.
    pred = torch.tensor(
        [
            [1.0, 1.0, 1.0, 5.0],
            [1.0, 1.0, 5.0, 1.0],
            [2.0, 2.0, 2.0, 2.0],
            [3.0, 0.0, 3.0, 4.0],
            [0.0, 0.0, 1e4, 1e4],
        ],
        requires_grad=True,
    )
    target = torch.tensor(
        [
            [0.0, 0.0, 4.0, 4.0],
            [0.0, 0.0, 4.0, 4.0],
            [0.0, 0.0, 0.0, 0.0],
            [3.0, 0.0, 3.0, 4.0],
            [-2e4, -2e4, -1.9e4, -1.5e4],
        ],
        requires_grad=True,
    )
    loss = box_regression_loss(name, pred, target, **head_inputs(name))
    grads = torch.autograd.grad(loss.sum(), [pred, target])
    assert torch.isfinite(loss).all() and (loss >= 0).all()
    assert all(torch.isfinite(grad).all() for grad in grads)


@pytest.mark.parametrize("name,reduction", NAME_REDUCTIONS)
def test_empty_input(name, reduction):
    pred = torch.zeros(0, 4, requires_grad=True)
    loss = box_regression_loss(
        name, pred, torch.zeros(0, 4), reduction=reduction, **head_inputs(name)
    )
    if reduction == "none":
        assert loss.shape == (0,)
        return
    assert loss.shape == () and loss.item() == 0.0 and loss.grad_fn is not None
    (grad,) = torch.autograd.grad(loss, pred)
    assert grad.shape == (0, 4)


@pytest.mark.parametrize("name,reduction", NAME_REDUCTIONS)
def test_no_data_dependent_python_code(name, reduction):
    # Meta tensors carry no data: any .item() or branch on tensor values would raise here.
    pred = torch.empty(8, 4, device="meta", requires_grad=True)
    target = torch.empty(8, 4, device="meta")
    params = {"detach_weight": False} if name == "focal_eiou" else head_inputs(name)
    loss = box_regression_loss(name, pred, target, reduction=reduction, **params)
    loss.sum().backward()
    assert pred.grad.shape == (8, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,reduction", NAME_REDUCTIONS)
def test_no_host_device_sync_on_cuda(name, reduction):
    pred = torch.rand(1024, 4, device="cuda").cumsum(dim=-1).requires_grad_(True)
    target = torch.rand(1024, 4, device="cuda").cumsum(dim=-1)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = box_regression_loss(name, pred, target, reduction=reduction, **head_inputs(name))
        loss.sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
