"""An override that names a key a config lacks (YAML or LazyConfig) stops the training tools with
one line that names the key, before any work (no traceback, no output folder)."""

import subprocess
import sys

import pytest
from tiny_models import REPO

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
LAZY_CONFIG = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"
TOOLS = [
    (["train_net.py"], "train_net.py"),
    (["-m", "focal_eiou_d2.tools.quickstart"], "quickstart"),
]


@pytest.mark.parametrize("tool, prefix", TOOLS)
def test_an_unknown_key_is_one_line_naming_it(tool, prefix, tmp_path):
    output = tmp_path / "run"
    command = [sys.executable, *tool, "--config-file", CONFIG]
    if prefix == "train_net.py":  # the output folder first, so that it is the one made
        command += ["OUTPUT_DIR", str(output)]
    else:
        command += ["--output-dir", str(output)]
    command += ["MODEL.FOCAL_EIOU.GAMA", "1.0"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    expected = f"{prefix}: error: Non-existent key: MODEL.FOCAL_EIOU.GAMA (check the key's spelling"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()


def test_an_unknown_lazyconfig_key_is_one_line_naming_it(tmp_path):
    output = tmp_path / "run"
    command = [sys.executable, "train_net.py", "--config-file", LAZY_CONFIG]
    command += [f"train.output_dir={output}", "train.max_iters=5"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "train_net.py: error: Non-existent key: train.max_iters (check" in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()
