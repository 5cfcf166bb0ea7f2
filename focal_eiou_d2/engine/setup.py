"""The one builder of this project's Detectron2 configs, and the checks that run before any work."""

import logging
import os
from pathlib import Path

import torch
from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog

from focal_eiou_d2 import add_focal_eiou_config
from focal_eiou_d2.config import box_loss_node
from focal_eiou_d2.data import dataset_classes, num_classes_for, register_coco_datasets

from .run_dir import run_classes

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


def build_config(
    config_file,
    opts=(),
    *,
    output_dir=None,
    weights=None,
    cpu_fallback=False,
    coco_datasets=(),
    classes_from="train",
):
    """Build the frozen config of ``config_file`` with ``opts`` merged in.

    Registers the embedded datasets and ``coco_datasets`` first (call it in every process of a
    distributed run). An unknown key in the file raises yacs' KeyError, one in ``opts`` a
    ValueError; this project's values are checked when the model is built.

    Args:
        config_file (str): a YAML config (found relative to the project's checkout too).
        opts (list[str]): overrides ``[KEY, VALUE, ...]``.
        output_dir (str or None): replaces OUTPUT_DIR.
        weights (str or None): replaces MODEL.WEIGHTS (after ``opts``).
        cpu_fallback (bool): for inference tools: run on the CPU when the config asks for CUDA,
            CUDA is unavailable and ``opts`` do not ask for it explicitly.
        coco_datasets (list[CocoDataset]): datasets of ``--coco-dataset``, registered first.
        classes_from (str): where the head's class count (:func:`class_count_node`) comes
            from: "train", the classes of DATASETS.TRAIN (training tools); "run", those recorded
            with the run that trained MODEL.WEIGHTS, else DATASETS.TRAIN's (inference tools:
            weights and head must match); "config", the config's value. A count given in
            ``opts`` is kept, but may not be smaller than the dataset's.

    Returns:
        CfgNode: the frozen config.

    Raises:
        ValueError: ``opts`` is not a list of KEY VALUE pairs, names a key the config does not
            have, asks for CUDA where there is none (with ``cpu_fallback``), or a dataset
            problem (``focal_eiou_d2.data.DatasetError``).
    """
    import focal_eiou_d2.data  # noqa: F401  registers the embedded datasets

    if classes_from not in ("train", "run", "config"):
        raise ValueError(f"classes_from must be train, run or config, got {classes_from!r}")
    opts = list(opts)
    if len(opts) % 2:
        raise ValueError(
            f"config overrides must be KEY VALUE pairs (options such as --resume go before "
            f"them), got an odd number: {' '.join(opts)}"
        )
    register_coco_datasets(coco_datasets)
    cfg = get_cfg()
    add_focal_eiou_config(cfg)
    cfg.merge_from_file(resolve_config_file(config_file))
    try:
        cfg.merge_from_list(opts)
    except AssertionError as error:  # yacs asserts that an overridden key exists
        raise ValueError(
            f"{error} (check the key's spelling; docs/configs.md lists this project's keys)"
        ) from None
    if output_dir:
        cfg.OUTPUT_DIR = output_dir
    if weights is not None:
        cfg.MODEL.WEIGHTS = weights
    if classes_from != "config":
        classes = run_classes(cfg.MODEL.WEIGHTS) if classes_from == "run" else None
        if classes is None and cfg.DATASETS.TRAIN:
            classes = dataset_classes(cfg.DATASETS.TRAIN)
        if classes is not None:
            head = class_count_node(cfg)
            key = f"MODEL.{head}.NUM_CLASSES"
            cfg.MODEL[head].NUM_CLASSES = num_classes_for(
                len(classes), key, cfg.MODEL[head].NUM_CLASSES, key in opts[::2]
            )
    if cpu_fallback and cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        if "MODEL.DEVICE" in opts[::2]:
            raise ValueError(f"MODEL.DEVICE {cfg.MODEL.DEVICE} was asked for; CUDA is unavailable")
        logger.info("CUDA is unavailable: running %s on the CPU", config_file)
        cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    return cfg


def class_count_node(cfg):
    """The node of MODEL whose NUM_CLASSES is the head's class count: RETINANET for RetinaNet
    meta-architectures, ROI_HEADS otherwise."""
    return "RETINANET" if box_loss_node(cfg) == "RETINANET" else "ROI_HEADS"


def check_datasets_exist(names):
    """Raise FileNotFoundError naming the expected files when a dataset of ``names`` is missing.

    Datasets whose metadata names a ``json_file`` (Detectron2's builtin COCO registration, or
    ``register_coco_instances``) are checked; datasets generated on first use are skipped.

    Args:
        names (Iterable[str]): registered dataset names (the training ones, and the test ones;
            evaluation needs only the latter).
    """
    root = os.environ.get("DETECTRON2_DATASETS", "datasets")
    for name in names:
        metadata = MetadataCatalog.get(name)
        json_file = metadata.get("json_file", None)
        if json_file is None or metadata.get("generated_on_first_use", False):
            continue
        missing = [p for p in (json_file, metadata.get("image_root", ".")) if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"dataset {name!r} is not where Detectron2 expects it: missing {missing}. "
                f"Builtin datasets are read under $DETECTRON2_DATASETS (now {root!r}, relative to "
                f"the current folder); for COCO 2017 that is "
                f"{root}/coco/annotations/instances_{{train,val}}2017.json and "
                f"{root}/coco/{{train,val}}2017/. Set DETECTRON2_DATASETS to the folder holding "
                "coco/, register your own data with --coco-dataset NAME JSON IMAGE_DIR, or train "
                "on the embedded dataset (configs/quickstart/)."
            )
