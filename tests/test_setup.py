"""The environment the set-up script provides."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from focal_eiou_d2.collect_env import collect_env
from focal_eiou_d2.compiled_ops import detectron2_has_compiled_ops

REPO = Path(__file__).resolve().parents[1]
INSTALLER = REPO / "scripts" / "install_detectron2.py"


def run_python(code_or_args, **kwargs):
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, **kwargs
    )


def test_detectron2_distribution_is_at_least_0_6():
    version = importlib.metadata.version("detectron2")
    assert tuple(int(p) for p in version.split("+")[0].split(".")[:2]) >= (0, 6)


def test_collect_env_reports_torch_and_detectron2():
    rows = dict(collect_env())
    assert {"torch", "CUDA available", "detectron2", "detectron2 compiled ops"} <= set(rows)
    assert rows["detectron2"].startswith("0.6")


@pytest.mark.skipif(detectron2_has_compiled_ops(), reason="official build with compiled ops")
def test_missing_compiled_op_raises_only_when_called():
    import detectron2.layers  # imports detectron2._C at module level: must work
    from detectron2 import _C

    message = r"box_iou_rotated is a compiled operator.*official build"
    with pytest.raises(RuntimeError, match=message):
        _C.box_iou_rotated(None, None)
    with pytest.raises(AttributeError):
        _C.__wrapped__  # noqa: B018  dunder lookups stay ordinary AttributeErrors
    assert detectron2.layers.batched_nms is not None


def test_loss_library_imports_with_torch_alone():
    blocked = ["detectron2", "cv2", "matplotlib", "fvcore", "pycocotools", "focal_eiou_d2.modeling"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import torch, focal_eiou_d2.layers as L\n"
        "b = torch.tensor([[0., 0., 2., 2.]])\n"
        "print(float(L.focal_eiou_loss(b, b)))\n"
    )
    result = run_python(code, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.0"


def fake_detectron2(tmp_path, version):
    package = tmp_path / "detectron2"
    package.mkdir()
    (package / "__init__.py").write_text(f"__version__ = {version!r}\n")
    return {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}


def test_installer_keeps_an_existing_detectron2(tmp_path):
    result = run_python([str(INSTALLER)], env=fake_detectron2(tmp_path, "0.6+cu118"))
    assert result.returncode == 0, result.stderr
    assert "detectron2 0.6+cu118 already imports: keeping it." in result.stdout


def test_installer_refuses_to_replace_an_older_detectron2(tmp_path):
    result = run_python([str(INSTALLER)], env=fake_detectron2(tmp_path, "0.5"))
    assert result.returncode != 0
    assert "needs >= 0.6" in result.stderr and "pip uninstall detectron2" in result.stderr
