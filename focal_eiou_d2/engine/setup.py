"""The one builder of this project's Detectron2 configs, and the checks that run before any work."""

import logging
import os
from pathlib import Path

import torch
from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog

from focal_eiou_d2 import add_focal_eiou_config

logger = logging.getLogger(__name__)

# The checkout this package lives in (configs/ are found there when run from another folder).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_config_file(config_file):
    """``config_file`` as given if it exists, else relative to the project's checkout.

    Raises:
        FileNotFoundError: neither exists.
    """
    if os.path.isfile(config_file):
        return config_file
    in_project = PROJECT_ROOT / config_file
    if not os.path.isabs(config_file) and in_project.is_file():
        return str(in_project)
    raise FileNotFoundError(
        f"config file {config_file} not found (nor under {PROJECT_ROOT}); give a path to a YAML "
        "file, e.g. configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
    )


def build_config(config_file, opts=(), *, output_dir=None, weights=None, cpu_fallback=False):
    """Build the frozen config of ``config_file`` with ``opts`` merged in.

    Registers the embedded datasets first. Unknown keys in the file or in ``opts`` raise
    Detectron2's KeyError; this project's values are checked when the model is built.

    Args:
        config_file (str): a YAML config (found relative to the project's checkout too).
        opts (list[str]): overrides ``[KEY, VALUE, ...]``.
        output_dir (str or None): replaces OUTPUT_DIR.
        weights (str or None): replaces MODEL.WEIGHTS (after ``opts``).
        cpu_fallback (bool): for inference tools: run on the CPU when the config asks for CUDA,
            CUDA is unavailable and ``opts`` do not ask for it explicitly.

    Returns:
        CfgNode: the frozen config.

    Raises:
        ValueError: ``opts`` is not a list of KEY VALUE pairs, or asks for CUDA where there is
            none (with ``cpu_fallback``).
    """
    import focal_eiou_d2.data  # noqa: F401  registers the embedded datasets

    opts = list(opts)
    if len(opts) % 2:
        raise ValueError(f"config overrides must be KEY VALUE pairs, got an odd number: {opts}")
    cfg = get_cfg()
    add_focal_eiou_config(cfg)
    cfg.merge_from_file(resolve_config_file(config_file))
    cfg.merge_from_list(opts)
    if output_dir:
        cfg.OUTPUT_DIR = output_dir
    if weights is not None:
        cfg.MODEL.WEIGHTS = weights
    if cpu_fallback and cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        if "MODEL.DEVICE" in opts[::2]:
            raise ValueError(f"MODEL.DEVICE {cfg.MODEL.DEVICE} was asked for; CUDA is unavailable")
        logger.info("CUDA is unavailable: running %s on the CPU", config_file)
        cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    return cfg


def check_datasets_exist(cfg, splits=("TRAIN", "TEST")):
    """Raise FileNotFoundError naming the expected files when a configured dataset is missing.

    Datasets whose metadata names a ``json_file`` (Detectron2's builtin COCO registration, or
    ``register_coco_instances``) are checked; datasets generated on first use are skipped.

    Args:
        cfg (CfgNode): the config.
        splits (tuple[str]): which of DATASETS.TRAIN and DATASETS.TEST to check (evaluation needs
            only the test datasets).
    """
    root = os.environ.get("DETECTRON2_DATASETS", "datasets")
    for name in (name for split in splits for name in cfg.DATASETS[split]):
        metadata = MetadataCatalog.get(name)
        json_file = metadata.get("json_file", None)
        if json_file is None or metadata.get("generated_on_first_use", False):
            continue
        missing = [p for p in (json_file, metadata.get("image_root", ".")) if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"dataset {name!r} is not where Detectron2 expects it: missing {missing}. "
                f"Builtin datasets are read under $DETECTRON2_DATASETS (now {root!r}); for COCO "
                f"2017 that is {root}/coco/annotations/instances_{{train,val}}2017.json and "
                f"{root}/coco/{{train,val}}2017/. Set DETECTRON2_DATASETS to the folder holding "
                "coco/, register your own data with --coco-dataset NAME JSON IMAGE_DIR, or train "
                "on the embedded dataset (configs/quickstart/)."
            )
