"""demo/demo.py with tiny randomly initialized RetinaNets on generated shapes images."""

import importlib.util
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from tiny_models import REPO, tiny_cfg

from focal_eiou_d2.data import CLASS_NAMES, ShapesSpec, register_shapes
from focal_eiou_d2.visualization.draw import GAP, HEADER_HEIGHT

SIZE = 96  # side of the generated images
DATASET = "demo_shapes_val"


def load_demo():
    spec = importlib.util.spec_from_file_location("focal_eiou_demo", REPO / "demo" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = load_demo()


def save_tiny_model(directory, loss_type, seed):
    """Writes ``<loss_type>.yaml`` and ``<loss_type>.pth`` of a random tiny RetinaNet."""
    cfg = tiny_cfg("retinanet", loss_type)
    cfg.MODEL.RETINANET.NUM_CLASSES = len(CLASS_NAMES)
    cfg.DATASETS.TEST = ("shapes_val",)  # class names of the default metadata
    torch.manual_seed(seed)
    DetectionCheckpointer(build_model(cfg), save_dir=str(directory)).save(loss_type)
    config_file = directory / f"{loss_type}.yaml"
    config_file.write_text(cfg.dump())
    return str(config_file), str(directory / f"{loss_type}.pth")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Config files and weights of model A (smooth_l1) and model B (focal_eiou)."""
    directory = tmp_path_factory.mktemp("models")
    return save_tiny_model(directory, "smooth_l1", 0), save_tiny_model(directory, "focal_eiou", 1)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The records of a registered 3-image validation split of shapes."""
    spec = ShapesSpec(train_images=1, val_images=3, image_size=SIZE)
    register_shapes(("demo_shapes_train", DATASET), spec, root=str(tmp_path_factory.mktemp("d")))
    yield DatasetCatalog.get(DATASET)
    for name in ("demo_shapes_train", DATASET):
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def model_args(models, compare=True):
    (config_a, weights_a), (config_b, weights_b) = models
    args = ["--config-file", config_a, "--opts", "MODEL.WEIGHTS", weights_a]
    if compare:
        args += ["--compare-config", config_b, "--compare-weights", weights_b]
    return args


def image_shape(path):
    image = cv2.imread(str(path))
    assert image is not None, path
    return image.shape


def test_cli_comparison_skips_corrupt_files_and_exits_1(models, shapes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for record in shapes[:2]:
        shutil.copy(record["file_name"], folder)
    (folder / "x.png").write_bytes(np.random.default_rng(0).bytes(500))
    (folder / "y.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, not an input")
    output = tmp_path / "out"
    command = [sys.executable, str(REPO / "demo" / "demo.py"), *model_args(models)]
    command += ["--input", str(folder), "--output", str(output)]
    run = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    log = run.stdout + run.stderr
    assert run.returncode == 1, log
    assert "x.png" in log and "y.jpg" in log and "empty file" in log
    assert f"2 images written to {output}, 2 failed" in log
    written = sorted(os.listdir(output))
    assert written == sorted(os.path.basename(r["file_name"]) for r in shapes[:2])
    for name in written:
        assert image_shape(output / name) == (HEADER_HEIGHT + SIZE, 2 * SIZE + GAP, 3)


def test_single_model_keeps_each_image_size_and_exits_0(models, tmp_path):
    generator = np.random.default_rng(1)
    inputs = []
    for name, shape in (("a.png", (64, 80, 3)), ("b.jpg", (50, 40, 3))):
        cv2.imwrite(str(tmp_path / name), generator.integers(0, 256, shape, dtype=np.uint8))
        inputs.append(str(tmp_path / name))
    output = tmp_path / "out"
    argv = [*model_args(models, compare=False), "--input", str(tmp_path / "*.*")]
    assert demo.main([*argv, "--output", str(output)]) == 0
    assert image_shape(output / "a.png") == (64, 80, 3)
    assert image_shape(output / "b.jpg") == (50, 40, 3)


def test_ground_truth_is_drawn_in_both_halves_of_one_output_file(models, shapes, tmp_path):
    record, output = shapes[0], tmp_path / "vis" / "picture.png"
    args = model_args(models) + ["--input", record["file_name"], "--output", str(output)]
    args += ["--dataset", DATASET, "--show-gt", "--confidence-threshold", "1.01"]
    result = demo.run_demo(demo.parse_args(args))
    assert result.written == [str(output)] and result.failed == []
    assert image_shape(output) == (HEADER_HEIGHT + SIZE, 2 * SIZE + GAP, 3)
    panel = cv2.imread(str(output))[HEADER_HEIGHT:]
    x0, y0, width, _ = (int(round(v)) for v in record["annotations"][0]["bbox"])
    for left in (0, SIZE + GAP):
        edge = panel[y0, left + x0 : left + x0 + width]
        colours = {tuple(int(c) for c in pixel) for pixel in edge}
        assert {(0, 0, 0), (255, 255, 255)} <= colours


def test_expand_inputs_reads_folders_globs_and_files(tmp_path):
    for name in ("b.png", "a.JPG", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    folder, missing = str(tmp_path), str(tmp_path / "missing.png")
    paths, unmatched = demo.expand_inputs([folder, str(tmp_path / "*.png"), missing])
    assert paths == [str(tmp_path / "a.JPG"), str(tmp_path / "b.png")]
    assert unmatched == [missing]


def test_output_paths_do_not_overwrite_repeated_names(tmp_path):
    inputs = ["train/000001.png", "val/000001.png", "val/000002.png"]
    paths = demo.output_paths(inputs, str(tmp_path / "out"))
    names = [os.path.basename(path) for path in paths]
    assert names == ["000001.png", "000001_1.png", "000002.png"]
