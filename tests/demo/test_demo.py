"""demo/demo.py with tiny randomly initialized models on generated images."""

import importlib.util
import logging
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from coco_tiny import CLASS_NAME, write_coco_tiny
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from tiny_models import REPO, tiny_cfg

from focal_eiou_d2.data import CLASS_NAMES, ShapesSpec, register_shapes
from focal_eiou_d2.engine.run_dir import write_manifest
from focal_eiou_d2.visualization.draw import GAP, HEADER_HEIGHT

SIZE = 96  # side of the generated images
DATASET = "demo_shapes_val"
# No random model scores a detection 1.0: nothing is drawn but the ground truth.
NO_DETECTIONS = ["--confidence-threshold", "1.0"]
# The config digest in the run.json of the tests' runs (only the recorded classes are read).
RUN_DIGEST = "0" * 16


def load_demo():
    spec = importlib.util.spec_from_file_location("focal_eiou_demo", REPO / "demo" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = load_demo()


def save_run(folder, cfg, classes=tuple(CLASS_NAMES), seed=0):
    """Writes ``config.yaml`` and ``model_final.pth`` of a random model of ``cfg`` to ``folder``,
    with the ``run.json`` of a training tool recording ``classes`` (none if None).

    Returns:
        tuple[str, str]: the config file and the weights.
    """
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(seed)
    DetectionCheckpointer(build_model(cfg), save_dir=str(folder)).save("model_final")
    config_file = os.path.join(folder, "config.yaml")
    with open(config_file, "w") as f:
        f.write(cfg.dump())
    if classes is not None:
        write_manifest(str(folder), RUN_DIGEST, config_file, list(classes))
    return config_file, os.path.join(folder, "model_final.pth")


def shapes_cfg(architecture="retinanet", loss_type="smooth_l1"):
    """A tiny model of the shapes classes, as the training tools configure one."""
    cfg = tiny_cfg(architecture, loss_type)
    cfg.MODEL.RETINANET.NUM_CLASSES = cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(CLASS_NAMES)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("shapes_train",), ("shapes_val",)
    return cfg


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Config files and weights of model A (smooth_l1) and model B (focal_eiou)."""
    directory = tmp_path_factory.mktemp("models")
    return (
        save_run(directory / "smooth_l1", shapes_cfg("retinanet", "smooth_l1"), seed=0),
        save_run(directory / "focal_eiou", shapes_cfg("retinanet", "focal_eiou"), seed=1),
    )


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The records of the train and val splits of a registered shapes dataset (1 and 3 images)."""
    spec = ShapesSpec(train_images=1, val_images=3, image_size=SIZE)
    names = ("demo_shapes_train", DATASET)
    register_shapes(names, spec, root=str(tmp_path_factory.mktemp("d")))
    yield {
        split: DatasetCatalog.get(name) for split, name in zip(("train", "val"), names, strict=True)
    }
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture
def demo_log():
    """The messages of the demo's logger."""
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    demo.logger.addHandler(handler)
    yield messages
    demo.logger.removeHandler(handler)


def model_args(models, compare=True):
    (config_a, weights_a), (config_b, weights_b) = models
    args = ["--config-file", config_a, "--opts", "MODEL.WEIGHTS", weights_a]
    if compare:
        args += ["--compare-config", config_b, "--compare-weights", weights_b]
    return args


def read_image(path):
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def has_dashed_outline(panel, bbox):
    """Whether the top edge of the XYWH ``bbox`` in ``panel`` has the ground truth's dashes."""
    x0, y0, width, _ = (int(round(v)) for v in bbox)
    colours = {tuple(int(c) for c in pixel) for pixel in panel[y0, x0 : x0 + width]}
    return {(0, 0, 0), (255, 255, 255)} <= colours


@pytest.mark.slow
def test_cli_comparison_skips_corrupt_files_and_exits_1(models, shapes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for record in shapes["val"][:2]:
        shutil.copy(record["file_name"], folder)
    (folder / "x.png").write_bytes(np.random.default_rng(0).bytes(500))
    (folder / "y.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, not an input")
    output = tmp_path / "out"
    command = [sys.executable, str(REPO / "demo" / "demo.py"), *model_args(models)]
    command += ["--input", str(folder), "--output", str(output)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    log = run.stdout + run.stderr
    assert run.returncode == 1, log
    assert f"{folder / 'x.png'}: unreadable image: not an image" in log
    assert f"{folder / 'y.jpg'}: empty file" in log
    assert f"2 images written to {output}, 2 failed" in log
    written = sorted(os.listdir(output))
    assert written == sorted(os.path.basename(r["file_name"]) for r in shapes["val"][:2])
    for name in written:
        assert read_image(output / name).shape == (HEADER_HEIGHT + SIZE, 2 * SIZE + GAP, 3)


def test_single_model_keeps_each_image_size_and_exits_0(models, tmp_path):
    generator = np.random.default_rng(1)
    for name, shape in (("a.png", (64, 80, 3)), ("b.jpg", (50, 40, 3))):
        cv2.imwrite(str(tmp_path / name), generator.integers(0, 256, shape, dtype=np.uint8))
    output = tmp_path / "out"
    argv = [*model_args(models, compare=False), "--input", str(tmp_path / "*.*")]
    assert demo.main([*argv, "--output", str(output)]) == 0
    assert read_image(output / "a.png").shape == (64, 80, 3)
    assert read_image(output / "b.jpg").shape == (50, 40, 3)


def test_ground_truth_is_drawn_in_both_halves_of_one_output_file(models, shapes, tmp_path):
    record, output = shapes["val"][0], tmp_path / "vis" / "picture.png"
    args = model_args(models) + ["--input", record["file_name"], "--output", str(output)]
    args += ["--dataset", DATASET, "--show-gt", *NO_DETECTIONS]
    result = demo.run_demo(demo.parse_args(args))
    assert result.written == [str(output)] and result.failed == []
    panel = read_image(output)[HEADER_HEIGHT:]
    assert panel.shape == (SIZE, 2 * SIZE + GAP, 3)
    for left in (0, SIZE + GAP):
        assert has_dashed_outline(panel[:, left : left + SIZE], record["annotations"][0]["bbox"])


def test_show_gt_finds_images_by_path_never_by_name(models, shapes, tmp_path, demo_log):
    # Every split names its files 000001.png, ...: a train image and a copy of a val image in
    # another folder have names of val images, but are not images of the val dataset.
    train_image = shapes["train"][0]["file_name"]
    copied = tmp_path / "elsewhere" / os.path.basename(shapes["val"][1]["file_name"])
    copied.parent.mkdir()
    shutil.copy(shapes["val"][1]["file_name"], copied)
    val_record = shapes["val"][2]
    inputs = [train_image, str(copied), val_record["file_name"]]
    assert len({os.path.basename(p) for p in inputs}) == 3
    output = tmp_path / "out"
    args = [*model_args(models, compare=False), "--input", *inputs, "--output", str(output)]
    args += ["--dataset", DATASET, "--show-gt", *NO_DETECTIONS]
    result = demo.run_demo(demo.parse_args(args))
    assert len(result.written) == 3 and result.failed == []
    for path in inputs[:2]:  # drawn without ground truth (and without detections): unchanged
        np.testing.assert_array_equal(read_image(output / os.path.basename(path)), read_image(path))
    drawn = read_image(output / os.path.basename(val_record["file_name"]))
    assert has_dashed_outline(drawn, val_record["annotations"][0]["bbox"])
    warnings = [m for m in demo_log if "not images of dataset" in m]
    assert len(warnings) == 1 and warnings[0].startswith("2 of 3 images")
    assert train_image in warnings[0] and str(copied) in warnings[0]


def test_weights_of_another_architecture_stop_the_demo_naming_the_keys(models, tmp_path):
    faster_config, _ = save_run(tmp_path / "faster", shapes_cfg("faster_rcnn"))
    _, retinanet_weights = models[0]
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    as_model_a = ["--config-file", faster_config, "--opts", "MODEL.WEIGHTS", retinanet_weights]
    as_model_b = [*model_args(models, compare=False), "--compare-config", faster_config]
    as_model_b += ["--compare-weights", retinanet_weights]
    for argv in (as_model_a, as_model_b):
        argv += ["--input", str(image), "--output", str(tmp_path / "out")]
        message = run_expecting_error(argv)
        assert message.startswith(f"demo: error: the weights in {retinanet_weights} do not fit")
        assert "missing (backbone.fpn_lateral2.weight" in message and "unexpected (" in message
    assert not (tmp_path / "out" / "a.png").exists()


def test_class_count_and_names_follow_the_run_of_the_weights(tmp_path):
    # The config file says 7 shapes classes; the run that wrote the weights trained on 2.
    cfg = shapes_cfg()
    cfg.MODEL.RETINANET.NUM_CLASSES = 2
    _, weights = save_run(tmp_path / "run", cfg, classes=("cat", "dog"))
    cfg.MODEL.RETINANET.NUM_CLASSES = len(CLASS_NAMES)
    (tmp_path / "seven.yaml").write_text(cfg.dump())
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    args = ["--config-file", str(tmp_path / "seven.yaml"), "--opts", "MODEL.WEIGHTS", weights]
    args += ["--input", str(tmp_path / "a.png"), "--output", str(tmp_path / "out")]
    (model,) = demo.prepare(demo.parse_args(args)).models
    assert model.config.num_classes == model.predictor.model.num_classes == 2
    assert model.metadata.thing_classes == ["cat", "dog"]


@pytest.fixture
def coco_dataset(tmp_path):
    """A COCO-format dataset of JPEG images, one class with category id 7 (not registered)."""
    json_file, image_root = write_coco_tiny(tmp_path / "coco", num_images=2)
    yield "demo_coco", json_file, image_root
    for catalog in (DatasetCatalog, MetadataCatalog):
        if "demo_coco" in catalog.list():
            catalog.remove("demo_coco")


def test_coco_dataset_option_gives_ground_truth_and_the_run_s_class(coco_dataset, tmp_path):
    name, json_file, image_root = coco_dataset
    cfg = shapes_cfg()
    cfg.MODEL.RETINANET.NUM_CLASSES = 1
    config_file, weights = save_run(tmp_path / "run", cfg, classes=(CLASS_NAME,))
    image = os.path.join(image_root, sorted(os.listdir(image_root))[0])
    output = tmp_path / "out.png"
    args = ["--config-file", config_file, "--opts", "MODEL.WEIGHTS", weights]
    args += ["--coco-dataset", name, json_file, image_root, "--dataset", name, "--show-gt"]
    args += ["--input", image, "--output", str(output), *NO_DETECTIONS]
    assert demo.main(args) == 0
    record = next(r for r in DatasetCatalog.get(name) if r["file_name"] == image)
    assert has_dashed_outline(read_image(output), record["annotations"][0]["bbox"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--confidence-threshold", "1.5"], "--confidence-threshold must be in [0, 1], got 1.5"),
        (["--confidence-threshold", "-1"], "--confidence-threshold must be in [0, 1], got -1.0"),
        (["--confidence-threshold", "nan"], "--confidence-threshold must be in [0, 1], got nan"),
        (["--opts", "MODEL.DEVICE"], "--opts takes KEY VALUE pairs"),
        (["--compare-config", "b.yaml"], "--compare-config needs --compare-weights"),
        (["--names", "a", "b"], "--names needs --compare-weights"),
        (["--show-gt"], "--show-gt needs --dataset"),
    ],
)
def test_bad_values_are_refused_by_the_parser(extra, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args(["--config-file", "a.yaml", "--input", "x", "--output", "y", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def no_model(monkeypatch):
    """Makes building a model fail the test: what is checked must be checked before."""

    def build_predictor(cfg, weights):
        raise AssertionError("a model was built")

    monkeypatch.setattr(demo, "build_predictor", build_predictor)


def run_expecting_error(argv):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argv)
    return str(exit_info.value.code)


def test_output_that_cannot_be_written_is_an_error_before_any_model(models, tmp_path, no_model):
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    inputs = ["--input", str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    cases = [
        (str(blocker), f"--output {blocker}: {blocker} is a file, not a folder"),
        (str(blocker / "vis"), f"--output {blocker / 'vis'}: cannot create the folder"),
        (str(tmp_path / "one.png"), "is an image file name, but 2 images are given"),
    ]
    for output, message in cases:
        error = run_expecting_error([*model_args(models), *inputs, "--output", output])
        assert error.startswith("demo: error: ") and message in error


def test_inputs_that_give_no_image_are_an_error_before_any_model(models, tmp_path, no_model):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("")
    argv = [*model_args(models), "--output", str(tmp_path / "out"), "--input"]
    error = run_expecting_error([*argv, str(tmp_path / "empty"), str(tmp_path / "*.jpg")])
    assert f"no images in {tmp_path / 'empty'} (extensions: .bmp, .jpeg, .jpg, .png," in error
    assert f"no file matches {tmp_path / '*.jpg'}" in error
    error = run_expecting_error([*argv, str(tmp_path / "missing.png")])
    assert error == f"demo: error: no such file: {tmp_path / 'missing.png'}"
    assert not (tmp_path / "out").exists()


def test_an_output_that_would_replace_an_input_is_an_error_before_any_model(
    models, tmp_path, no_model
):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), np.zeros((8, 8, 3), np.uint8))
    before = {name: (folder / name).read_bytes() for name in ("a.png", "b.png")}
    argv = model_args(models, compare=False)
    cases = [
        ([str(folder)], str(folder), f"writing {folder / 'a.png'} would replace the input"),
        ([str(folder / "b.png")], str(folder / "b.png"), "would replace the input"),
        ([str(folder / "*.png")], str(folder), "(and 1 more)"),
    ]
    for inputs, output, message in cases:
        error = run_expecting_error([*argv, "--input", *inputs, "--output", output])
        assert error.startswith(f"demo: error: --output {output}: ") and message in error
    assert {name: (folder / name).read_bytes() for name in before} == before


def test_a_truncated_jpeg_is_reported_and_skipped_as_training_would(models, tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "whole.jpg"), image)
    encoded = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(encoded[: len(encoded) // 2])  # OpenCV draws its top half
    argv = [*model_args(models, compare=False), "--input", str(tmp_path / "*.jpg")]
    result = demo.run_demo(demo.parse_args([*argv, "--output", str(tmp_path / "out")]))
    assert result.written == [str(tmp_path / "out" / "whole.jpg")]
    [(path, reason)] = result.failed
    assert path == str(tmp_path / "cut.jpg") and "truncated" in reason


def test_opts_apply_to_both_models_and_b_has_its_own_weights(models, tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    args = model_args(models) + ["--input", str(tmp_path / "a.png")]
    args += ["--output", str(tmp_path / "out")]
    args[args.index("--opts") + 1 : args.index("--opts") + 1] = ["INPUT.MIN_SIZE_TEST", "48"]
    job = demo.prepare(demo.parse_args(args))
    assert [model.config.cfg.INPUT.MIN_SIZE_TEST for model in job.models] == [48, 48]
    for model, (_, weights) in zip(job.models, models, strict=True):
        saved = torch.load(weights, weights_only=False)["model"]["head.cls_score.weight"]
        assert torch.equal(model.predictor.model.head.cls_score.weight.detach(), saved)
    assert job.titles == ("smooth_l1 (baseline)", "focal_eiou")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the fallback without CUDA")
def test_a_cuda_config_runs_on_the_cpu_unless_cuda_is_asked_for(tmp_path):
    cfg = shapes_cfg()
    _, weights = save_run(tmp_path / "run", cfg)
    cfg.MODEL.DEVICE = "cuda"
    config_file = tmp_path / "cuda.yaml"
    config_file.write_text(cfg.dump())
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    argv = ["--config-file", str(config_file), "--input", str(tmp_path / "a.png")]
    argv += ["--output", str(tmp_path / "out"), "--opts", "MODEL.WEIGHTS", weights]
    assert demo.main(argv) == 0
    error = run_expecting_error([*argv, "MODEL.DEVICE", "cuda:0"])
    assert "MODEL.DEVICE cuda:0 was asked for; CUDA is unavailable" in error


def test_expand_inputs_reads_folders_globs_and_files(tmp_path):
    for name in ("b.png", "a.JPG", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    folder, missing = str(tmp_path), str(tmp_path / "missing.png")
    paths, problems = demo.expand_inputs([folder, str(tmp_path / "*.png"), missing])
    assert paths == [str(tmp_path / "a.JPG"), str(tmp_path / "b.png")]
    assert problems == [f"no such file: {missing}"]


def test_output_paths_do_not_overwrite_repeated_names(tmp_path):
    inputs = ["train/000001.png", "val/000001.png", "val/000002.png"]
    paths = demo.output_paths(inputs, str(tmp_path / "out"))
    names = [os.path.basename(path) for path in paths]
    assert names == ["000001.png", "000001_1.png", "000002.png"]
