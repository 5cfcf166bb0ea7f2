"""docs/your_data.md end to end: a COCO-format dataset made outside the project (JPEG images, one
class with a non-contiguous category id) goes through every tool with ``--coco-dataset`` and no
Python written: training with both losses, evaluation, the side-by-side demo, the report."""

import json
import os
import subprocess
import sys

import pytest
from coco_tiny import CATEGORY_ID, CLASS_NAME, write_coco_tiny
from tiny_models import REPO, SMOKE_OPTS

FOCAL = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
SMOOTH = "configs/quickstart/retinanet_R_18_FPN_shapes.yaml"
# SMOKE_OPTS without its datasets: the command line names the user's.
SMALL = [item for pair in zip(SMOKE_OPTS[::2], SMOKE_OPTS[1::2], strict=True)
         if not pair[0].startswith("DATASETS") for item in pair]  # fmt: skip


def run(*command):
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # demo/demo.py imports this checkout's package
    result = subprocess.run(
        [sys.executable, *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_every_tool_takes_a_coco_dataset(tmp_path):
    train_json, train_images = write_coco_tiny(str(tmp_path / "data" / "train"), num_images=8)
    val_json, val_images = write_coco_tiny(str(tmp_path / "data" / "val"), seed=1)
    data = ["--coco-dataset", "mine_train", train_json, train_images]
    data += ["--coco-dataset", "mine_val", val_json, val_images]
    splits = ["DATASETS.TRAIN", "('mine_train',)", "DATASETS.TEST", "('mine_val',)"]
    runs = {}
    for name, config in (("focal_eiou", FOCAL), ("smooth_l1", SMOOTH)):
        runs[name] = tmp_path / "output" / name
        command = ["-m", "focal_eiou_d2.tools.quickstart", "--config-file", config, *data]
        run(*command, "--output-dir", str(runs[name]), *splits, *SMALL)
        assert json.loads((runs[name] / "run.json").read_text())["classes"] == [CLASS_NAME]
        assert "NUM_CLASSES: 1\n" in (runs[name] / "config.yaml").read_text()
    detections = json.loads(
        (runs["focal_eiou"] / "inference" / "mine_val" / "coco_instances_results.json").read_text()
    )
    assert detections and {d["category_id"] for d in detections} == {CATEGORY_ID}

    weights = {name: str(folder / "model_final.pth") for name, folder in runs.items()}
    evaluated = run("train_net.py", "--eval-only", "--config-file", FOCAL, *data[4:], *SMALL,
                    "DATASETS.TEST", "('mine_val',)", "MODEL.WEIGHTS", weights["focal_eiou"],
                    "OUTPUT_DIR", str(tmp_path / "eval"))  # fmt: skip
    assert "copypaste: AP,AP50" in evaluated.stdout + evaluated.stderr

    run("demo/demo.py", "--config-file", SMOOTH, "--compare-config", FOCAL,
        "--compare-weights", weights["focal_eiou"], *data[4:], "--dataset", "mine_val",
        "--show-gt", "--input", val_images, "--output", str(tmp_path / "demo"),
        "--opts", "MODEL.WEIGHTS", weights["smooth_l1"])  # fmt: skip
    assert len(list((tmp_path / "demo").iterdir())) == 4

    run("-m", "focal_eiou_d2.tools.compare", *data[4:], "--dataset", "mine_val",
        "--output", str(tmp_path / "report"), "--config-a", SMOOTH,
        "--weights-a", weights["smooth_l1"], "--config-b", FOCAL,
        "--weights-b", weights["focal_eiou"])  # fmt: skip
    assert "AP (0.50:0.95)" in (tmp_path / "report" / "report.md").read_text()
