import torch
from box_samples import head_inputs
from hypothesis import given, settings
from hypothesis import strategies as st

from focal_eiou_d2.layers import BOX_LOSSES, box_regression_loss, eiou_loss

BOX_LOSS_CALLS = [
    (name, head_inputs(name)) for name, spec in BOX_LOSSES.items() if spec.on_boxes
] + [
    ("focal_eiou", {"detach_weight": False}),
    ("focal_eiou", {"gamma": 2.0}),
]

coordinates = st.floats(-1e4, 1e4, allow_nan=False)
sides = st.one_of(st.just(0.0), st.floats(1e-3, 1e4), st.floats(1.0, 100.0))
boxes = st.builds(lambda x, y, w, h: (x, y, x + w, y + h), coordinates, coordinates, sides, sides)


def _nearby(box, dx, dy, dw, dh):
    x1, y1, x2, y2 = box
    return (x1 + dx, y1 + dy, max(x1 + dx, x2 + dw), max(y1 + dy, y2 + dh))


offsets = st.floats(-50.0, 50.0)
pairs = st.one_of(
    st.tuples(boxes, boxes),  # random, mostly far apart
    boxes.map(lambda box: (box, box)),  # identical
    st.tuples(boxes, offsets, offsets, offsets, offsets).map(
        lambda t: (_nearby(*t), t[0])  # overlapping or nearby
    ),
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(pairs, min_size=1, max_size=8))
def test_finite_non_negative_with_finite_gradients(pair_list):
    pred = torch.tensor([p for p, _ in pair_list], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([t for _, t in pair_list], dtype=torch.float64, requires_grad=True)
    for name, params in BOX_LOSS_CALLS:
        loss = box_regression_loss(name, pred, target, **params)
        grads = torch.autograd.grad(loss.sum(), [pred, target])
        assert torch.isfinite(loss).all(), name
        assert (loss >= -1e-12).all(), name
        assert all(torch.isfinite(grad).all() for grad in grads), name


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(pairs, min_size=1, max_size=8))
def test_eiou_range(pair_list):
    pred = torch.tensor([p for p, _ in pair_list], dtype=torch.float64)
    target = torch.tensor([t for _, t in pair_list], dtype=torch.float64)
    loss = eiou_loss(pred, target)
    assert ((loss >= -1e-12) & (loss < 4)).all()


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(boxes, min_size=1, max_size=8))
def test_zero_for_identical_boxes(box_list):
    box = torch.tensor(box_list, dtype=torch.float64)
    area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    for name, params in BOX_LOSS_CALLS:
        loss = box_regression_loss(name, box, box.clone(), **params)
        # 1 - IoU = eps / (area + eps): zero up to eps for boxes of area >= 1; a zero-area box has
        # IoU 0 with itself (documented), so its loss is not zero.
        assert (loss[area >= 1] <= 1e-6).all(), name
