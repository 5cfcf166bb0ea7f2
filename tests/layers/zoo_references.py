"""Straight-line float64 references of the box-loss zoo, one pair at a time in plain Python.

Written from the papers' formulas with the `math` module only (no torch, no eps, arcsin taken
literally), so that they share no code with focal_eiou_d2.layers. Boxes are XYXY sequences of four
numbers; each function returns the loss of one pair as a float.
"""

import math


def _sides(box):
    x1, y1, x2, y2 = box
    return x2 - x1, y2 - y1


def _centre(box):
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y1 + y2) / 2


def _intersection(pred, target):
    overlap_w = max(0.0, min(pred[2], target[2]) - max(pred[0], target[0]))
    overlap_h = max(0.0, min(pred[3], target[3]) - max(pred[1], target[1]))
    return overlap_w * overlap_h


def _union(pred, target):
    (w, h), (wg, hg) = _sides(pred), _sides(target)
    return w * h + wg * hg - _intersection(pred, target)


def iou(pred, target):
    """Intersection over union of two valid boxes."""
    return _intersection(pred, target) / _union(pred, target)


def enclosing_sides(pred, target):
    """(C_w, C_h) of the smallest box enclosing both."""
    return (
        max(pred[2], target[2]) - min(pred[0], target[0]),
        max(pred[3], target[3]) - min(pred[1], target[1]),
    )


def centre_offset(pred, target):
    """(dx, dy): the target's centre minus the prediction's."""
    (cx, cy), (gx, gy) = _centre(pred), _centre(target)
    return gx - cx, gy - cy


def diou(pred, target):
    """1 - IoU + rho^2 / c^2."""
    dx, dy = centre_offset(pred, target)
    cw, ch = enclosing_sides(pred, target)
    return 1 - iou(pred, target) + (dx * dx + dy * dy) / (cw * cw + ch * ch)


def giou(pred, target):
    """1 - IoU + |C - U| / |C|."""
    cw, ch = enclosing_sides(pred, target)
    return 1 - iou(pred, target) + (cw * ch - _union(pred, target)) / (cw * ch)


def ciou(pred, target):
    """DIoU + alpha v, alpha = v / (1 - IoU + v)."""
    (w, h), (wg, hg) = _sides(pred), _sides(target)
    v = 4 / math.pi**2 * (math.atan(wg / hg) - math.atan(w / h)) ** 2
    alpha = v / (1 - iou(pred, target) + v)
    return diou(pred, target) + alpha * v


def eiou(pred, target):
    """DIoU + (w - w_gt)^2 / C_w^2 + (h - h_gt)^2 / C_h^2."""
    (w, h), (wg, hg) = _sides(pred), _sides(target)
    cw, ch = enclosing_sides(pred, target)
    return diou(pred, target) + (w - wg) ** 2 / cw**2 + (h - hg) ** 2 / ch**2


def siou_shape_cost(pred, target, theta=4.0, weight_w=1.0, weight_h=1.0):
    """Omega = sum_t (1 - e^-omega_t)^theta, omega_w = weight_w |w - w_gt| / max(w, w_gt)."""
    (w, h), (wg, hg) = _sides(pred), _sides(target)
    omega_w = weight_w * abs(w - wg) / max(w, wg)
    omega_h = weight_h * abs(h - hg) / max(h, hg)
    return (1 - math.exp(-omega_w)) ** theta + (1 - math.exp(-omega_h)) ** theta


def siou(pred, target, theta=4.0):
    """SIoU as the paper writes it: Lambda = 1 - 2 sin^2(arcsin(x) - pi / 4), x = |dy| / sigma."""
    dx, dy = centre_offset(pred, target)
    sigma = math.hypot(dx, dy)
    angle = 1 - 2 * math.sin(math.asin(abs(dy) / sigma) - math.pi / 4) ** 2
    gamma = 2 - angle
    cw, ch = enclosing_sides(pred, target)
    distance = (1 - math.exp(-gamma * (dx / cw) ** 2)) + (1 - math.exp(-gamma * (dy / ch) ** 2))
    return 1 - iou(pred, target) + (distance + siou_shape_cost(pred, target, theta)) / 2


def shape_iou(pred, target, scale=0.0, theta=4.0):
    """Shape-IoU with ww = 2 w_gt^s / (w_gt^s + h_gt^s), hh = 2 h_gt^s / (w_gt^s + h_gt^s)."""
    wg, hg = _sides(target)
    ww = 2 * wg**scale / (wg**scale + hg**scale)
    hh = 2 * hg**scale / (wg**scale + hg**scale)
    dx, dy = centre_offset(pred, target)
    cw, ch = enclosing_sides(pred, target)
    distance = (hh * dx * dx + ww * dy * dy) / (cw * cw + ch * ch)
    shape = siou_shape_cost(pred, target, theta, weight_w=hh, weight_h=ww)
    return 1 - iou(pred, target) + distance + 0.5 * shape


def wiou_v1(pred, target):
    """exp(rho^2 / (C_w^2 + C_h^2)) * (1 - IoU)."""
    dx, dy = centre_offset(pred, target)
    cw, ch = enclosing_sides(pred, target)
    return math.exp((dx * dx + dy * dy) / (cw * cw + ch * ch)) * (1 - iou(pred, target))


def wiou_v3(pred, target, iou_loss_mean, alpha=1.9, delta=3.0):
    """r * WIoU v1, r = beta / (delta alpha^(beta - delta)), beta = (1 - IoU) / mean."""
    beta = (1 - iou(pred, target)) / iou_loss_mean
    return beta / (delta * alpha ** (beta - delta)) * wiou_v1(pred, target)


def alpha_iou(pred, target, alpha=3.0):
    """1 - IoU^alpha."""
    return 1 - iou(pred, target) ** alpha


def mpdiou(pred, target, height, width):
    """1 - IoU + d1^2 / (W^2 + H^2) + d2^2 / (W^2 + H^2), corners matched."""
    d1_sq = (pred[0] - target[0]) ** 2 + (pred[1] - target[1]) ** 2
    d2_sq = (pred[2] - target[2]) ** 2 + (pred[3] - target[3]) ** 2
    return 1 - iou(pred, target) + d1_sq / (width**2 + height**2) + d2_sq / (width**2 + height**2)


def inner_boxes(box, ratio):
    """The auxiliary box: same centre, sides times ratio."""
    (cx, cy), (w, h) = _centre(box), _sides(box)
    return (cx - w * ratio / 2, cy - h * ratio / 2, cx + w * ratio / 2, cy + h * ratio / 2)


def inner_iou(pred, target, ratio=0.7, base="iou"):
    """L_base + IoU - IoU_inner."""
    base_loss = {
        "iou": lambda a, b: 1 - iou(a, b),
        "giou": giou,
        "diou": diou,
        "ciou": ciou,
        "eiou": eiou,
        "siou": siou,
    }[base](pred, target)
    value = iou(pred, target)
    return base_loss + value - iou(inner_boxes(pred, ratio), inner_boxes(target, ratio))


def nwd(pred, target, constant=12.8):
    """1 - exp(-sqrt(W_2^2) / C), W_2^2 over (cx, cy, w / 2, h / 2)."""
    (cx, cy), (w, h) = _centre(pred), _sides(pred)
    (gx, gy), (wg, hg) = _centre(target), _sides(target)
    distance_sq = (cx - gx) ** 2 + (cy - gy) ** 2 + (w / 2 - wg / 2) ** 2 + (h / 2 - hg / 2) ** 2
    return 1 - math.exp(-math.sqrt(distance_sq) / constant)


def per_pair(reference, pred, target, **params):
    """``reference`` applied to each row of two (N, 4) float64 tensors, as a list of floats."""
    return [reference(a, b, **params) for a, b in zip(pred.tolist(), target.tolist(), strict=True)]
