"""Scene composition: occlusion handling, exact visible masks, object sizes."""

import numpy as np

from focal_eiou_d2.data import DEFAULT_SPEC, render_sample
from focal_eiou_d2.data.scene import (
    MIN_VISIBLE_PIXELS,
    SceneObject,
    pick_colour,
    render_scene,
    visible_objects,
)


def square(size, x0, y0, side):
    """Bool mask of shape (size, size) with a filled ``side`` x ``side`` square at (x0, y0)."""
    mask = np.zeros((size, size), dtype=bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask


def test_visible_objects_drops_hidden_and_clips_occluded():
    bottom = square(32, 0, 0, 10)  # half covered by `middle`: kept, left half visible
    hidden = square(32, 20, 20, 4)  # fully covered by `top`: dropped
    middle = square(32, 5, 0, 10)
    top = square(32, 18, 18, 8)
    kept = visible_objects([0, 1, 2, 3], [bottom, hidden, middle, top])
    assert [category for category, _, _ in kept] == [0, 2, 3]
    np.testing.assert_array_equal(kept[0][2], square(32, 0, 0, 10) & ~middle)
    np.testing.assert_array_equal(kept[1][2], middle)


def test_visible_objects_drops_mostly_covered():
    bottom = square(32, 0, 0, 10)
    top = square(32, 0, 0, 10)
    top[:, 7:] = False  # leaves 30 of 100 pixels of `bottom` visible: below 40%
    assert [c for c, _, _ in visible_objects([0, 1], [bottom, top])] == [1]


def test_scene_object_bbox_is_tight():
    mask = square(16, 3, 5, 4)
    mask[12, 14] = True
    assert SceneObject(0, mask).bbox() == [3, 5, 12, 8]


def test_pick_colour_keeps_contrast():
    avoid = np.array([[0.0, 0.0, 0.0], [255.0, 255.0, 255.0], [128.0, 128.0, 128.0]])
    colour = pick_colour(np.random.default_rng(0), avoid)
    assert np.abs(colour - avoid).max(axis=1).min() >= 60


def test_render_scene_masks_are_disjoint_and_large_enough():
    for seed in range(10):
        image, objects = render_scene(np.random.default_rng(seed), 128)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        assert 1 <= len(objects) <= 8
        masks = np.stack([obj.mask for obj in objects])
        assert masks.sum(axis=0).max() == 1
        assert masks.sum(axis=(1, 2)).min() >= MIN_VISIBLE_PIXELS


def test_render_sample_is_deterministic():
    a, objects_a = render_sample(DEFAULT_SPEC, "val", 7)
    b, objects_b = render_sample(DEFAULT_SPEC, "val", 7)
    np.testing.assert_array_equal(a, b)
    assert [o.bbox() for o in objects_a] == [o.bbox() for o in objects_b]
    assert not np.array_equal(a, render_sample(DEFAULT_SPEC, "train", 7)[0])


def test_default_val_populates_coco_size_bands_and_overlaps():
    """The first 60 images of the default val split, drawn like the whole split."""
    areas, overlapping = [], 0
    for index in range(60):
        _, objects = render_sample(DEFAULT_SPEC, "val", index)
        areas += [int(obj.mask.sum()) for obj in objects]
        boxes = np.array([obj.bbox() for obj in objects])
        overlapping += any(
            boxes_intersect(boxes[i], boxes[j])
            for i in range(len(boxes))
            for j in range(i + 1, len(boxes))
        )
    areas = np.array(areas)
    small, large = (areas < 32**2).sum(), (areas > 96**2).sum()
    assert small >= 0.2 * areas.size
    assert areas.size - small - large >= 0.2 * areas.size
    assert large >= 5
    assert overlapping >= 20


def boxes_intersect(a, b):
    """Whether two XYWH boxes share area."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
