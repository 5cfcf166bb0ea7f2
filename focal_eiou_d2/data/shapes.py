"""Drawing primitives: one binary mask per shape class.

Every shape is drawn without anti-aliasing (``cv2.LINE_8``) into a ``uint8`` mask, so the mask is
the exact set of pixels the object covers. A shape is drawn inside an integer box
``(x0, y0, x1, y1)`` whose corners are inclusive pixel indices; most shapes touch all four sides of
that box, the star touches what its rotation allows.
"""

import cv2
import numpy as np

# Sub-pixel precision of the cv2 drawing calls: coordinates are scaled by 2**SHIFT.
SHIFT = 4


def _fixed(points):
    """Converts float pixel coordinates to cv2's fixed-point integers.

    Args:
        points: array-like of shape (..., 2) or (2,), in pixels.

    Returns:
        np.ndarray of int32 with the same shape, scaled by ``2**SHIFT``.
    """
    return np.round(np.asarray(points, dtype=np.float64) * (1 << SHIFT)).astype(np.int32)


def _fill_polygon(mask, points):
    """Fills a polygon given by float vertices of shape (N, 2) into ``mask`` (H, W)."""
    cv2.fillPoly(mask, [_fixed(points)], 1, lineType=cv2.LINE_8, shift=SHIFT)


def _fill_ellipse(mask, x0, y0, x1, y1):
    """Fills the axis-aligned ellipse inscribed in the inclusive box into ``mask`` (H, W)."""
    centre = _fixed(((x0 + x1) / 2, (y0 + y1) / 2))
    axes = _fixed(((x1 - x0) / 2, (y1 - y0) / 2))
    cv2.ellipse(mask, tuple(centre), tuple(axes), 0, 0, 360, 1, -1, cv2.LINE_8, SHIFT)


def _thickness(rng, x0, y0, x1, y1):
    """Stroke width of an outlined shape: 10-25% of its short side, at least 2 px."""
    short_side = min(x1 - x0, y1 - y0) + 1
    return max(2, int(round(short_side * rng.uniform(0.1, 0.25))))


def draw_rectangle(mask, x0, y0, x1, y1, rng):
    """Filled rectangle. ``mask`` (H, W) uint8 is drawn in place; ``rng`` is unused."""
    mask[y0 : y1 + 1, x0 : x1 + 1] = 1


def draw_frame(mask, x0, y0, x1, y1, rng):
    """Outlined rectangle whose stroke width is drawn from ``rng``. Draws into ``mask`` (H, W)."""
    width = _thickness(rng, x0, y0, x1, y1)
    mask[y0 : y1 + 1, x0 : x1 + 1] = 1
    mask[y0 + width : y1 + 1 - width, x0 + width : x1 + 1 - width] = 0


def draw_ellipse(mask, x0, y0, x1, y1, rng):
    """Filled axis-aligned ellipse. ``mask`` (H, W) uint8 is drawn in place; ``rng`` is unused."""
    _fill_ellipse(mask, x0, y0, x1, y1)


def draw_ring(mask, x0, y0, x1, y1, rng):
    """Outlined ellipse (elliptical ring) whose stroke width is drawn from ``rng``."""
    width = _thickness(rng, x0, y0, x1, y1)
    _fill_ellipse(mask, x0, y0, x1, y1)
    hole = np.zeros_like(mask)
    if x1 - x0 > 2 * width and y1 - y0 > 2 * width:
        _fill_ellipse(hole, x0 + width, y0 + width, x1 - width, y1 - width)
    mask[hole > 0] = 0


def draw_triangle(mask, x0, y0, x1, y1, rng):
    """Triangle with one side on a box side and its apex anywhere on the opposite side."""
    apex = rng.uniform(0.0, 1.0)
    side = rng.integers(4)
    if side < 2:  # base at the bottom (0) or top (1), apex on the opposite side
        base_y, apex_y = (y1, y0) if side == 0 else (y0, y1)
        apex_x = x0 + apex * (x1 - x0)
        points = [(x0, base_y), (x1, base_y), (apex_x, apex_y)]
    else:  # base on the left (2) or right (3)
        base_x, apex_x = (x0, x1) if side == 2 else (x1, x0)
        apex_y = y0 + apex * (y1 - y0)
        points = [(base_x, y0), (base_x, y1), (apex_x, apex_y)]
    _fill_polygon(mask, points)


def draw_cross(mask, x0, y0, x1, y1, rng):
    """Plus sign: one horizontal and one vertical bar, each 20-45% of the box wide, off-centre."""
    bar_h = max(2, int(round((y1 - y0 + 1) * rng.uniform(0.2, 0.45))))
    bar_w = max(2, int(round((x1 - x0 + 1) * rng.uniform(0.2, 0.45))))
    top = y0 + int(rng.integers(0, max(1, y1 - y0 + 2 - bar_h)))
    left = x0 + int(rng.integers(0, max(1, x1 - x0 + 2 - bar_w)))
    mask[top : top + bar_h, x0 : x1 + 1] = 1
    mask[y0 : y1 + 1, left : left + bar_w] = 1


def draw_star(mask, x0, y0, x1, y1, rng):
    """Star with 4 to 6 points inscribed in the box's ellipse, randomly rotated."""
    points = int(rng.integers(4, 7))
    inner = rng.uniform(0.35, 0.55)
    angles = rng.uniform(0, 2 * np.pi) + np.arange(2 * points) * np.pi / points
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    xs = centre_x + radius * np.cos(angles) * (x1 - x0) / 2
    ys = centre_y + radius * np.sin(angles) * (y1 - y0) / 2
    _fill_polygon(mask, np.stack([xs, ys], axis=1))


# The dataset's classes, in category order; DRAWERS[i] draws class CLASS_NAMES[i].
CLASS_NAMES = ("rectangle", "frame", "ellipse", "ring", "triangle", "cross", "star")
DRAWERS = (
    draw_rectangle,
    draw_frame,
    draw_ellipse,
    draw_ring,
    draw_triangle,
    draw_cross,
    draw_star,
)
# One display colour (RGB) per class, for Detectron2's Visualizer.
CLASS_COLORS = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
)


def draw_shape(category, box, image_size, rng):
    """Draws one object as a binary mask.

    Args:
        category (int): index into ``CLASS_NAMES``.
        box (tuple[int, int, int, int]): inclusive pixel box ``(x0, y0, x1, y1)`` inside the image.
        image_size (int): side S of the square image.
        rng (np.random.Generator): source of the shape's own parameters (stroke, apex, ...).

    Returns:
        np.ndarray: bool mask of shape (S, S), True on the object's pixels.
    """
    mask = np.zeros((image_size, image_size), dtype=np.uint8)
    DRAWERS[category](mask, *box, rng)
    return mask > 0
