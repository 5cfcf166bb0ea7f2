"""Pictures of detections: single models, and two models side by side as in the paper's Figs. 10-11.

Images are (H, W, 3) uint8 RGB arrays throughout. ``demo/demo.py`` is the command line;
``focal_eiou_d2.tools.compare`` writes the numbers that go with the pictures.
"""

from .draw import draw_detections, draw_ground_truth, side_by_side
from .models import load_config, loss_type, model_name, model_names

__all__ = [
    "draw_detections",
    "draw_ground_truth",
    "load_config",
    "loss_type",
    "model_name",
    "model_names",
    "side_by_side",
]
