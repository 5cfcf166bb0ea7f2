"""One synthetic image: background, clutter, occluding objects, pixel noise, exact visible masks.

Objects are composited bottom to top. Visibility is decided top down: an object is kept only if at
least ``MIN_VISIBLE_FRACTION`` of its pixels, and ``MIN_VISIBLE_PIXELS`` pixels, are not covered by
the objects kept above it. Dropped objects are not drawn at all, so every drawn object is annotated
and every annotation's mask is exactly the set of pixels painted in that object's colour.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from .shapes import CLASS_NAMES, draw_shape

MIN_OBJECTS, MAX_OBJECTS = 2, 8
# Object size: the box's geometric-mean side is log-uniform in this range, relative to the image.
MIN_SCALE, MAX_SCALE = 0.05, 0.7
# Aspect ratio w/h is log-uniform in [1 / MAX_ASPECT, MAX_ASPECT].
MAX_ASPECT = 4.0
MIN_SIDE = 4
MIN_VISIBLE_FRACTION = 0.4
MIN_VISIBLE_PIXELS = 16
# Objects differ from the background and from each other by at least this much in some channel.
MIN_CONTRAST = 60
MAX_NOISE_SIGMA = 5.0


@dataclass(frozen=True)
class SceneObject:
    """An annotated object of a rendered scene.

    Attributes:
        category (int): index into ``CLASS_NAMES``.
        mask (np.ndarray): bool array of shape (S, S), the object's visible pixels.
    """

    category: int
    mask: np.ndarray

    def bbox(self):
        """Returns the tight box ``[x, y, w, h]`` (ints, COCO XYWH) around the visible pixels."""
        ys, xs = np.nonzero(self.mask)
        x0, y0 = int(xs.min()), int(ys.min())
        return [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]


def sample_box(rng, image_size):
    """Samples an object box with log-uniform scale and aspect ratio, fully inside the image.

    Args:
        rng (np.random.Generator): random source.
        image_size (int): side S of the square image.

    Returns:
        tuple[int, int, int, int]: inclusive pixel box ``(x0, y0, x1, y1)``.
    """
    scale = image_size * np.exp(rng.uniform(np.log(MIN_SCALE), np.log(MAX_SCALE)))
    aspect = np.exp(rng.uniform(-np.log(MAX_ASPECT), np.log(MAX_ASPECT)))
    w, h = scale * np.sqrt(aspect), scale / np.sqrt(aspect)
    shrink = min(1.0, 0.95 * image_size / max(w, h))
    w = max(MIN_SIDE, int(round(w * shrink)))
    h = max(MIN_SIDE, int(round(h * shrink)))
    x0 = int(rng.integers(0, image_size - w + 1))
    y0 = int(rng.integers(0, image_size - h + 1))
    return x0, y0, x0 + w - 1, y0 + h - 1


def sample_background(rng, image_size):
    """Draws a linear colour gradient in a random direction.

    Args:
        rng (np.random.Generator): random source.
        image_size (int): side S of the square image.

    Returns:
        tuple: the image, uint8 array of shape (S, S, 3), and its two end colours, float array of
        shape (2, 3).
    """
    ends = np.empty((2, 3))
    ends[0] = rng.uniform(0, 255, size=3)
    ends[1] = np.clip(ends[0] + rng.uniform(-40, 40, size=3), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    coords = np.arange(image_size) / max(1, image_size - 1)
    ramp = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
    ramp = (ramp - ramp.min()) / max(1e-9, np.ptp(ramp))
    image = ends[0] + ramp[..., None] * (ends[1] - ends[0])
    return np.round(image).astype(np.uint8), ends


def draw_clutter(image, rng):
    """Draws distractors that are not objects onto ``image`` (S, S, 3) uint8, in place.

    Objects are painted over the clutter, so it never changes an object's visible pixels.
    """
    for _ in range(rng.integers(1, 6)):
        draw_line(image, rng)
    for _ in range(rng.integers(0, 4)):
        draw_blob(image, rng)


def draw_line(image, rng):
    """Draws one thin anti-aliased line between two random points into ``image`` (S, S, 3)."""
    start, end = (tuple(int(v) for v in p) for p in rng.integers(0, image.shape[0], size=(2, 2)))
    colour = rng.uniform(0, 255, size=3).tolist()
    cv2.line(image, start, end, colour, int(rng.integers(1, 3)), cv2.LINE_AA)


def draw_blob(image, rng):
    """Pastes one irregular, per-pixel-noisy blob of 6-20% of the image side into ``image``.

    Its texture (per-pixel sigma 30) sets it apart from the flat-coloured objects.
    """
    size = image.shape[0]
    side = max(3, int(size * rng.uniform(0.06, 0.2)))
    field = cv2.resize(rng.uniform(0, 1, size=(4, 4)), (side, side), interpolation=cv2.INTER_CUBIC)
    shape = field > 0.5
    texture = rng.uniform(0, 255, size=3) + rng.normal(0, 30, size=(side, side, 3))
    y, x = rng.integers(0, size - side + 1, size=2)
    patch = image[y : y + side, x : x + side]
    patch[shape] = np.clip(texture[shape], 0, 255).astype(np.uint8)


def pick_colour(rng, avoid, tries=64):
    """Samples an RGB colour that differs from every colour in ``avoid`` by ``MIN_CONTRAST``.

    Contrast is the largest per-channel difference. If no sample reaches ``MIN_CONTRAST`` the one
    with the largest contrast is returned.

    Args:
        rng (np.random.Generator): random source.
        avoid (np.ndarray): colours to stay away from, shape (K, 3).
        tries (int): number of candidates drawn.

    Returns:
        np.ndarray: float colour of shape (3,).
    """
    candidates = rng.uniform(0, 255, size=(tries, 3))
    contrast = np.abs(candidates[:, None, :] - avoid[None, :, :]).max(axis=2).min(axis=1)
    good = np.flatnonzero(contrast >= MIN_CONTRAST)
    return candidates[good[0] if good.size else contrast.argmax()]


def visible_objects(categories, masks):
    """Keeps the objects that stay visible enough, deciding from the top of the stack down.

    Args:
        categories (list[int]): object classes, bottom to top.
        masks (list[np.ndarray]): their full drawn masks, bool arrays of shape (S, S).

    Returns:
        list[tuple[int, np.ndarray, np.ndarray]]: ``(category, full mask, visible mask)`` of the
        kept objects, bottom to top.
    """
    covered = np.zeros_like(masks[0])
    kept = []
    for category, mask in zip(reversed(categories), reversed(masks), strict=True):
        visible = mask & ~covered
        count = int(visible.sum())
        if count >= MIN_VISIBLE_PIXELS and count >= MIN_VISIBLE_FRACTION * mask.sum():
            kept.append((category, mask, visible))
            covered |= mask
    return kept[::-1]


def render_scene(rng, image_size):
    """Renders one image and the exact visible masks of its objects.

    Args:
        rng (np.random.Generator): the image's own random source.
        image_size (int): side S of the square image.

    Returns:
        tuple: the image, uint8 array of shape (S, S, 3) (channel order is irrelevant: colours are
        random), and a list of ``SceneObject``, bottom to top.
    """
    image, ends = sample_background(rng, image_size)
    draw_clutter(image, rng)
    kept = []
    while not kept:
        count = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
        categories = [int(c) for c in rng.integers(0, len(CLASS_NAMES), size=count)]
        masks = [draw_shape(c, sample_box(rng, image_size), image_size, rng) for c in categories]
        kept = visible_objects(categories, masks)
    canvas = image.astype(np.float64)
    colours = ends
    for _, mask, _ in kept:
        colour = pick_colour(rng, colours)
        canvas[mask] = colour
        colours = np.vstack([colours, colour])
    canvas += rng.normal(0, rng.uniform(1.0, MAX_NOISE_SIGMA), size=canvas.shape)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return image, [SceneObject(category, visible) for category, _, visible in kept]
