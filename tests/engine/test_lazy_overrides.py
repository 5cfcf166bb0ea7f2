"""A LazyConfig override may not create a misspelt key (Detectron2's apply_overrides would): new
keys only where they are meant to be, each override checked against the config it changes."""

import re

import pytest
from detectron2.config import LazyConfig
from omegaconf import OmegaConf
from tiny_models import LAZY_SMOKE_OPTS, REPO

from focal_eiou_d2.data.train_loader import build_lazy_train_loader
from focal_eiou_d2.engine import load_run_config
from focal_eiou_d2.engine.lazy_overrides import apply_overrides, check_key

QUICKSTART = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"


@pytest.mark.parametrize(
    "key",
    [
        "train.max_iters",  # a misspelt field of a plain node
        "trian.max_iter",
        "model.backbone.nope.x",
        "train.max_iter.x",  # below a value
        "dataloader.train.mapper.augmentations.9.x",  # past a list's end
        "model.box_loss.paramz.gamma",
    ],
)
def test_an_override_of_a_missing_key_is_an_error(key):
    with pytest.raises(ValueError, match=f"Non-existent key: {re.escape(key)} "):
        load_run_config(QUICKSTART, [f"{key}=1"])


def test_new_keys_where_they_are_meant_to_be():
    overrides = [
        "model.backbone.bottom_up.freeze_at=2",  # an argument the target takes, not set yet
        "model.box_loss.params.gamma=0.25",  # a loss parameter (checked when the loss is built)
        "+train.extra={a:1}",  # Hydra's explicit add ...
        "train.extra.a=2",  # ... and a key below it, checked after it is applied
    ]
    cfg = apply_overrides(LazyConfig.load(str(REPO / QUICKSTART)), overrides)
    assert cfg.model.backbone.bottom_up.freeze_at == 2
    assert cfg.model.box_loss.params == {"gamma": 0.25} and cfg.train.extra == {"a": 2}


def test_train_seed_is_optional(monkeypatch):
    cfg = LazyConfig.load(str(REPO / QUICKSTART))
    del cfg.train["seed"]
    monkeypatch.setattr(LazyConfig, "load", staticmethod(lambda path: cfg))
    assert load_run_config(QUICKSTART, ["train.seed=3"]).seed == 3


def test_missing_values_and_interpolations_are_keys():
    cfg = OmegaConf.create({"train": {"a": "???", "b": "${nope}"}})
    for key in ("train.a", "train.b", "train.a.x", "train.b.y"):
        check_key(cfg, key)


def test_deleting_a_key_is_a_clear_error():
    with pytest.raises(ValueError, match="deleting a key is not supported"):
        apply_overrides(LazyConfig.load(str(REPO / QUICKSTART)), ["~train.max_iter"])


def test_a_field_the_training_loader_does_not_read_is_an_error(tmp_path):
    """Detectron2 main's build_detection_train_loader takes **kwargs: a misspelt field passes the
    override check there and is refused when the loader is built (0.6: by the check)."""
    config = load_run_config(QUICKSTART, LAZY_SMOKE_OPTS, output_dir=str(tmp_path))
    config.cfg.dataloader.train.num_worker = 0
    with pytest.raises(ValueError, match=r"dataloader\.train\.num_worker is not used"):
        build_lazy_train_loader(config.cfg.dataloader.train, seed=0)


def _load_with_train(monkeypatch, overrides=(), **fields):
    """Load the quickstart LazyConfig with ``overrides`` as if its file set ``fields`` (dotted by
    "__") of train."""
    cfg = LazyConfig.load(str(REPO / QUICKSTART))
    for name, value in fields.items():
        *parents, key = name.split("__")
        node = cfg.train
        for parent in parents:
            node = node[parent]
        node[key] = value
    load = LazyConfig.load  # also reads Detectron2's common/train.py, the reference
    monkeypatch.setattr(
        LazyConfig,
        "load",
        staticmethod(lambda path: cfg if path.endswith(QUICKSTART) else load(path)),
    )
    return load_run_config(QUICKSTART, [*LAZY_SMOKE_OPTS, *overrides])


@pytest.mark.parametrize(
    "field, key",
    [("max_iters", "train.max_iters"), ("amp__enable", "train.amp.enable")],
)
def test_a_misspelt_train_key_in_the_file_is_an_error(monkeypatch, field, key):
    with pytest.raises(ValueError, match=f"{re.escape(QUICKSTART)}: unknown key {key} "):
        _load_with_train(monkeypatch, **{field: 5})


def test_train_keys_that_detectron2_reads_are_known(monkeypatch):
    config = _load_with_train(
        monkeypatch,
        ["train.cudnn_benchmark=True"],  # read by default_setup, set by model-zoo configs
        ddp__static_graph=True,  # an argument of DistributedDataParallel
        checkpointer__file_prefix="model",  # an argument of PeriodicCheckpointer
    )
    assert config.cfg.train.cudnn_benchmark and config.cfg.train.ddp.static_graph


def test_a_star_import_in_a_config_file_is_a_clear_error(tmp_path):
    (tmp_path / "recipe.py").write_text("train = dict(max_iter=1)\n")
    (tmp_path / "star.py").write_text("from .recipe import *\n")
    with pytest.raises(ValueError, match=r"star\.py:1: Detectron2's LazyConfig cannot import \*"):
        load_run_config(str(tmp_path / "star.py"))
