"""The comparison report of focal_eiou_d2.tools.compare on hand-made and generated detections."""

import contextlib
import io
import json
import os

import numpy as np
import pytest
import torch
from coco_tiny import CATEGORY_ID, CLASS_NAME, write_coco_tiny
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from pycocotools.coco import COCO
from tiny_models import tiny_cfg

from focal_eiou_d2.data import CLASS_NAMES, ShapesSpec, register_shapes
from focal_eiou_d2.engine.run_dir import write_manifest
from focal_eiou_d2.evaluation import AREAS, IOU_THRESHOLDS, localization_counts
from focal_eiou_d2.tools import compare

# Ground truth of two 200x200 images (COCO XYWH): small (< 32^2), medium and large boxes.
GROUND_TRUTH = {
    1: [(1, [10, 10, 20, 20]), (2, [50, 40, 50, 40]), (1, [60, 90, 120, 100])],
    2: [(2, [5, 5, 25, 15]), (1, [100, 20, 60, 60]), (2, [30, 80, 110, 110])],
}

# The config digest in the run.json of the tests' runs (only the recorded classes are read).
RUN_DIGEST = "0" * 16


@pytest.fixture
def coco_gt():
    images = [{"id": i, "width": 200, "height": 200, "file_name": f"{i}.png"} for i in (1, 2)]
    annotations = [
        {"id": 10 * i + k, "image_id": i, "category_id": c, "bbox": b, "iscrowd": 0}
        for i, objects in GROUND_TRUTH.items()
        for k, (c, b) in enumerate(objects)
    ]
    for annotation in annotations:
        annotation["area"] = annotation["bbox"][2] * annotation["bbox"][3]
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def detections(shift=0.0, score=0.9):
    """One detection per ground-truth box, moved right by ``shift`` times its width."""
    return [
        {"image_id": i, "category_id": c, "bbox": [x + shift * w, y, w, h], "score": score}
        for i, objects in GROUND_TRUTH.items()
        for c, (x, y, w, h) in objects
    ]


def noisy_detections(seed=0):
    """Jittered boxes with random scores, and false positives of the wrong class."""
    rng = np.random.default_rng(seed)
    found = []
    for d in detections() + detections(shift=0.3):
        box = (np.array(d["bbox"]) + rng.normal(0, 3, 4)).tolist()
        found.append({**d, "bbox": box, "score": float(rng.uniform(0.05, 1))})
        found.append({**d, "category_id": 3 - d["category_id"], "score": float(rng.uniform())})
    return found


def test_identical_predictions_have_zero_deltas(coco_gt):
    found = noisy_detections()
    report = compare.compare_detections(coco_gt, found, [dict(d) for d in found])
    assert report["ap_per_iou"]["a"] == report["ap_per_iou"]["b"]
    assert report["ap_per_iou"]["delta"] == [0.0] * len(IOU_THRESHOLDS)
    assert report["ap"]["delta"] == 0.0
    assert all(report["ap_per_size"][area]["delta"] == 0.0 for area in AREAS)
    assert report["localization"]["a"] == report["localization"]["b"]
    assert 0 < report["ap"]["a"] < 100


def test_exact_boxes_beat_shifted_boxes_at_high_iou(coco_gt):
    # A shift of 0.2 widths gives IoU 0.8 / 1.2 = 2/3 with every ground-truth box.
    report = compare.compare_detections(coco_gt, detections(shift=0.2), detections(), ("A", "B"))
    for t, a, b in zip(IOU_THRESHOLDS, *(report["ap_per_iou"][k] for k in "ab"), strict=True):
        assert b == pytest.approx(100)
        assert a == pytest.approx(100 if t < 2 / 3 else 0)
    deltas = dict(zip(IOU_THRESHOLDS, report["ap_per_iou"]["delta"], strict=True))
    assert all(deltas[t] == pytest.approx(100) for t in (0.75, 0.8, 0.85, 0.9, 0.95))
    a, b = report["localization"]["a"], report["localization"]["b"]
    assert (a["localization_errors"], a["well_localized"]) == (6, 0)
    assert (b["localization_errors"], b["well_localized"]) == (0, 6)
    assert a["mean_iou"] == pytest.approx(2 / 3) and b["mean_iou"] == pytest.approx(1)
    assert b["missed"] == 0 and b["unmatched"] == 0


def test_matching_is_one_to_one_by_descending_score_above_the_threshold(coco_gt):
    exact, shifted = detections(score=0.6), detections(shift=0.2, score=0.8)
    wrong_class = [{**d, "category_id": 3 - d["category_id"]} for d in detections(score=0.9)]
    low_score = detections(score=0.1)
    counts = localization_counts(coco_gt, exact + shifted + wrong_class + low_score)
    # The shifted boxes score higher, so they take the ground truth; the exact ones are left over.
    assert counts["detections"] == 18 and counts["matched"] == 6
    assert counts["localization_errors"] == 6 and counts["well_localized"] == 0
    assert counts["unmatched"] == 12 and counts["missed"] == 0


def test_no_detections_give_zero_ap_and_no_size_without_ground_truth(coco_gt):
    coco_gt.dataset["annotations"] = [a for a in coco_gt.dataset["annotations"] if a["area"] < 9000]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
    report = compare.compare_detections(coco_gt, [], detections())
    assert report["ap_per_iou"]["a"] == [0.0] * len(IOU_THRESHOLDS)
    assert report["ap_per_size"]["large"] == {"a": None, "b": None, "delta": None}
    assert report["localization"]["a"]["missed"] == 4
    assert report["localization"]["a"]["mean_iou"] is None
    assert "| AP large | - | - | - |" in compare.format_markdown(report)


@pytest.fixture
def shapes_val(tmp_path):
    """A registered, generated 3-image shapes validation split."""
    names = ("compare_shapes_train", "compare_shapes_val")
    spec = ShapesSpec(train_images=1, val_images=3, image_size=96)
    register_shapes(names, spec, root=str(tmp_path / "datasets"))
    DatasetCatalog.get(names[1])
    yield names[1]
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def save_run(folder, architecture="retinanet", loss_type="focal_eiou", classes=CLASS_NAMES):
    """Writes ``config.yaml`` and ``model_final.pth`` of a random tiny model to ``folder``, with
    the ``run.json`` of a training tool recording ``classes``; the config says 7 shapes classes.

    Returns:
        tuple[str, str]: the config file and the weights.
    """
    os.makedirs(folder)
    cfg = tiny_cfg(architecture, loss_type)
    cfg.MODEL.RETINANET.NUM_CLASSES = cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(classes)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("shapes_train",), ("shapes_val",)
    torch.manual_seed(0)
    DetectionCheckpointer(build_model(cfg), save_dir=str(folder)).save("model_final")
    cfg.MODEL.RETINANET.NUM_CLASSES = cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(CLASS_NAMES)
    config_file = os.path.join(folder, "config.yaml")
    with open(config_file, "w") as f:
        f.write(cfg.dump())
    write_manifest(str(folder), RUN_DIGEST, config_file, list(classes))
    return config_file, os.path.join(folder, "model_final.pth")


def perfect_predictions(dataset_name, path):
    """Writes the ground truth of a registered dataset as COCO results of score 1 to ``path``."""
    with open(MetadataCatalog.get(dataset_name).json_file) as f:
        ground_truth = json.load(f)["annotations"]
    path.write_text(json.dumps([{**a, "score": 1.0} for a in ground_truth]))
    return str(path)


def test_cli_runs_a_model_and_reads_predictions(shapes_val, tmp_path):
    config_file, weights = save_run(tmp_path / "run")
    output = tmp_path / "report"
    argv = ["--dataset", shapes_val, "--output", str(output), "--config-file", config_file]
    argv += ["--compare-predictions", perfect_predictions(shapes_val, tmp_path / "b.json")]
    argv += ["--opts", "MODEL.WEIGHTS", weights, "DATALOADER.NUM_WORKERS", "0"]
    report = compare.main(argv + ["--names", "model", "truth"])
    assert report["names"] == ["model", "truth"]
    assert report["ap"]["b"] == pytest.approx(100)
    saved = json.loads((output / "predictions_a.json").read_text())
    assert {d["category_id"] for d in saved} <= set(range(1, len(CLASS_NAMES) + 1))
    assert json.loads((output / "report.json").read_text()) == json.loads(json.dumps(report))
    assert "## Localization" in (output / "report.md").read_text()
    assert (output / "ap_vs_iou.png").read_bytes().startswith(b"\x89PNG")


def compare_error(argv):
    """The message of a compare run that stops with an error."""
    with pytest.raises(SystemExit) as exit_info:
        compare.main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("compare: error: ")
    return message


def test_weights_of_another_architecture_are_an_error_naming_the_keys(shapes_val, tmp_path):
    faster_config, _ = save_run(tmp_path / "faster", "faster_rcnn")
    _, retinanet_weights = save_run(tmp_path / "retinanet", "retinanet")
    argv = ["--dataset", shapes_val, "--output", str(tmp_path / "report")]
    argv += ["--config-a", faster_config, "--weights-a", retinanet_weights]
    argv += ["--predictions-b", perfect_predictions(shapes_val, tmp_path / "b.json")]
    message = compare_error(argv)
    assert f"the weights in {retinanet_weights} do not fit the model" in message
    assert "missing (backbone.fpn_lateral2.weight" in message and "unexpected (" in message
    assert not (tmp_path / "report" / "report.md").exists()


def test_weights_of_model_b_that_do_not_fit_stop_before_model_a_runs(
    shapes_val, tmp_path, no_inference
):
    retinanet_config, retinanet_weights = save_run(tmp_path / "retinanet", "retinanet")
    faster_config, _ = save_run(tmp_path / "faster", "faster_rcnn")
    argv = ["--dataset", shapes_val, "--output", str(tmp_path / "report")]
    argv += ["--config-a", retinanet_config, "--weights-a", retinanet_weights]
    argv += ["--config-b", faster_config, "--weights-b", retinanet_weights]
    assert f"the weights in {retinanet_weights} do not fit the model" in compare_error(argv)


@pytest.fixture
def coco_dataset(tmp_path):
    """A COCO-format dataset of JPEG images, one class with category id 7 (not registered)."""
    json_file, image_root = write_coco_tiny(tmp_path / "coco", num_images=2)
    yield "compare_coco", json_file, image_root
    for catalog in (DatasetCatalog, MetadataCatalog):
        if "compare_coco" in catalog.list():
            catalog.remove("compare_coco")


def test_coco_dataset_option_and_the_class_count_of_the_run(coco_dataset, tmp_path):
    # The config says 7 classes; the run that wrote the weights trained on the dataset's one.
    name, json_file, image_root = coco_dataset
    config_file, weights = save_run(tmp_path / "run", classes=(CLASS_NAME,))
    output = tmp_path / "report"
    argv = ["--coco-dataset", name, json_file, image_root, "--dataset", name]
    argv += ["--output", str(output), "--config-a", config_file, "--weights-a", weights]
    argv += ["--predictions-b", json_file.replace("instances.json", "b.json")]
    with open(json_file) as f:
        truth = [{**a, "score": 1.0} for a in json.load(f)["annotations"]]
    with open(argv[-1], "w") as f:
        json.dump(truth, f)
    report = compare.main(argv + ["--score-threshold", "0"])
    assert report["ap"]["b"] == pytest.approx(100)
    saved = json.loads((output / "predictions_a.json").read_text())
    assert saved and {d["category_id"] for d in saved} == {CATEGORY_ID}


def test_a_model_of_other_classes_is_an_error_before_inference(coco_dataset, tmp_path):
    name, json_file, image_root = coco_dataset
    config_file, weights = save_run(tmp_path / "run")  # the 7 shapes classes
    argv = ["--coco-dataset", name, json_file, image_root, "--dataset", name]
    argv += ["--output", str(tmp_path / "report"), "--config-a", config_file]
    argv += ["--weights-a", weights, "--predictions-b", json_file]
    message = compare_error(argv)
    assert f"model A ({weights}) was trained on the classes {', '.join(CLASS_NAMES)}" in message
    assert f"but dataset {name!r} has 1: {CLASS_NAME}" in message


@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan"])
def test_confidence_threshold_outside_0_1_is_refused(value, capsys):
    argv = ["--dataset", "d", "--output", "o", "--predictions", "a", "--compare-predictions", "b"]
    with pytest.raises(SystemExit) as exit_info:
        compare.parse_args([*argv, "--confidence-threshold", value])
    assert exit_info.value.code == 2
    assert (
        f"--confidence-threshold must be in [0, 1], got {float(value)}" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "models, message",
    [
        ([], "model A: give --config-file"),
        (["--predictions", "a.json", "--weights-a", "a.pth"], "not both"),
        (["--predictions", "a.json", "--opts", "MODEL.DEVICE"], "--opts takes KEY VALUE pairs"),
    ],
)
def test_incomplete_models_and_odd_opts_are_refused(models, message, capsys):
    argv = ["--dataset", "d", "--output", "o", "--compare-predictions", "b.json", *models]
    with pytest.raises(SystemExit) as exit_info:
        compare.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "models, message",
    [
        ([], "model B: give --compare-weights"),
        (["--compare-weights", "b.pth", "--compare-predictions", "b.json"], "not both"),
        (["--compare-config", "b.yaml"], "model B: give --compare-weights"),
    ],
)
def test_incomplete_model_b_is_refused(models, message, capsys):
    argv = ["--dataset", "d", "--output", "o", "--predictions", "a.json", *models]
    with pytest.raises(SystemExit) as exit_info:
        compare.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_the_options_are_the_demo_s_and_the_old_names_still_work(capsys):
    new = ["--config-file", "a.yaml", "--compare-config", "b.yaml", "--compare-weights", "b.pth"]
    new += ["--names", "x", "y", "--confidence-threshold", "0.3"]
    old = ["--config-a", "a.yaml", "--config-b", "b.yaml", "--weights-b", "b.pth"]
    old += ["--name-a", "x", "--name-b", "y", "--score-threshold", "0.3"]
    parsed = [compare.parse_args(["--dataset", "d", "--output", "o", *argv]) for argv in (new, old)]
    assert vars(parsed[0]) == vars(parsed[1])
    with pytest.raises(SystemExit):
        compare.parse_args(["--help"])
    listed = capsys.readouterr().out
    assert "--compare-weights" in listed and "--confidence-threshold" in listed
    for hidden in ("--config-a", "--weights-b", "--name-a", "--score-threshold", "--predictions-a"):
        assert hidden not in listed


def test_an_output_whose_files_would_replace_an_input_is_an_error_before_any_work(
    shapes_val, tmp_path, no_inference
):
    output = tmp_path / "report"
    output.mkdir()
    kept = perfect_predictions(shapes_val, output / "report.json")
    before = (output / "report.json").read_bytes()
    argv = ["--dataset", shapes_val, "--output", str(output), "--predictions", kept]
    message = compare_error([*argv, "--compare-predictions", kept])
    assert f"writing {kept} would replace the input {kept}" in message
    assert (output / "report.json").read_bytes() == before
    assert sorted(os.listdir(output)) == ["report.json"]


@pytest.fixture
def no_inference(monkeypatch):
    """Makes running a model fail the test: what is checked must be checked before."""

    def run_inference(cfg, dataset_name):
        raise AssertionError("a model was run")

    monkeypatch.setattr(compare, "run_inference", run_inference)


def test_unusable_output_and_predictions_are_errors_before_inference(
    shapes_val, tmp_path, no_inference
):
    config_file, weights = save_run(tmp_path / "run")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    model_a = ["--config-a", config_file, "--weights-a", weights]
    good_b = perfect_predictions(shapes_val, tmp_path / "b.json")
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps([{"image_id": 999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])
    )
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "dict.json").write_text("{}")
    cases = [
        (blocker, good_b, f"--output {blocker}: {blocker} is a file, not a folder"),
        (blocker / "r", good_b, f"--output {blocker / 'r'}: cannot create the folder"),
        (tmp_path / "r", str(other), f"{other} has detections of 1 images that dataset"),
        (tmp_path / "r", str(tmp_path / "bad.json"), "bad.json is not JSON"),
        (tmp_path / "r", str(tmp_path / "dict.json"), "dict.json is not a COCO results file"),
        (tmp_path / "r", str(tmp_path / "none.json"), "cannot read"),
    ]
    for output, predictions_b, message in cases:
        argv = ["--dataset", shapes_val, "--output", str(output), *model_a]
        assert message in compare_error([*argv, "--predictions-b", predictions_b])
    message = compare_error(
        [
            "--dataset",
            "nowhere",
            "--output",
            str(tmp_path / "r"),
            *model_a,
            "--predictions-b",
            good_b,
        ]
    )
    assert "dataset 'nowhere' is not registered: register it with --coco-dataset nowhere" in message
