import math

import pytest
import torch
from torch.nn.functional import smooth_l1_loss as torch_smooth_l1_loss

from focal_eiou_d2.layers import focal_l1_loss, smooth_l1_loss

BETAS = [1 / math.e, 0.5, 0.8, 1.0]


def _loss_and_grad(x, beta):
    x = x.clone().requires_grad_(True)
    loss = focal_l1_loss(x, torch.zeros_like(x), beta=beta)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


@pytest.mark.parametrize("beta", BETAS)
def test_values_match_eq_9(beta):
    alpha = math.e * beta
    x = torch.tensor([0.05, 0.3, 0.7, 1.0, 1.5, 4.0], dtype=torch.float64)
    inner = -alpha * x**2 * (2 * torch.log(beta * x) - 1) / 4
    outer = -alpha * math.log(beta) * x + alpha * (2 * math.log(beta) + 1) / 4
    expected = torch.where(x <= 1, inner, outer)
    torch.testing.assert_close(focal_l1_loss(x, torch.zeros_like(x), beta=beta), expected)
    # Signed errors: only |input - target| matters.
    torch.testing.assert_close(focal_l1_loss(-x + 2, torch.full_like(x, 2.0), beta=beta), expected)


@pytest.mark.parametrize("beta", BETAS)
def test_gradient_peaks_at_exactly_one(beta):
    peak = 1 / (math.e * beta)
    grid = torch.linspace(0, 3, 300_001, dtype=torch.float64)
    _, grad = _loss_and_grad(grid, beta)
    assert grad.max().item() <= 1 + 1e-12
    assert abs(grid[grad.argmax()].item() - peak) <= 1e-5
    _, grad_at_peak = _loss_and_grad(torch.tensor([peak], dtype=torch.float64), beta)
    assert grad_at_peak.item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("beta", BETAS)
def test_loss_and_gradient_continuous_at_one(beta):
    x = torch.tensor([1 - 1e-9, 1.0, 1 + 1e-9], dtype=torch.float64)
    loss, grad = _loss_and_grad(x, beta)
    assert (loss.max() - loss.min()).item() < 1e-8
    # Eq. 8: the gradient is -alpha * ln(beta) on both sides.
    torch.testing.assert_close(grad, torch.full_like(grad, -math.e * beta * math.log(beta)))


@pytest.mark.parametrize("beta", BETAS)
def test_non_negative_and_increasing(beta):
    loss, grad = _loss_and_grad(torch.linspace(0, 5, 5001, dtype=torch.float64), beta)
    assert (loss >= 0).all() and (loss.diff() >= 0).all() and (grad >= 0).all()


def test_zero_error_is_finite_with_zero_gradient():
    for dtype in (torch.float32, torch.float64):
        x = torch.zeros(3, dtype=dtype, requires_grad=True)
        loss = focal_l1_loss(x, torch.zeros_like(x))
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert (loss == 0).all() and (grad == 0).all()


@pytest.mark.parametrize("beta", [0.2, 1 / math.e - 1e-6, 1.01, 2.0])
def test_beta_outside_range_is_rejected(beta):
    x = torch.ones(2)
    with pytest.raises(ValueError, match=r"\[1/e, 1\]"):
        focal_l1_loss(x, x, beta=beta)


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_smooth_l1_matches_torch(beta):
    generator = torch.Generator().manual_seed(0)
    input, target = 3 * torch.randn(2, 100, 4, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(
        smooth_l1_loss(input, target, beta=beta),
        torch_smooth_l1_loss(input, target, reduction="none", beta=beta),
    )


def test_smooth_l1_small_beta_is_l1():
    input, target = torch.randn(2, 50, 4, dtype=torch.float64)
    for beta in (0.0, 1e-6):
        torch.testing.assert_close(smooth_l1_loss(input, target, beta=beta), (input - target).abs())
