"""Drawing helpers and labels of focal_eiou_d2.visualization, on hand-made detections (no model)."""

import json
import os

import numpy as np
import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances
from tiny_models import tiny_cfg

from focal_eiou_d2.data import CLASS_NAMES
from focal_eiou_d2.engine import YamlRunConfig
from focal_eiou_d2.visualization import (
    class_metadata,
    draw_detections,
    draw_ground_truth,
    ensure_writable_folder,
    model_name,
    model_names,
    side_by_side,
)
from focal_eiou_d2.visualization.draw import GAP, HEADER_HEIGHT

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def grey_image(height=64, width=80):
    return np.full((height, width, 3), 120, dtype=np.uint8)


def detections(scores):
    instances = Instances((64, 80))
    boxes = [[8.0, 10.0, 40.0, 50.0], [45.0, 5.0, 75.0, 30.0], [20.0, 20.0, 60.0, 60.0]]
    instances.pred_boxes = Boxes(torch.tensor(boxes[: len(scores)]))
    instances.scores = torch.tensor(scores)
    instances.pred_classes = torch.arange(len(scores))
    return instances


def test_draw_detections_draws_only_scores_above_threshold():
    image = grey_image()
    metadata = MetadataCatalog.get("shapes_val")
    np.random.seed(0)  # the Visualizer jitters the class colours with numpy's global generator
    drawn = draw_detections(image, detections([0.9, 0.2, 0.6]), metadata, threshold=0.5)
    np.random.seed(0)
    expected = draw_detections(image, detections([0.9, 0.2, 0.6])[[0, 2]], metadata, threshold=0)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    np.testing.assert_array_equal(drawn, expected)
    assert (drawn != image).any()
    assert (image == 120).all()  # the input is not modified


def test_draw_detections_without_detections_returns_a_copy():
    image = grey_image()
    drawn = draw_detections(image, detections([0.1, 0.3]), MetadataCatalog.get("shapes_val"))
    np.testing.assert_array_equal(drawn, image)
    assert drawn is not image


@pytest.mark.parametrize(
    "bbox, mode",
    [([10, 20, 30, 40], BoxMode.XYWH_ABS), ([10, 20, 40, 60], BoxMode.XYXY_ABS)],
)
def test_draw_ground_truth_draws_dashed_white_and_black_outline(bbox, mode):
    image = grey_image()
    drawn = draw_ground_truth(image, [{"bbox": bbox, "bbox_mode": mode}])
    for edge in (drawn[20, 10:41], drawn[60, 10:41], drawn[20:61, 10], drawn[20:61, 40]):
        colours = {tuple(pixel) for pixel in edge}
        assert colours == {WHITE, BLACK}
    assert (drawn[21:60, 11:40] == 120).all()  # inside untouched
    assert (image == 120).all()


def test_side_by_side_layout():
    left, right = grey_image(), np.full((64, 80, 3), 30, dtype=np.uint8)
    panel = side_by_side(left, right, ("smooth_l1 (baseline)", "focal_eiou"))
    assert panel.shape == (HEADER_HEIGHT + 64, 2 * 80 + GAP, 3) and panel.dtype == np.uint8
    np.testing.assert_array_equal(panel[HEADER_HEIGHT:, :80], left)
    np.testing.assert_array_equal(panel[HEADER_HEIGHT:, 80 + GAP :], right)
    assert (panel[:, 80 : 80 + GAP] == 255).all()
    for half in (panel[:HEADER_HEIGHT, :80], panel[:HEADER_HEIGHT, 80 + GAP :]):
        assert (half < 128).any()  # a title is written in each header


def test_side_by_side_rejects_images_of_different_shapes():
    with pytest.raises(ValueError, match="one shape"):
        side_by_side(grey_image(64, 80), grey_image(64, 81), ("a", "b"))


def test_model_names_come_from_the_box_loss_of_the_architecture():
    retinanet = tiny_cfg("retinanet", "smooth_l1")
    retinanet.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE = "giou"
    faster = tiny_cfg("faster_rcnn", "focal_eiou")
    faster.MODEL.RETINANET.BBOX_REG_LOSS_TYPE = "giou"
    retinanet, faster = YamlRunConfig(retinanet, None), YamlRunConfig(faster, None)
    assert model_name(retinanet) == "smooth_l1 (baseline)"
    assert model_names(model_name(retinanet), model_name(faster)) == (
        "smooth_l1 (baseline)",
        "focal_eiou",
    )
    assert model_names("eiou", "eiou") == ("eiou (A)", "eiou (B)")


def weights_of_run(folder, classes):
    """A weights path in ``folder``, beside a run.json recording ``classes`` (None: no run.json)."""
    os.makedirs(folder, exist_ok=True)
    if classes is not None:
        with open(os.path.join(folder, "run.json"), "w") as f:
            json.dump({"classes": classes}, f)
    return os.path.join(folder, "model_final.pth")


def test_class_names_are_the_run_s_then_the_dataset_s_then_ids(tmp_path):
    cfg = tiny_cfg("faster_rcnn")
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2
    config = YamlRunConfig(cfg, None)
    cfg.MODEL.WEIGHTS = weights_of_run(tmp_path / "run", ["cat", "dog"])
    assert class_metadata(config, "shapes_val").thing_classes == ["cat", "dog"]
    cfg.MODEL.WEIGHTS = weights_of_run(tmp_path / "elsewhere", None)
    # 7 names, 2 classes
    assert class_metadata(config, "shapes_val").get("thing_classes", None) is None
    assert class_metadata(config).get("thing_classes", None) is None
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(CLASS_NAMES)
    assert class_metadata(config, "shapes_val").thing_classes == list(CLASS_NAMES)
    assert MetadataCatalog.get("shapes_val").thing_classes == list(CLASS_NAMES)  # not modified


def test_output_folder_is_made_or_refused_with_the_option_named(tmp_path):
    folder = tmp_path / "a" / "b"
    ensure_writable_folder(str(folder), "--output x")
    assert folder.is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--output y: .*file is a file, not a folder"):
        ensure_writable_folder(str(tmp_path / "file"), "--output y")
    with pytest.raises(ValueError, match="--output z: cannot create the folder .*file/sub"):
        ensure_writable_folder(str(tmp_path / "file" / "sub"), "--output z")


def test_output_folder_that_is_not_writable_is_refused(tmp_path):
    (tmp_path / "locked").mkdir(mode=0o500)
    if os.access(tmp_path / "locked", os.W_OK):
        pytest.skip("this process may write into read-only folders (root)")
    with pytest.raises(ValueError, match="not writable"):
        ensure_writable_folder(str(tmp_path / "locked"), "--output locked")
    with pytest.raises(ValueError, match="cannot create the folder"):
        ensure_writable_folder(str(tmp_path / "locked" / "sub"), "--output locked/sub")
