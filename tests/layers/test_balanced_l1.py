"""BalancedL1 (Libra R-CNN, Eq. 8-9 there) against values and derivatives derived by hand.

With the defaults alpha = 0.5, gamma = 1.5, beta = 1: b = e^(gamma / alpha) - 1 = e^3 - 1, and
for x < 1 the loss is L(x) = alpha / b * (b x + 1) * ln(b x + 1) - alpha x, with derivative
L'(x) = alpha * ln(b x + 1) + alpha - alpha = alpha * ln(b x + 1). Points where b x + 1 is a power
of e make the logarithm an integer.
"""

import math

import pytest
import torch
from torch.autograd import gradcheck

from focal_eiou_d2.layers import BOX_LOSSES, balanced_l1_loss, box_regression_loss

ALPHA, GAMMA = 0.5, 1.5
B = math.e**3 - 1  # alpha * ln(b + 1) = 0.5 * 3 = gamma


def _loss_and_grad(x, **params):
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = balanced_l1_loss(x, torch.zeros_like(x), **params)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


def test_values_by_hand():
    points = [
        # x = 0: (0 + 1) * ln(1) = 0.
        (0.0, 0.0),
        # b x + 1 = e: L = alpha / b * e * 1 - alpha * (e - 1) / b = alpha / b.
        ((math.e - 1) / B, ALPHA / B),
        # b x + 1 = e^2: L = alpha / b * e^2 * 2 - alpha * (e^2 - 1) / b = alpha (e^2 + 1) / b.
        ((math.e**2 - 1) / B, ALPHA * (math.e**2 + 1) / B),
        # x = beta = 1 is on the linear side: gamma + gamma / b - alpha = 1 + 1.5 / b.
        (1.0, 1 + 1.5 / B),
        # x = 2: 2 gamma + gamma / b - alpha = 2.5 + 1.5 / b.
        (2.0, 2.5 + 1.5 / B),
    ]
    # About 0, 0.0262, 0.2198, 1.0786 and 2.5786.
    loss, _ = _loss_and_grad([x for x, _ in points])
    expected = torch.tensor([value for _, value in points], dtype=torch.float64)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-15)


def test_derivatives_by_hand():
    # L'(x) = alpha * ln(b x + 1): 0.5 * 1 and 0.5 * 2 at the points above; gamma beyond beta.
    x = [(math.e - 1) / B, (math.e**2 - 1) / B, 1.5, 3.0]
    _, grad = _loss_and_grad(x)
    expected = torch.tensor([0.5, 1.0, GAMMA, GAMMA], dtype=torch.float64)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


def test_only_the_distance_counts():
    input = torch.tensor([0.3, -0.3, 2.0], dtype=torch.float64)
    target = torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)
    loss = balanced_l1_loss(input, target)
    assert loss[0] == loss[1]
    two, zero = torch.tensor([2.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(loss[2], balanced_l1_loss(two, zero))


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha,gamma", [(ALPHA, GAMMA), (0.25, 1.0), (1.0, 0.5)])
def test_continuous_at_beta(alpha, gamma, beta):
    # Inner at x = beta: alpha / b (b beta + 1) ln(b + 1) - alpha beta
    # = (b beta + 1) gamma / b - alpha beta = gamma beta + gamma / b - alpha beta = outer(beta).
    below, above = beta * (1 - 1e-12), beta * (1 + 1e-12)
    loss, _ = _loss_and_grad([below, beta, above], alpha=alpha, gamma=gamma, beta=beta)
    b = math.expm1(gamma / alpha)
    expected = gamma * beta + gamma / b - alpha * beta
    torch.testing.assert_close(loss, torch.full((3,), expected, dtype=torch.float64))


@pytest.mark.parametrize("alpha,gamma", [(ALPHA, GAMMA), (0.25, 1.0), (1.0, 0.5)])
def test_derivative_continuous_at_beta_one(alpha, gamma):
    # alpha * ln(b * 1 + 1) = gamma: the inner derivative meets the outer one.
    _, grad = _loss_and_grad([1 - 1e-9, 1 + 1e-9], alpha=alpha, gamma=gamma)
    torch.testing.assert_close(grad, torch.full((2,), gamma, dtype=torch.float64))


def test_derivative_jumps_at_other_betas_as_published():
    # Below beta: alpha ln(b + 1) + alpha (b beta + 1) / (b beta + beta) - alpha
    # = gamma + alpha ((b beta + 1) / (beta (b + 1)) - 1); 0.0249 above gamma for beta = 0.5.
    beta = 0.5
    _, grad = _loss_and_grad([beta * (1 - 1e-12), beta * (1 + 1e-12)], beta=beta)
    inner = GAMMA + ALPHA * ((B * beta + 1) / (beta * (B + 1)) - 1)
    expected = torch.tensor([inner, GAMMA], dtype=torch.float64)
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=0)


def test_large_errors_keep_finite_gradients():
    # The unselected inner branch must not turn 0 * inf into NaN in the gradient.
    loss, grad = _loss_and_grad([1e30, 1e300])
    assert torch.isfinite(loss).all() and torch.equal(grad, torch.full((2,), GAMMA).double())


def test_half_precision_is_computed_in_float32():
    x = torch.tensor([0.2, 3.0], dtype=torch.float16)
    loss = balanced_l1_loss(x, torch.zeros_like(x))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, balanced_l1_loss(x.float(), torch.zeros(2)))


@pytest.mark.parametrize("params", [{}, {"alpha": 0.3, "gamma": 1.2, "beta": 0.7}])
def test_gradcheck(params):
    # Errors away from the kinks of |x| (0) and of the loss (beta).
    input = torch.tensor(
        [[0.05, 0.42, 0.9, 1.7], [-2.5, -0.6, 0.3, -0.2]], dtype=torch.float64, requires_grad=True
    )
    target = torch.zeros_like(input, requires_grad=True)
    assert gradcheck(lambda a, b: balanced_l1_loss(a, b, **params), (input, target))


def test_registered_as_a_coordinate_loss():
    spec = BOX_LOSSES["balanced_l1"]
    assert not spec.on_boxes and spec.fn is balanced_l1_loss
    assert dict(spec.defaults) == {"alpha": 0.5, "gamma": 1.5, "beta": 1.0}
    deltas = torch.tensor([[0.1, -0.4, 1.5, 0.0], [2.0, 0.2, -0.3, 0.7]], dtype=torch.float64)
    summed = box_regression_loss("balanced_l1", deltas, torch.zeros_like(deltas), gamma=1.0)
    expected = balanced_l1_loss(deltas, torch.zeros_like(deltas), gamma=1.0).sum(dim=-1)
    torch.testing.assert_close(summed, expected)
