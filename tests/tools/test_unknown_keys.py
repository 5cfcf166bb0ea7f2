"""An override that names a key the config lacks stops every training tool with one line that
names the key, before any work (no traceback, no output folder)."""

import subprocess
import sys

import pytest
from tiny_models import REPO

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"


@pytest.mark.parametrize(
    "tool, prefix",
    [(["train_net.py"], "train_net.py"), (["-m", "focal_eiou_d2.tools.quickstart"], "quickstart")],
)
def test_an_unknown_key_is_one_line_naming_it(tool, prefix, tmp_path):
    output = tmp_path / "run"
    command = [sys.executable, *tool, "--config-file", CONFIG, "MODEL.FOCAL_EIOU.GAMA", "1.0"]
    command += (
        ["OUTPUT_DIR", str(output)] if prefix == "train_net.py" else ["--output-dir", str(output)]
    )
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert (
        f"{prefix}: error: Non-existent key: MODEL.FOCAL_EIOU.GAMA (check the key's spelling"
        in (result.stderr)
    )
    assert "Traceback" not in result.stderr and not output.exists()
