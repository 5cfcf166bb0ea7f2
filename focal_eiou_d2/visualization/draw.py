"""Drawing of detections, ground-truth boxes and side-by-side comparison panels.

Every function takes and returns images as ``numpy.ndarray`` of shape (H, W, 3), dtype uint8, in RGB
order (``cv2.imread`` gives BGR: flip it with ``image[:, :, ::-1]``), and never modifies its input.

Example, one image and one model::

    predictor = DefaultPredictor(cfg)
    outputs = predictor(image_bgr)
    vis = draw_detections(image_bgr[:, :, ::-1], outputs["instances"], metadata, threshold=0.5)
    cv2.imwrite("vis.png", vis[:, :, ::-1])
"""

import cv2
import numpy as np
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import ColorMode, Visualizer

# Height in pixels of the title strip above the panels of ``side_by_side``.
HEADER_HEIGHT = 32
# Width in pixels of the blank column between the two panels of ``side_by_side``.
GAP = 4
# Colour of the header strip and of the gap, and of the titles (RGB).
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
# Ground-truth boxes: dashes of this many pixels, cycling through these colours (RGB); white and
# black dashes stay visible on any background.
DASH_LENGTH = 6
DASH_COLORS = ((255, 255, 255), (0, 0, 0))
TITLE_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_detections(image_rgb, instances, metadata, threshold=0.5):
    """Draws the boxes, class names and scores of the detections whose score reaches ``threshold``.

    Drawing is Detectron2's ``Visualizer`` (``ColorMode.IMAGE``: the image keeps its colours);
    instance masks and keypoints are drawn too when ``instances`` has them.

    Args:
        image_rgb (np.ndarray): the image, (H, W, 3) uint8 RGB.
        instances (Instances): a model's output ``outputs["instances"]`` on this image, with
            ``pred_boxes`` (XYXY in image pixels), ``scores`` and ``pred_classes``; any device.
        metadata (Metadata): gives the class names (``thing_classes``) and colours
            (``thing_colors``); class ids are written instead when it has no ``thing_classes``.
        threshold (float): detections with a lower score are not drawn.

    Returns:
        np.ndarray: a new (H, W, 3) uint8 RGB image; a copy of ``image_rgb`` if nothing is drawn.
    """
    instances = instances.to("cpu")
    instances = instances[instances.scores >= threshold]
    if len(instances) == 0:
        return image_rgb.copy()
    visualizer = Visualizer(image_rgb, metadata, scale=1.0, instance_mode=ColorMode.IMAGE)
    return visualizer.draw_instance_predictions(instances).get_image()


def draw_ground_truth(image_rgb, annotations, colors=DASH_COLORS, thickness=1):
    """Draws ground-truth boxes as dashed rectangles, without labels.

    Args:
        image_rgb (np.ndarray): the image, (H, W, 3) uint8 RGB.
        annotations (list[dict]): Detectron2 annotations (the ``"annotations"`` of a dataset
            dict), each with ``"bbox"`` and ``"bbox_mode"``; crowd regions are drawn as well.
        colors (tuple[tuple[int, int, int], ...]): RGB colours the dashes cycle through.
        thickness (int): line width in pixels.

    Returns:
        np.ndarray: a new (H, W, 3) uint8 RGB image.
    """
    canvas = np.ascontiguousarray(image_rgb).copy()
    for annotation in annotations:
        box = BoxMode.convert(list(annotation["bbox"]), annotation["bbox_mode"], BoxMode.XYXY_ABS)
        draw_dashed_rectangle(canvas, box, colors, thickness)
    return canvas


def draw_dashed_rectangle(canvas, box, colors=DASH_COLORS, thickness=1):
    """Draws the outline of ``box`` into ``canvas`` in place, as dashes of ``DASH_LENGTH`` px.

    Args:
        canvas (np.ndarray): (H, W, 3) uint8 image, modified in place.
        box (list[float]): XYXY box in pixels; its corners are rounded to pixel indices.
        colors (tuple[tuple[int, int, int], ...]): colours the dashes cycle through.
        thickness (int): line width in pixels.
    """
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    for start, end in zip(corners, corners[1:] + corners[:1], strict=True):
        draw_dashed_line(canvas, start, end, colors, thickness)


def draw_dashed_line(canvas, start, end, colors, thickness):
    """Draws a horizontal or vertical dashed line between two pixels, in place."""
    length = max(abs(end[0] - start[0]), abs(end[1] - start[1]))
    step_x = np.sign(end[0] - start[0])
    step_y = np.sign(end[1] - start[1])
    for index, offset in enumerate(range(0, length, DASH_LENGTH)):
        stop = min(offset + DASH_LENGTH, length)
        a = (start[0] + step_x * offset, start[1] + step_y * offset)
        b = (start[0] + step_x * stop, start[1] + step_y * stop)
        color = colors[index % len(colors)]
        cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), color, thickness)


def side_by_side(left, right, titles, header_height=HEADER_HEIGHT, gap=GAP):
    """Places two renderings of one image next to each other, each under its title.

    The result, as in Figs. 10 and 11 of the Focal-EIoU paper, is laid out as::

        +---------------+-----+---------------+
        |   titles[0]   |     |   titles[1]   |   header_height rows
        +---------------+ gap +---------------+
        |     left      |     |     right     |   H rows
        +---------------+-----+---------------+

    Args:
        left (np.ndarray): (H, W, 3) uint8 RGB, e.g. the baseline model's detections.
        right (np.ndarray): (H, W, 3) uint8 RGB, same shape as ``left``.
        titles (tuple[str, str]): ASCII titles of the two halves, shrunk to fit if too long.
        header_height (int): height of the title strip in pixels.
        gap (int): width of the blank column between the two halves in pixels.

    Returns:
        np.ndarray: (header_height + H, 2 * W + gap, 3) uint8 RGB.

    Raises:
        ValueError: ``left`` and ``right`` differ in shape or are not (H, W, 3) images.
    """
    if left.shape != right.shape or left.ndim != 3 or left.shape[2] != 3:
        raise ValueError(f"need two (H, W, 3) images of one shape, got {left.shape}, {right.shape}")
    height, width = left.shape[:2]
    canvas = np.empty((header_height + height, 2 * width + gap, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for x, image, title in ((0, left, titles[0]), (width + gap, right, titles[1])):
        canvas[header_height:, x : x + width] = image
        put_title(canvas[:header_height, x : x + width], title)
    return canvas


def put_title(strip, text):
    """Writes ``text`` centred in ``strip`` (a (h, w, 3) uint8 view), in place, scaled to fit."""
    strip_height, strip_width = strip.shape[:2]
    (text_width, text_height), _ = cv2.getTextSize(text, TITLE_FONT, 1.0, 1)
    scale = min(0.5 * strip_height / text_height, 0.95 * strip_width / max(text_width, 1))
    thickness = 2 if scale >= 1.0 else 1
    (text_width, text_height), _ = cv2.getTextSize(text, TITLE_FONT, scale, thickness)
    origin = ((strip_width - text_width) // 2, (strip_height + text_height) // 2)
    cv2.putText(strip, text, origin, TITLE_FONT, scale, TEXT_COLOR, thickness, cv2.LINE_AA)
