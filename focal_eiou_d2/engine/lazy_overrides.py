"""LazyConfig ``key=value`` overrides that may not create a misspelt key.

Detectron2's ``LazyConfig.apply_overrides`` creates every key it is given, so that
``train.max_iters=100`` would be ignored silently. Here a new key is accepted only where it is
meant to be one: a keyword argument that a ``LazyCall`` node's target takes, a parameter of a
:class:`BoxRegressionLoss` (its ``params``, checked when the loss is built), a key the caller
names optional (such as ``train.seed``, which Detectron2's ``default_setup`` defaults to -1) and
a key with Hydra's explicit ``+``.

A config file's own ``train`` node is checked too (:func:`check_train_node`): Detectron2 reads its
fields by name, so that ``train.max_iters = 5`` written in the file would be ignored as silently.
"""

import inspect

from detectron2 import model_zoo
from detectron2.config import LazyConfig
from detectron2.engine.hooks import PeriodicCheckpointer
from omegaconf import DictConfig, ListConfig
from omegaconf.errors import OmegaConfBaseException
from torch.nn.parallel import DistributedDataParallel

from focal_eiou_d2.modeling import BoxRegressionLoss

# Fields of ``train`` that Detectron2's common train config lacks but its ``default_setup`` reads:
# the seed (this project's configs set it; default -1) and ``cudnn_benchmark`` (model-zoo configs
# set it).
TRAIN_EXTRAS = ("seed", "cudnn_benchmark")

# Nodes of ``train`` whose fields are passed on as keyword arguments: any argument of the
# receiver is a field too.
_TRAIN_KEYWORD_NODES = {
    "train.ddp": DistributedDataParallel,
    "train.checkpointer": PeriodicCheckpointer,
}


def apply_overrides(cfg, overrides, optional_keys=()):
    """Apply ``overrides`` to ``cfg`` one at a time, each checked against the config it changes.

    Args:
        cfg (DictConfig): a loaded LazyConfig.
        overrides (list[str]): ``key=value`` items (Hydra's override syntax, as Detectron2's).
        optional_keys (tuple[str]): keys that may be new anywhere (read with a default).

    Returns:
        DictConfig: ``cfg`` with the overrides applied.

    Raises:
        ValueError: an override names a key ``cfg`` lacks and may not gain, or deletes one
            (``~key``, which Detectron2 does not support).
    """
    for item in overrides:
        check_key(cfg, item.split("=", 1)[0].strip(), optional_keys)
        cfg = LazyConfig.apply_overrides(cfg, [item])
    return cfg


def check_key(cfg, key, optional_keys=()):
    """Raise ValueError unless an override of ``key`` may be applied to ``cfg`` (see the module).

    Args:
        cfg (DictConfig): a loaded LazyConfig.
        key (str): a dotted key, e.g. ``train.max_iter`` or ``dataloader.train.mapper.
            augmentations.0.short_edge_length``, possibly with Hydra's ``+`` or ``~`` prefix.
        optional_keys (tuple[str]): keys that may be new anywhere.

    Raises:
        ValueError: see :func:`apply_overrides`.
    """
    if key.startswith("~"):
        raise ValueError(
            f"{key}: deleting a key is not supported by Detectron2's LazyConfig overrides"
        )
    if key.startswith("+") or key in optional_keys:
        return
    parent, node, parts = None, cfg, key.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, ListConfig):
            exists = part.isdigit() and int(part) < len(node)
        else:
            exists = hasattr(node, "keys") and part in node.keys()
        if exists and last:
            return
        if exists:
            try:
                parent, node = node, node[int(part)] if isinstance(node, ListConfig) else node[part]
            except OmegaConfBaseException:  # a missing value (???) or an interpolation: the
                return  # key is there; what lies below it is Detectron2's to resolve
            continue
        if last and _may_add(node, parent, parts[-2] if depth else None, part):
            return
        raise ValueError(
            f"Non-existent key: {key} (check the key's spelling; a LazyConfig's keys are the "
            "fields of its nodes, e.g. train.max_iter; prefix a key with + to add it on purpose)"
        )


def _may_add(node, parent, node_name, name):
    """Whether ``name`` may be added to ``node`` (``parent``'s field ``node_name``; both None at
    the top): a keyword argument its ``LazyCall`` target takes, or a loss parameter under a
    BoxRegressionLoss's ``params``."""
    if not hasattr(node, "keys"):
        return False
    if "_target_" in node.keys():
        target = node._target_
        try:
            parameters = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):  # a target named by a string, or one without signature
            return True
        return any(
            parameter.name == name or parameter.kind is inspect.Parameter.VAR_KEYWORD
            for parameter in parameters
        )
    return (
        node_name == "params"
        and hasattr(parent, "keys")
        and parent.get("_target_") is BoxRegressionLoss
    )


def check_train_node(cfg, path):
    """Raise ValueError if the ``train`` node of a loaded LazyConfig file has a field that
    Detectron2's common train config (``common/train.py`` of its model zoo) does not have, nor
    :data:`TRAIN_EXTRAS`, nor, below ``train.ddp`` and ``train.checkpointer``, an argument of
    the class they are passed to.

    Args:
        cfg (DictConfig): the LazyConfig as loaded from ``path``, before any override (a field
            added with Hydra's ``+`` on the command line is meant to be new).
        path (str): the config file, named in the error.

    Raises:
        ValueError: naming every unknown field and the file.
    """
    train = cfg.get("train")
    if not isinstance(train, DictConfig):
        return  # no train node: the caller says so
    reference = model_zoo.get_config("common/train.py").train
    unknown = _unknown_fields(train, reference, TRAIN_EXTRAS, "train")
    if unknown:
        raise ValueError(
            f"{path}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (check "
            "the spelling; train's fields are those of Detectron2's common/train.py, e.g. "
            f"train.max_iter, plus {' and '.join('train.' + key for key in TRAIN_EXTRAS)})"
        )


def _unknown_fields(node, reference, extras, prefix):
    """The dotted keys below ``node`` (named ``prefix``) that ``reference`` lacks, besides the
    names in ``extras``; a node of :data:`_TRAIN_KEYWORD_NODES` may have its receiver's
    arguments too."""
    known = set(reference.keys()) | set(extras)
    unknown = []
    for key in node.keys():
        name = f"{prefix}.{key}"
        child = node._get_node(key)  # not resolved: a missing value (???) is a key too
        if key not in known:
            unknown.append(name)
        elif isinstance(child, DictConfig) and isinstance(reference.get(key), DictConfig):
            receiver = _TRAIN_KEYWORD_NODES.get(name)
            arguments = inspect.signature(receiver).parameters if receiver else ()
            unknown += _unknown_fields(child, reference[key], arguments, name)
    return unknown
