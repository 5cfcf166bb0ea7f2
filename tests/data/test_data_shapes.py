"""Drawing primitives: masks stay inside their box and, for box-filling shapes, touch its sides."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focal_eiou_d2.data.shapes import CLASS_COLORS, CLASS_NAMES, DRAWERS, draw_shape

SIZE = 96
# Shapes whose drawing touches all four sides of the box (the star depends on its rotation).
BOX_FILLING = [c for c, name in enumerate(CLASS_NAMES) if name != "star"]


def mask_box(mask):
    """Inclusive ``(x0, y0, x1, y1)`` of the True pixels of a (H, W) mask."""
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max(), ys.max()


boxes = st.tuples(
    st.integers(0, SIZE - 8), st.integers(0, SIZE - 8), st.integers(3, 80), st.integers(3, 80)
).map(lambda b: (b[0], b[1], min(SIZE - 1, b[0] + b[2]), min(SIZE - 1, b[1] + b[3])))


def test_class_tables_align():
    assert len(CLASS_NAMES) == len(DRAWERS) == len(CLASS_COLORS) >= 5
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)


@settings(max_examples=40, deadline=None)
@given(box=boxes, seed=st.integers(0, 2**16))
@pytest.mark.parametrize("category", range(len(CLASS_NAMES)))
def test_mask_inside_box(category, box, seed):
    mask = draw_shape(category, box, SIZE, np.random.default_rng(seed))
    assert mask.dtype == bool and mask.shape == (SIZE, SIZE) and mask.any()
    x0, y0, x1, y1 = mask_box(mask)
    assert x0 >= box[0] and y0 >= box[1] and x1 <= box[2] and y1 <= box[3]


@settings(max_examples=40, deadline=None)
@given(box=boxes, seed=st.integers(0, 2**16))
@pytest.mark.parametrize("category", BOX_FILLING)
def test_mask_touches_box_sides(category, box, seed):
    mask = draw_shape(category, box, SIZE, np.random.default_rng(seed))
    np.testing.assert_allclose(mask_box(mask), box, atol=1)


@pytest.mark.parametrize("name", ["frame", "ring"])
def test_outlines_have_holes(name):
    box = (10, 20, 80, 70)
    mask = draw_shape(CLASS_NAMES.index(name), box, SIZE, np.random.default_rng(0))
    assert not mask[45, 45]  # the centre is background
    assert mask.sum() < 0.75 * (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


def test_filled_rectangle_is_exact():
    mask = draw_shape(CLASS_NAMES.index("rectangle"), (3, 4, 12, 6), SIZE, None)
    assert mask.sum() == 10 * 3 and mask[4:7, 3:13].all()
