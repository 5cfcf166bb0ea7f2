"""Pictures of detections: single models, and two models side by side as in the paper's Figs. 10-11.

Images are (H, W, 3) uint8 RGB arrays throughout (``draw.py``); ``labels.py`` gives the titles of
the models and the class names drawn; ``output.py`` checks an output folder before any work.
``demo/demo.py`` is the command line; ``focal_eiou_d2.tools.compare`` writes the numbers that go
with the pictures.
"""

from .draw import draw_detections, draw_ground_truth, side_by_side
from .labels import class_metadata, model_name, model_names
from .options import ensure_writable_folder

__all__ = [
    "class_metadata",
    "draw_detections",
    "draw_ground_truth",
    "ensure_writable_folder",
    "model_name",
    "model_names",
    "side_by_side",
]
