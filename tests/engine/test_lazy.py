"""LazyConfig (.py) configs: the shipped ones build, ``use_box_loss`` switches every model family,
the loss is found in the model, and the tools train, evaluate and draw with them."""

import json
import os
import subprocess
import sys

import pytest
from detectron2 import model_zoo
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog
from tiny_models import LAZY_SMOKE_OPTS, REPO

from focal_eiou_d2.engine import load_run_config
from focal_eiou_d2.layers import wiou_momentum
from focal_eiou_d2.lazy_config import box_loss_nodes, use_box_loss
from focal_eiou_d2.modeling import (
    BoxRegressionLoss,
    FocalEIoUFastRCNNOutputLayers,
    FocalEIoUFCOS,
    FocalEIoURetinaNet,
)
from focal_eiou_d2.tools import quickstart
from focal_eiou_d2.tools.run_store import BACKBONE_PREFIX

QUICKSTART = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"
LAZY_CONFIGS = sorted(p for p in REPO.glob("configs/lazy/**/*.py") if "common" not in p.parts)


@pytest.mark.parametrize("path", LAZY_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_build_with_focal_eiou(path):
    config = load_run_config(str(path), ["train.device=cpu"], classes_from="config")
    assert config.loss_type == "focal_eiou"
    weights = [item for item in config.loss_overrides("focal_eiou") if "weight" in item]
    assert weights and all(item.endswith("=2.5") for item in weights)
    model = config.build_model()
    losses = [m for m in [model, *model.modules()] if isinstance(getattr(m, "box_loss", None),
              BoxRegressionLoss)]  # fmt: skip
    assert losses and all(m.box_loss.loss_type == "focal_eiou" for m in losses)


def test_fcos_protocol_fine_tunes_the_shared_retinanet_backbone():
    """The FCOS reproduction runs start from the RetinaNet pretraining's ResNet (--pretrain): every
    ResNet entry of the FCOS model must be in that export with its shape, or it would start (and
    stay, frozen) random with only a warning from Detectron2's loader."""
    fcos = load_run_config(str(REPO / "configs/reproduction/fcos_R_18_FPN_shapes1.py"), [])
    assert fcos.loss_type == "giou"
    pretrain = load_run_config(
        str(REPO / "configs/reproduction/pretrain_retinanet_R_18_FPN_shapes1.yaml"), []
    )
    exported = {
        name: value.shape
        for name, value in pretrain.build_model().state_dict().items()
        if name.startswith(BACKBONE_PREFIX)
    }
    model = fcos.build_model()
    resnet = {n: v.shape for n, v in model.state_dict().items() if n.startswith(BACKBONE_PREFIX)}
    assert resnet and all(exported.get(name) == shape for name, shape in resnet.items())
    assert not any(p.requires_grad for p in model.backbone.bottom_up.parameters())


@pytest.mark.parametrize(
    "name, target, nodes",
    [
        ("retinanet", FocalEIoURetinaNet, ["model.box_loss"]),
        ("fcos", FocalEIoUFCOS, ["model.box_loss"]),
        (
            "mask_rcnn_fpn",
            FocalEIoUFastRCNNOutputLayers,
            ["model.roi_heads.box_predictor.box_loss"],
        ),
    ],
)
def test_use_box_loss_switches_every_model_family(name, target, nodes):
    model = model_zoo.get_config(f"common/models/{name}.py").model
    assert box_loss_nodes(model) == []
    use_box_loss(model, "eiou")
    assert box_loss_nodes(model) == nodes
    switched = model if name != "mask_rcnn_fpn" else model.roi_heads.box_predictor
    assert switched._target_ is target
    assert switched.box_loss.loss_type == "eiou"
    with pytest.raises(ValueError, match="unknown box-regression loss 'eoiu'"):
        use_box_loss(model, "eoiu")


def test_box_loss_weight_and_parameters():
    model = model_zoo.get_config("common/models/retinanet.py").model
    use_box_loss(model, "focal_eiou", weight=1.5, gamma=1.0)
    assert model.box_reg_loss_weight == 1.5 and model.box_loss.params == {"gamma": 1.0}
    model.backbone.bottom_up.stages.norm = model.backbone.bottom_up.stem.norm = "BN"
    built = instantiate(model)
    assert built.box_loss.params["gamma"] == 1.0 and built.box_reg_loss_weight == 1.5


def test_wiou_v3_momentum_is_given_explicitly():
    model = model_zoo.get_config("common/models/retinanet.py").model
    use_box_loss(model, "wiou_v3", momentum=wiou_momentum(500), delta=2.5)
    loss = instantiate(model.box_loss)
    assert loss.momentum == wiou_momentum(500) and loss.params["delta"] == 2.5
    use_box_loss(model, "wiou_v3")
    with pytest.raises(ValueError, match="needs its momentum"):
        instantiate(model.box_loss)
    use_box_loss(model, "eiou")
    assert "momentum" not in model.box_loss


def test_loss_is_found_in_the_model_and_overridden():
    config = load_run_config(QUICKSTART)
    other = load_run_config(QUICKSTART, config.loss_overrides("smooth_l1"))
    assert other.loss_type == "smooth_l1" and other.cfg.model.box_reg_loss_weight == 1.0


def test_overrides_must_be_key_value():
    with pytest.raises(ValueError, match="key=value"):
        load_run_config(QUICKSTART, ["train.max_iter", "2"])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    config = load_run_config(
        QUICKSTART, LAZY_SMOKE_OPTS, output_dir=str(tmp_path_factory.mktemp("lazy_run"))
    )
    return config, quickstart.run(config, num_visualizations=1)


@pytest.mark.slow
def test_quickstart_trains_evaluates_and_draws(finished_run):
    config, saved = finished_run
    assert 0.0 <= saved["bbox"]["AP"] <= 100.0 and len(saved["ap_per_iou"]) == 10
    folder = REPO / config.output_dir
    assert (folder / "config.py").is_file() and (folder / "visualizations").is_dir()
    assert json.loads((folder / "run.json").read_text())["classes"][0] == "rectangle"


@pytest.mark.slow
def test_demo_draws_with_a_lazy_config(finished_run, tmp_path):
    config, _ = finished_run
    weights = f"train.init_checkpoint={config.output_dir}/model_final.pth"
    command = [sys.executable, "demo/demo.py", "--config-file", QUICKSTART, "--input"]
    command += [DatasetCatalog.get("shapes_mini_val")[0]["file_name"]]
    command += ["--output", str(tmp_path / "out.png"), "--opts", *LAZY_SMOKE_OPTS, weights]
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # demo/demo.py imports this checkout's package
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out.png").stat().st_size > 0
