"""LazyConfig (Python config) support: switch a model to a box loss of this package, and find it.

Switching an existing LazyConfig to Focal-EIoU takes two lines::

    from focal_eiou_d2.lazy_config import use_box_loss
    use_box_loss(model, "focal_eiou")

``use_box_loss`` knows Detectron2's three LazyConfig model families: RetinaNet and FCOS (the box
loss of the dense head) and GeneralizedRCNN (the R-CNN box predictor, every stage of a cascade; the
RPN keeps its loss, as in the YAML configs). It replaces each target by this package's subclass,
which builds the loss explicitly (``BoxRegressionLoss``), and sets the paper's box-loss weight
(Sec. 5.2: 1.0 for l_n-norm losses, 2.5 for IoU-based losses) unless ``weight`` is given.

Wise-IoU v3 keeps a running mean of 1 - IoU whose momentum the paper ties to the training length;
a LazyConfig gives it explicitly, e.g. ``use_box_loss(model, "wiou_v3",
momentum=wiou_momentum(train.max_iter))`` (the YAML configs derive it from SOLVER.MAX_ITER).
"""

from detectron2.config import LazyCall as L
from detectron2.modeling import GeneralizedRCNN, RetinaNet
from detectron2.modeling.meta_arch.fcos import FCOS
from detectron2.modeling.roi_heads import FastRCNNOutputLayers
from torch import nn

from focal_eiou_d2.layers import get_box_loss
from focal_eiou_d2.modeling import (
    BoxRegressionLoss,
    FocalEIoUFastRCNNOutputLayers,
    FocalEIoUFCOS,
    FocalEIoURetinaNet,
)

# Dense detectors: Detectron2's class -> this package's (the loss and its weight are arguments).
DENSE_DETECTORS = {RetinaNet: FocalEIoURetinaNet, FCOS: FocalEIoUFCOS}


def use_box_loss(model, loss_type, weight=None, momentum=None, **params):
    """Make the LazyConfig ``model`` train with the box loss ``loss_type``, in place.

    Args:
        model (DictConfig): a LazyConfig model node (``L(RetinaNet)(...)``, ``L(FCOS)(...)``,
            ``L(GeneralizedRCNN)(...)``, or one this function already switched).
        loss_type (str): a name of ``focal_eiou_d2.layers.BOX_LOSSES``.
        weight (float or None): the box-loss weight; None for the paper's.
        momentum (float or None): the momentum of the running mean of a loss that keeps one
            (``wiou_v3``, where it is required: ``focal_eiou_d2.layers.wiou_momentum`` gives the
            paper's rule); None for the other losses.
        params: keyword arguments of the loss (e.g. ``gamma=0.5``); unset ones keep the
            library's defaults.

    Raises:
        ValueError: an unknown loss, or a model this function does not know.
    """
    spec = get_box_loss(loss_type)
    weight = spec.paper_weight if weight is None else float(weight)
    loss = L(BoxRegressionLoss)(loss_type=loss_type, params=dict(params))
    if momentum is not None:
        loss.momentum = momentum
    target = model._target_
    if target in DENSE_DETECTORS or target in DENSE_DETECTORS.values():
        model._target_ = DENSE_DETECTORS.get(target, target)
        model.box_loss = loss
        model.box_reg_loss_weight = weight
        return
    if target is GeneralizedRCNN:
        heads = model.roi_heads
        predictors = heads.box_predictors if "box_predictors" in heads else [heads.box_predictor]
        for predictor in predictors:
            if predictor._target_ not in (FastRCNNOutputLayers, FocalEIoUFastRCNNOutputLayers):
                raise ValueError(f"unknown R-CNN box predictor {predictor._target_}")
            predictor._target_ = FocalEIoUFastRCNNOutputLayers
            predictor.box_loss = loss
            predictor.loss_weight = {"loss_box_reg": weight}
        return
    raise ValueError(f"use_box_loss knows RetinaNet, FCOS and GeneralizedRCNN models, not {target}")


def box_loss_nodes(model):
    """The config paths of every box loss in a LazyConfig model (the nodes whose target is
    ``BoxRegressionLoss``), e.g. ``["model.box_loss"]``: what a tool varies to change the loss."""
    found = []

    def visit(node, path):
        if hasattr(node, "items"):
            if node.get("_target_", None) is BoxRegressionLoss:
                found.append(path)
            for key, value in node.items():
                visit(value, f"{path}.{key}")
        elif isinstance(node, (list, tuple)) or type(node).__name__ == "ListConfig":
            for index, value in enumerate(node):
                visit(value, f"{path}.{index}")

    visit(model, "model")
    return found


def group_norm(channels):
    """GroupNorm with 32 groups: Detectron2's "GN", for the norm of a dense head.

    Detectron2 0.6's ``RetinaNetHead`` (which FCOS's head extends) probes its norm with one
    channel, which "GN" cannot divide into 32 groups; it fails there, while Detectron2 main probes
    with 32. This callable gives the same GroupNorm(32) for every real layer and 1 group for that
    one-channel probe, so one config builds on both.
    """
    return nn.GroupNorm(32 if channels % 32 == 0 else 1, channels)
