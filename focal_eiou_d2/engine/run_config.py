"""The one config builder of this project: both kinds of Detectron2 config behind one interface,
so that every tool takes either.

- a YAML config (``.yaml``): a yacs ``CfgNode``, overrides as ``KEY VALUE`` pairs (Detectron2's
  ``train_net.py`` convention), trained by :class:`FocalEIoUTrainer`;
- a LazyConfig (``.py``): a Python file of ``LazyCall`` nodes, overrides as ``key=value``
  (Detectron2's ``lazyconfig_train_net.py`` convention), trained by :class:`LazyTrainer`.

:func:`load_run_config` tells them apart by the extension. :meth:`RunConfig.load` applies one
policy to both: this project's config keys and checks, ``--coco-dataset`` datasets registered
first, the class count of the training data (or of the run that wrote the weights), the CPU
fallback of inference tools, and a digest of everything but the output folder.
"""

import copy
import hashlib
import logging
import os
import re
from pathlib import Path
from traceback import extract_tb

import detectron2.data.transforms as T
import torch
from detectron2.config import LazyConfig, get_cfg, instantiate
from detectron2.data import build_detection_test_loader
from detectron2.modeling import META_ARCH_REGISTRY, RetinaNet, build_model

from focal_eiou_d2 import add_focal_eiou_config
from focal_eiou_d2.config import DIGEST_NEUTRAL_KEYS
from focal_eiou_d2.data import dataset_classes, num_classes_for, register_coco_datasets
from focal_eiou_d2.layers import get_box_loss
from focal_eiou_d2.lazy_config import box_loss_nodes

from .lazy_overrides import TRAIN_EXTRAS, apply_overrides, check_train_node
from .run_dir import run_classes

logger = logging.getLogger(__name__)

LAZY_EXTENSION = ".py"
CLASSES_FROM = ("train", "run", "config")

# The checkout this package lives in (configs/ are found there when run from another folder).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load_run_config(config_file, overrides=(), **options):
    """The config of ``config_file`` with ``overrides``, as a :class:`YamlRunConfig` or a
    :class:`LazyRunConfig` (by the file's extension).

    Args:
        config_file (str): a ``.yaml`` or ``.py`` config (found relative to the project's
            checkout too).
        overrides (list[str]): ``KEY VALUE ...`` for YAML, ``key=value ...`` for LazyConfig.
        options: ``output_dir``, ``weights``, ``coco_datasets``, ``classes_from`` and
            ``cpu_fallback``, as in :meth:`RunConfig.load`.

    Raises:
        ValueError, KeyError, FileNotFoundError, DatasetError: a bad config or override.
    """
    kind = LazyRunConfig if is_lazy_config(config_file) else YamlRunConfig
    return kind.load(config_file, list(overrides), **options)


def is_lazy_config(config_file):
    """Whether ``config_file`` is a LazyConfig (``.py``), else a YAML config."""
    return config_file.endswith(LAZY_EXTENSION)


def build_config(config_file, opts=(), **options):
    """The frozen ``CfgNode`` of a YAML config (:meth:`RunConfig.load`'s options)."""
    return YamlRunConfig.load(config_file, list(opts), **options).cfg


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
        "or LazyConfig file, e.g. configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
    )


class RunConfig:
    """What both kinds of config share: the policy of :meth:`load`, and access by dotted key.

    A subclass reads its kind of file (:meth:`_read`), names its keys (``SEED_KEY``,
    ``OUTPUT_KEY``, ``WEIGHTS_KEY``, ``DEVICE_KEY``, :attr:`class_count_key`) and says which
    keys its overrides set (:meth:`_override_keys`).
    """

    def __init__(self, cfg, config_file):
        self.cfg = cfg
        self.config_file = config_file

    @classmethod
    def load(
        cls,
        config_file,
        overrides,
        *,
        output_dir=None,
        weights=None,
        coco_datasets=(),
        classes_from="train",
        cpu_fallback=False,
    ):
        """Load ``config_file`` with ``overrides`` and apply the project's policy.

        Registers the embedded datasets and ``coco_datasets`` first (call it in every process of
        a distributed run).

        Args:
            config_file (str): the config file (found relative to the project's checkout too).
            overrides (list[str]): this kind's command-line overrides.
            output_dir (str or None): replaces the output folder.
            weights (str or None): replaces the initial weights (after ``overrides``).
            coco_datasets (list[CocoDataset]): datasets of ``--coco-dataset``, registered first.
            classes_from (str): where the head's class count comes from: "train", the classes
                of the training datasets (training tools); "run", those recorded with the run
                that trained the weights, else the training datasets' (inference tools: weights
                and head must match); "config", the config's value. A count given in
                ``overrides`` is kept, but may not be smaller than the dataset's.
            cpu_fallback (bool): for inference tools: run on the CPU when the config asks for
                CUDA, CUDA is unavailable and ``overrides`` do not ask for it explicitly.

        Raises:
            ValueError: a bad override, or CUDA asked for where there is none (with
                ``cpu_fallback``); DatasetError: a dataset problem.
        """
        import focal_eiou_d2.data  # noqa: F401  registers the embedded datasets

        if classes_from not in CLASSES_FROM:
            raise ValueError(f"classes_from must be one of {CLASSES_FROM}, got {classes_from!r}")
        register_coco_datasets(coco_datasets)
        config = cls(cls._read(resolve_config_file(config_file), overrides), config_file)
        explicit = cls._override_keys(overrides)
        if output_dir:
            config.set(cls.OUTPUT_KEY, output_dir)
        if weights is not None:
            config.set(cls.WEIGHTS_KEY, weights)
        if classes_from != "config":
            classes = run_classes(config.weights) if classes_from == "run" else None
            if classes is None and config.train_datasets:
                classes = dataset_classes(config.train_datasets)
            if classes is not None:
                key = config.class_count_key
                count = num_classes_for(len(classes), key, config.get(key), key in explicit)
                config.set(key, count)
        if cpu_fallback and config.device.startswith("cuda") and not torch.cuda.is_available():
            if cls.DEVICE_KEY in explicit:
                raise ValueError(
                    f"{cls.DEVICE_KEY} {config.device} was asked for; CUDA is unavailable"
                )
            logger.info("CUDA is unavailable: running %s on the CPU", config_file)
            config.set(cls.DEVICE_KEY, "cpu")
        config._finish()
        return config

    def get(self, key):
        """The value of a dotted key, e.g. ``MODEL.RETINANET.NUM_CLASSES``."""
        node = self.cfg
        for part in key.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
        return node

    def set(self, key, value):
        """Set a dotted key of the (not yet frozen) config."""
        parent, name = key.rsplit(".", 1) if "." in key else ("", key)
        node = self.get(parent) if parent else self.cfg
        node[name] = value

    def _finish(self):
        """Called once the policy is applied (a YAML config freezes)."""

    @property
    def output_dir(self):
        return self.get(self.OUTPUT_KEY)

    @property
    def device(self):
        return self.get(self.DEVICE_KEY)

    @property
    def weights(self):
        return self.get(self.WEIGHTS_KEY)

    @property
    def num_classes(self):
        """The head's class count."""
        return self.get(self.class_count_key)

    def digest(self):
        """A short hash of the config without its output folder (a moved run stays valid)."""
        config = type(self)(copy.deepcopy(self.cfg), self.config_file)
        config._unfreeze()
        config.set(self.OUTPUT_KEY, "")
        config._drop_neutral_keys()
        return hashlib.sha256(config.text().encode()).hexdigest()[:16]

    def _unfreeze(self):
        """Make a copy of the config writable (a YAML config defrosts)."""

    def _drop_neutral_keys(self):
        """Remove from a copy the keys that leave the digest as it was before they existed."""


class YamlRunConfig(RunConfig):
    """A YAML config: a frozen ``CfgNode`` (``.cfg``)."""

    kind = "yaml"
    SEED_KEY = "SEED"
    OUTPUT_KEY = "OUTPUT_DIR"
    MAX_ITER_KEY = "SOLVER.MAX_ITER"
    BATCH_KEY = "SOLVER.IMS_PER_BATCH"
    WEIGHTS_KEY = "MODEL.WEIGHTS"
    DEVICE_KEY = "MODEL.DEVICE"
    CONFIG_NAME = "config.yaml"

    @staticmethod
    def _read(path, overrides):
        if len(overrides) % 2:
            raise ValueError(
                f"config overrides must be KEY VALUE pairs (options such as --resume go before "
                f"them), got an odd number: {' '.join(overrides)}"
            )
        cfg = get_cfg()
        add_focal_eiou_config(cfg)
        cfg.merge_from_file(path)
        try:
            cfg.merge_from_list(overrides)
        except AssertionError as error:  # yacs asserts that an overridden key exists
            raise ValueError(
                f"{error} (check the key's spelling; docs/configs.md lists this project's keys)"
            ) from None
        return cfg

    @staticmethod
    def _override_keys(overrides):
        return set(overrides[::2])

    def _finish(self):
        self.cfg.freeze()

    def _unfreeze(self):
        self.cfg.defrost()

    def _drop_neutral_keys(self):
        defaults = get_cfg()
        add_focal_eiou_config(defaults)
        keys = self.cfg.MODEL.FOCAL_EIOU
        for key in DIGEST_NEUTRAL_KEYS:
            if key in keys and keys[key] == defaults.MODEL.FOCAL_EIOU[key]:
                del keys[key]

    @staticmethod
    def override(key, value):
        """One override in this kind's command-line form."""
        return [key, str(value)]

    @property
    def seed(self):
        return self.cfg.SEED

    @property
    def train_datasets(self):
        return tuple(self.cfg.DATASETS.TRAIN)

    @property
    def test_datasets(self):
        return tuple(self.cfg.DATASETS.TEST)

    @property
    def architecture(self):
        return self.cfg.MODEL.META_ARCHITECTURE

    @property
    def is_retinanet(self):
        """Whether the meta-architecture is a RetinaNet (whose head has the box loss and the
        class count); else an R-CNN (ROI_BOX_HEAD and ROI_HEADS)."""
        return issubclass(META_ARCH_REGISTRY.get(self.cfg.MODEL.META_ARCHITECTURE), RetinaNet)

    @property
    def box_loss_node(self):
        """The MODEL node whose BBOX_REG_LOSS_TYPE is the model's box loss."""
        return "RETINANET" if self.is_retinanet else "ROI_BOX_HEAD"

    @property
    def class_count_key(self):
        return f"MODEL.{'RETINANET' if self.is_retinanet else 'ROI_HEADS'}.NUM_CLASSES"

    @property
    def loss_type(self):
        return self.cfg.MODEL[self.box_loss_node].BBOX_REG_LOSS_TYPE

    @staticmethod
    def score_threshold_overrides(threshold):
        """Overrides that keep every detection scoring at least ``threshold``."""
        keys = ("MODEL.RETINANET.SCORE_THRESH_TEST", "MODEL.ROI_HEADS.SCORE_THRESH_TEST")
        return [item for key in keys for item in (key, str(threshold))]

    def loss_overrides(self, loss_type, weight=None):
        """Overrides that make the model train with ``loss_type`` (weight: the paper's)."""
        node = f"MODEL.{self.box_loss_node}"
        weight = get_box_loss(loss_type).paper_weight if weight is None else weight
        return [
            f"{node}.BBOX_REG_LOSS_TYPE",
            loss_type,
            f"{node}.BBOX_REG_LOSS_WEIGHT",
            str(weight),
        ]

    def text(self):
        """The whole config as YAML (what ``config.yaml`` of a run holds)."""
        return self.cfg.dump()

    def build_model(self):
        return build_model(self.cfg)

    def build_trainer(self):
        from .trainer import FocalEIoUTrainer

        return FocalEIoUTrainer(self.cfg)

    def build_test_loader(self, dataset_name):
        return build_detection_test_loader(self.cfg, dataset_name)

    def evaluate(self, model):
        """COCO evaluation of ``model`` on the test datasets (results by dataset if several)."""
        from .trainer import FocalEIoUTrainer

        return FocalEIoUTrainer.test(self.cfg, model)

    def test_augmentation(self):
        """The resize of the test images (Detectron2's ``DefaultPredictor``'s)."""
        size = self.cfg.INPUT.MIN_SIZE_TEST
        return T.ResizeShortestEdge([size, size], self.cfg.INPUT.MAX_SIZE_TEST)

    @property
    def input_format(self):
        return self.cfg.INPUT.FORMAT


class LazyRunConfig(RunConfig):
    """A LazyConfig: the loaded ``DictConfig`` (``.cfg``), with ``train.output_dir``,
    ``train.seed``, ``train.device``, ``dataloader.train`` / ``dataloader.test`` and ``model``."""

    kind = "lazy"
    SEED_KEY = "train.seed"
    OUTPUT_KEY = "train.output_dir"
    MAX_ITER_KEY = "train.max_iter"
    BATCH_KEY = "dataloader.train.total_batch_size"
    WEIGHTS_KEY = "train.init_checkpoint"
    DEVICE_KEY = "train.device"
    CONFIG_NAME = "config.py"

    @classmethod
    def _read(cls, path, overrides):
        bad = [item for item in overrides if "=" not in item]
        if bad:
            raise ValueError(
                f"LazyConfig overrides must be key=value (options such as --resume go before "
                f"them), got {bad}"
            )
        try:
            cfg = LazyConfig.load(path)
        except KeyError as error:
            if error.args != ("*",):
                raise
            importer = [
                frame for frame in extract_tb(error.__traceback__) if frame.name == "<module>"
            ]
            where = f"{importer[-1].filename}:{importer[-1].lineno}" if importer else path
            raise ValueError(
                f"{where}: Detectron2's LazyConfig cannot import * from a config file; name what "
                "it uses, e.g. from .common.shapes_recipe import dataloader, train"
            ) from None
        check_train_node(cfg, path)
        extras = tuple(f"train.{key}" for key in TRAIN_EXTRAS)
        cfg = apply_overrides(cfg, overrides, optional_keys=extras)
        for key in ("model", "train", "dataloader"):
            if key not in cfg:
                raise ValueError(f"LazyConfig {path} has no {key!r}")
        return cfg

    @staticmethod
    def _override_keys(overrides):
        return {item.split("=", 1)[0].strip() for item in overrides}

    @staticmethod
    def override(key, value):
        return [f"{key}={value}"]

    @property
    def class_count_key(self):
        """The key of the head's class count: ``model.num_classes`` (RetinaNet, FCOS) or
        ``model.roi_heads.num_classes`` (R-CNN)."""
        return (
            "model.num_classes"
            if "num_classes" in self.cfg.model
            else "model.roi_heads.num_classes"
        )

    @property
    def seed(self):
        return self.cfg.train.get("seed", -1)

    @property
    def train_datasets(self):
        return _names(self.cfg.dataloader.train.dataset.names)

    @property
    def test_datasets(self):
        return _names(self.cfg.dataloader.test.dataset.names)

    @property
    def architecture(self):
        return self.cfg.model._target_.__name__

    def score_threshold_overrides(self, threshold):
        """Overrides that keep every detection scoring at least ``threshold`` (the score
        thresholds of the dense head, or of every R-CNN box predictor)."""
        paths = [
            path for path in _paths(self.cfg.model, "model") if path.endswith(".test_score_thresh")
        ]
        return [f"{path}={threshold}" for path in paths]

    @property
    def loss_type(self):
        nodes = box_loss_nodes(self.cfg.model)
        if not nodes:
            return "Detectron2's own"
        return self.get(nodes[0]).loss_type

    def loss_overrides(self, loss_type, weight=None):
        """Overrides of every box-loss node of the model (found in the model, not by name)."""
        nodes = box_loss_nodes(self.cfg.model)
        if not nodes:
            raise ValueError(
                f"{self.config_file}: the model has no box loss of focal_eiou_d2; call "
                "focal_eiou_d2.lazy_config.use_box_loss(model, ...) in the config"
            )
        weight = get_box_loss(loss_type).paper_weight if weight is None else weight
        overrides = []
        for node in nodes:
            owner = node.rsplit(".", 1)[0]
            overrides.append(f"{node}.loss_type={loss_type}")
            if "box_reg_loss_weight" in self.get(owner):
                overrides.append(f"{owner}.box_reg_loss_weight={weight}")
            else:
                overrides.append(f"{owner}.loss_weight.loss_box_reg={weight}")
        return overrides

    def text(self):
        """The whole config as Python code (what ``config.py`` of a run holds), with functions
        by name (their addresses would change the digest from one process to the next)."""
        return re.sub(
            r"<function (\S+) at 0x[0-9a-f]+>", r"<function \1>", LazyConfig.to_py(self.cfg)
        )

    def build_model(self):
        model = instantiate(self.cfg.model)
        return model.to(self.device)

    def build_trainer(self):
        from .lazy_trainer import LazyTrainer

        return LazyTrainer(self.cfg)

    def build_test_loader(self, dataset_name):
        test = self.cfg.dataloader.test
        dataset = copy.deepcopy(test.dataset)
        dataset.names = dataset_name
        return build_detection_test_loader(
            dataset=instantiate(dataset),
            mapper=instantiate(test.mapper),
            num_workers=test.get("num_workers", 0),
        )

    def evaluate(self, model):
        """COCO evaluation of ``model`` on ``dataloader.test``."""
        from .lazy_trainer import evaluate

        return evaluate(self.cfg, model)

    def test_augmentation(self):
        augmentations = instantiate(self.cfg.dataloader.test.mapper.augmentations)
        return T.AugmentationList(augmentations)

    @property
    def input_format(self):
        return self.cfg.dataloader.test.mapper.get("image_format", "BGR")


def _paths(node, path):
    """Every dotted path below a config node (dicts and lists)."""
    if hasattr(node, "items"):
        for key, value in node.items():
            yield f"{path}.{key}"
            yield from _paths(value, f"{path}.{key}")
    elif isinstance(node, (list, tuple)) or type(node).__name__ == "ListConfig":
        for index, value in enumerate(node):
            yield from _paths(value, f"{path}.{index}")


def _names(value):
    return (value,) if isinstance(value, str) else tuple(value)
