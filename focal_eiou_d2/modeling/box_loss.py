"""The one place where Detectron2 heads turn box-regression deltas into a loss value.

Focal-EIoU's batch normalization (Eq. 11) is decided here, not in the heads, for focal_eiou and for
every IoU loss given the focal weight IoU^gamma (``gamma`` > 0: Focal-SIoU, Focal-CIoU, ...). It
has two forms, set by the head that uses the loss (:meth:`BoxRegressionLoss.for_head`):

- ``"sum_of_weights"`` (RetinaNet, FCOS: heads normalized by their number of positives): the box
  loss is ``sum_i W_i * L_i / sum_i W_i`` over the positives of the global batch, with ``L_i``
  the pair's loss (EIoU for focal_eiou) and ``W_i = IoU_i^gamma``; the head's own normalizer is
  not used.
- ``"mean_weight"`` (RPN, R-CNN box heads: normalized by their number of sampled anchors or
  regions): the weights ``W_i`` are divided by their mean over the positives of the global batch,
  and the head's normalizer is kept, so the loss keeps the head's scale.

The sums over the global batch are all-reduced across processes on the data's device (NCCL
reduces only CUDA tensors), and nothing is read back to the host: every quantity stays a tensor.

Two losses need more than the boxes (``BOX_LOSSES[name].head_inputs``), and only they pay for it:

- MPDIoU needs each box's image size: the head hands the unpadded sizes of the batch's images over
  for one step (:func:`step_image_sizes`), and the loss gives each positive its own image's.
- Wise-IoU v3 needs the running mean of 1 - IoU: training state, kept as the buffer
  :data:`RUNNING_MEAN` of the module that owns the loss (:meth:`BoxRegressionLoss.register_state`),
  so that checkpoints save and restore it. In training mode each step first moves it towards the
  batch mean of 1 - IoU over the positives of the global batch (all-reduced, so every process
  holds the same value), ``mean <- (1 - m) mean + m batch_mean``, and the loss then uses the
  updated mean, as the Wise-IoU authors' code does.
"""

import contextlib
import math
from numbers import Real

import torch
from detectron2.layers import cat
from detectron2.structures import Boxes
from detectron2.utils import comm

from focal_eiou_d2.layers import (
    BOX_LOSSES,
    BoxLossParameterError,
    check_box_loss,
    get_box_loss,
    normalize_by_weights,
    wiou_momentum,
)
from focal_eiou_d2.layers.hyperparams import WIOU_MOMENTUM_FROM_SCHEDULE
from focal_eiou_d2.layers.iou_losses import iou_per_pair
from focal_eiou_d2.layers.loss_utils import upcast_float

EQ11_FORMS = ("sum_of_weights", "mean_weight")

RUNNING_MEAN = "iou_loss_mean"
"""The head input of Wise-IoU v3, and the name of the buffer that holds it in the owning module."""

# Detectron2's key of each head's smooth L1 beta.
SMOOTH_L1_BETA_KEYS = {
    "RETINANET": "MODEL.RETINANET.SMOOTH_L1_LOSS_BETA",
    "RPN": "MODEL.RPN.SMOOTH_L1_BETA",
    "ROI_BOX_HEAD": "MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA",
}

# The loss parameters the MODEL.FOCAL_EIOU keys set: loss -> {parameter: key}.
_OWN_PARAMETER_KEYS = {
    "focal_eiou": {"gamma": "GAMMA", "detach_weight": "DETACH_WEIGHT"},
    "focal_eiou_star": {"gamma": "GAMMA"},
    "focal_l1": {"beta": "FOCAL_L1_BETA"},
    "focal_eiou_v1": {"beta": "FOCAL_L1_BETA"},
    "balanced_l1": {
        "alpha": "BALANCED_L1_ALPHA",
        "gamma": "BALANCED_L1_GAMMA",
        "beta": "BALANCED_L1_BETA",
    },
    "siou": {"theta": "SIOU_THETA"},
    "shape_iou": {"scale": "SHAPE_IOU_SCALE", "theta": "SIOU_THETA"},
    "wiou_v3": {"alpha": "WIOU_ALPHA", "delta": "WIOU_DELTA"},
    "alpha_iou": {"alpha": "ALPHA_IOU_ALPHA"},
    "inner_iou": {"ratio": "INNER_IOU_RATIO", "base": "INNER_IOU_BASE"},
    "nwd": {"constant": "NWD_CONSTANT"},
}
# The focal weight of the IoU losses that take it as an option (Focal-SIoU, Focal-CIoU, ...).
_FOCAL_WEIGHT_KEYS = {"gamma": "FOCAL_GAMMA", "detach_weight": "DETACH_WEIGHT"}
LOSS_PARAMETER_KEYS = {
    name: _OWN_PARAMETER_KEYS.get(name, {}) | (_FOCAL_WEIGHT_KEYS if spec.focal_optional else {})
    for name, spec in BOX_LOSSES.items()
    if name in _OWN_PARAMETER_KEYS or spec.focal_optional
}


def global_sum(values):
    """Sum a tensor over all processes, on its own device (a no-op when not distributed).

    Args:
        values (Tensor[K]): this process's partial sums; not modified.

    Returns:
        Tensor[K]: the sums over the whole (global) batch, on ``values.device``.
    """
    if comm.get_world_size() == 1:
        return values
    values = values.clone()
    torch.distributed.all_reduce(values)
    return values


def global_sum_and_count(values):
    """The sum and the number of ``values`` over the global batch, in float64.

    Args:
        values (Tensor[R]): this process's values.

    Returns:
        tuple[Tensor[], Tensor[]]: their sum and their count over every process (see
        :func:`global_sum`), on ``values.device``.
    """
    local = torch.stack([values.sum(), values.new_full((), values.numel())])
    return global_sum(local.double())


@contextlib.contextmanager
def step_image_sizes(head, image_sizes, repeats=None):
    """Make the batch's image sizes ``head.step_image_sizes`` for the calls within, when the
    head's loss takes each box's image size (MPDIoU); for any other loss, do nothing.

    Detectron2 calls a head's ``losses`` (and the R-CNN predictor's ``box_reg_loss``) without the
    images: the head's method that has them hands their sizes over for the step.

    Args:
        head (nn.Module): a head of this package (its ``box_loss`` is a BoxRegressionLoss).
        image_sizes (list[tuple[int, int]]): (height, width) of each image, unpadded (Detectron2's
            ``ImageList.image_sizes``, ``Instances.image_size``).
        repeats (list[int] or None): for a head whose boxes are concatenated over the images (the
            R-CNN regions), the number of boxes of each image: ``head.step_image_sizes`` is then
            one row per box. None for the dense heads: one row per image.
    """
    if not head.box_loss.takes_image_size:
        yield
        return
    sizes = torch.tensor(image_sizes, dtype=torch.float32).reshape(-1, 2)  # (N, 2)
    if repeats is not None:
        sizes = sizes.repeat_interleave(torch.tensor(repeats, dtype=torch.long), dim=0)  # (R, 2)
    head.step_image_sizes = sizes
    try:
        yield
    finally:
        head.step_image_sizes = None


def loss_weight_from_config(cfg, node):
    """``MODEL.<node>.BBOX_REG_LOSS_WEIGHT``; ValueError naming the key when it is negative or
    not finite."""
    weight = cfg.MODEL[node].BBOX_REG_LOSS_WEIGHT
    if not 0 <= weight < math.inf:
        raise ValueError(f"MODEL.{node}.BBOX_REG_LOSS_WEIGHT must be finite and >= 0, got {weight}")
    return weight


class BoxRegressionLoss:
    """A configured box-regression loss shared by RetinaNet, FCOS, the RPN and the R-CNN heads.

    Coordinate losses (smooth_l1, focal_l1, balanced_l1) compare predicted and target deltas;
    box losses (the IoU family) decode the predicted deltas and compare XYXY boxes. The loss and
    its parameters are validated once, here; each step calls the loss's unchecked per-pair form.
    """

    def __init__(
        self,
        loss_type,
        box2box_transform=None,
        *,
        params=None,
        normalize_by_weights=True,
        eq11_form="mean_weight",
        momentum=None,
    ):
        """
        Args:
            loss_type (str): a name of ``focal_eiou_d2.layers.BOX_LOSSES``.
            box2box_transform (Box2BoxTransform or None): the delta encoding; None until a head
                binds its own (:meth:`for_head`).
            params (dict or None): keyword arguments of the loss, among
                ``BOX_LOSSES[loss_type].params``; unset ones keep the library's defaults.
            normalize_by_weights (bool): Eq. 11 normalization of a loss with the focal weight
                (focal_eiou; another IoU loss with gamma > 0).
            eq11_form (str): one of :data:`EQ11_FORMS`, see the module docstring; the heads of
                this package set it.
            momentum (float or None): momentum m of the running mean of 1 - IoU, in (0, 1], for
                a loss that keeps one (Wise-IoU v3), where it is required; the paper's rule is
                ``focal_eiou_d2.layers.wiou_momentum(number of steps)``. None for other losses.

        Raises:
            ValueError: an unknown loss, parameter or value (BoxLossParameterError names it).
        """
        if eq11_form not in EQ11_FORMS:
            raise ValueError(f"eq11_form must be one of {EQ11_FORMS}, got {eq11_form!r}")
        if not isinstance(normalize_by_weights, bool):
            raise ValueError(
                f"normalize_by_weights must be True or False, got {normalize_by_weights!r}"
            )
        self.params = check_box_loss(loss_type, dict(params or {}))
        spec = get_box_loss(loss_type)
        _check_momentum(loss_type, RUNNING_MEAN in spec.head_inputs, momentum)
        self.momentum = momentum
        self.takes_image_size = "image_size" in spec.head_inputs
        self.loss_type = loss_type
        self.on_boxes = spec.on_boxes
        self.per_pair = spec.per_pair
        self.terms = spec.terms
        self.box2box_transform = box2box_transform
        self.normalize_by_weights = normalize_by_weights
        self.weighted = normalize_by_weights and spec.is_focal(self.params)
        self.eq11_form = eq11_form

    @classmethod
    def from_config(cls, cfg, node, smooth_l1_beta):
        """Build the loss of ``MODEL.<node>.BBOX_REG_LOSS_TYPE`` with its MODEL.FOCAL_EIOU keys.

        Every MODEL.FOCAL_EIOU key is checked, used by this loss or not, so that a bad value
        fails when the model is built. A loss with a running mean (Wise-IoU v3) gets the momentum
        MODEL.FOCAL_EIOU.WIOU_MOMENTUM, or when that is 0 the paper's rule over the whole
        training, ``wiou_momentum(SOLVER.MAX_ITER)``.

        Args:
            cfg (CfgNode): the config.
            node (str): "RETINANET", "RPN" or "ROI_BOX_HEAD".
            smooth_l1_beta (float): the head's smooth L1 beta (from Detectron2's own key).

        Raises:
            ValueError: naming the config key whose value is invalid.
        """
        if "FOCAL_EIOU" not in cfg.MODEL:
            raise ValueError(
                "the config has no MODEL.FOCAL_EIOU node: call "
                "focal_eiou_d2.add_focal_eiou_config(cfg) before merging the YAML file"
            )
        keys = cfg.MODEL.FOCAL_EIOU
        loss_type = cfg.MODEL[node].BBOX_REG_LOSS_TYPE
        try:
            get_box_loss(loss_type)
        except ValueError as error:
            raise ValueError(f"MODEL.{node}.BBOX_REG_LOSS_TYPE = {loss_type!r}: {error}") from None
        key_of = {
            name: {param: f"MODEL.FOCAL_EIOU.{key}" for param, key in mapping.items()}
            for name, mapping in LOSS_PARAMETER_KEYS.items()
        }
        key_of["smooth_l1"] = {"beta": SMOOTH_L1_BETA_KEYS[node]}
        params = {}
        for name, mapping in key_of.items():
            values = (
                {"beta": smooth_l1_beta}
                if name == "smooth_l1"
                else {param: keys[key.rsplit(".", 1)[1]] for param, key in mapping.items()}
            )
            try:
                checked = check_box_loss(name, values)
            except BoxLossParameterError as error:
                key = mapping[error.param]
                raise ValueError(f"{key} = {values[error.param]!r}: {error.reason}") from None
            if name == loss_type:
                params = {param: checked[param] for param in mapping}
        if not isinstance(keys.NORMALIZE_BY_WEIGHTS, bool):
            raise ValueError(
                "MODEL.FOCAL_EIOU.NORMALIZE_BY_WEIGHTS must be true or false, got "
                f"{keys.NORMALIZE_BY_WEIGHTS!r}"
            )
        momentum = keys.WIOU_MOMENTUM
        if isinstance(momentum, bool) or not isinstance(momentum, Real) or not 0 <= momentum <= 1:
            raise ValueError(
                f"MODEL.FOCAL_EIOU.WIOU_MOMENTUM = {momentum!r}: must be a number in (0, 1], or "
                f"{WIOU_MOMENTUM_FROM_SCHEDULE} for the paper's rule over SOLVER.MAX_ITER"
            )
        if RUNNING_MEAN not in get_box_loss(loss_type).head_inputs:
            momentum = None
        elif momentum == WIOU_MOMENTUM_FROM_SCHEDULE:
            try:
                momentum = wiou_momentum(cfg.SOLVER.MAX_ITER)
            except (TypeError, ValueError) as error:
                raise ValueError(f"SOLVER.MAX_ITER = {cfg.SOLVER.MAX_ITER!r}: {error}") from None
        return cls(
            loss_type,
            params=params,
            normalize_by_weights=keys.NORMALIZE_BY_WEIGHTS,
            momentum=momentum,
        )

    def for_head(self, box2box_transform, eq11_form):
        """This loss as a head uses it: with the head's delta encoding (unless it has its own)
        and the head's form of Eq. 11.

        Returns:
            BoxRegressionLoss: a new loss; this one is left as it is.
        """
        return BoxRegressionLoss(
            self.loss_type,
            self.box2box_transform or box2box_transform,
            params=self.params,
            normalize_by_weights=self.normalize_by_weights,
            eq11_form=eq11_form,
            momentum=self.momentum,
        )

    def register_state(self, module):
        """Register this loss's training state as buffers of ``module``, the head that owns it:
        for Wise-IoU v3 the running mean of 1 - IoU, buffer :data:`RUNNING_MEAN`, starting at 1
        as in the Wise-IoU authors' code; nothing for the other losses."""
        if self.momentum is not None:
            module.register_buffer(RUNNING_MEAN, torch.tensor(1.0))

    def __call__(self, anchors, pred_deltas, gt_boxes, normalizer, *, head=None, image_size=None):
        """The box loss of this process's positives.

        Args:
            anchors (Tensor[R, 4]): XYXY anchors or proposals the deltas are relative to.
            pred_deltas (Tensor[R, 4]): predicted deltas of this process's positives.
            gt_boxes (Tensor[R, 4]): their XYXY targets.
            normalizer (float or Tensor[]): what the head divides its box loss by; values below
                1 count as 1. Not used by Eq. 11's "sum_of_weights" form.
            head (nn.Module or None): the module that owns the loss and its state
                (:meth:`register_state`); its ``training`` decides whether the state is updated.
                Needed by Wise-IoU v3 only.
            image_size (Tensor[R, 2] or None): (height, width) of each positive's image. Needed by
                MPDIoU only.

        Returns:
            Tensor[]: the loss; 0 with the graph attached when R == 0 (a collective call in
            distributed training with Eq. 11 or Wise-IoU v3: every process must make it).
        """
        if self.on_boxes:
            # Decoded in float32 or wider: Detectron2's Box2BoxTransformLinear (FCOS) decodes in
            # the deltas' dtype, which under AMP rounds pixel coordinates by up to a few pixels.
            pred = self.box2box_transform.apply_deltas(upcast_float(pred_deltas), anchors)
            target = gt_boxes
        else:
            pred = pred_deltas
            target = self.box2box_transform.get_deltas(anchors, gt_boxes)
        if self.takes_image_size:
            if image_size is None:
                raise ValueError(
                    f"{self.loss_type} needs the image size of each box, which a head of this "
                    "package passes in its training forward (step_image_sizes)"
                )
            params = {**self.params, "image_size": image_size}
        elif self.momentum is not None:
            params = {**self.params, RUNNING_MEAN: self._running_mean(head, pred, target)}
        else:
            params = self.params
        if not self.weighted:
            return self.per_pair(pred, target, **params).sum() / _at_least_one(normalizer)
        pair_loss, weight = self.terms(pred, target, **params)  # Eq. 10's two factors
        with torch.no_grad():
            weight_sum, count = global_sum_and_count(weight)
        loss = normalize_by_weights((weight * pair_loss).sum(), weight_sum)  # Eq. 11
        if self.eq11_form == "sum_of_weights":
            # Times the number of processes, which DDP's gradient averaging divides out again.
            return loss * comm.get_world_size()
        return loss * count.to(loss.dtype) / _at_least_one(normalizer)

    def dense(
        self,
        anchors,
        pred_anchor_deltas,
        gt_boxes,
        pos_mask,
        normalizer,
        *,
        head=None,
        image_sizes=None,
    ):
        """The box loss of a dense head (RetinaNet, RPN, FCOS) from its per-level outputs.

        Args:
            anchors (list[Boxes]): the anchors of each feature level, shared by the images.
            pred_anchor_deltas (list[Tensor[N, Hi*Wi*A, 4]]): predicted deltas per level.
            gt_boxes (list[Tensor[R, 4]]): matched XYXY target of every anchor, per image.
            pos_mask (Tensor[N, R] of bool): the positive anchors.
            normalizer (float or Tensor[]): see :meth:`__call__`.
            head (nn.Module or None): see :meth:`__call__`.
            image_sizes (Tensor[N, 2] or None): (height, width) of each image, on any device
                (:func:`step_image_sizes`); needed by MPDIoU only.
        """
        positives = pos_mask.nonzero(as_tuple=True)  # once for the three gathers
        all_anchors = Boxes.cat(anchors).tensor.expand(len(gt_boxes), -1, -1)
        image_size = None
        if image_sizes is not None:
            image_size = image_sizes.to(pos_mask.device, non_blocking=True)[positives[0]]
        return self(
            all_anchors[positives],
            cat(pred_anchor_deltas, dim=1)[positives],
            torch.stack(gt_boxes)[positives],
            normalizer,
            head=head,
            image_size=image_size,
        )

    def _running_mean(self, head, pred, target):
        """The running mean of 1 - IoU kept by ``head``, first updated with this step's positives
        (over every process) when ``head`` is training.

        Args:
            head (nn.Module): the module with the buffer :data:`RUNNING_MEAN`.
            pred, target (Tensor[R, 4]): this process's predicted and target XYXY boxes.

        Returns:
            Tensor[]: the buffer itself (updated in place; a step without any positive in the
            global batch leaves it as it is).
        """
        if head is None or not hasattr(head, RUNNING_MEAN):
            raise ValueError(
                f"{self.loss_type} keeps a running mean of 1 - IoU: pass the head whose "
                "register_state registered it"
            )
        mean = getattr(head, RUNNING_MEAN)
        if head.training:
            with torch.no_grad():
                iou_loss = iou_per_pair(pred.detach(), target, self.params["eps"])
                total, count = global_sum_and_count(iou_loss)
                batch_mean = (total / count.clamp(min=1)).to(mean.dtype)
                mean.copy_(torch.where(count > 0, mean.lerp(batch_mean, self.momentum), mean))
        return mean


def _check_momentum(loss_type, keeps_running_mean, momentum):
    """ValueError unless ``momentum`` is a number in (0, 1] for a loss with a running mean, and
    None for the others."""
    if not keeps_running_mean:
        if momentum is not None:
            raise ValueError(f"{loss_type} keeps no running mean: momentum must be None")
        return
    if momentum is None:
        raise ValueError(
            f"{loss_type} keeps a running mean of 1 - IoU and needs its momentum; the paper's "
            "rule ties it to the training length: momentum=wiou_momentum(number of steps) "
            f"(in a LazyConfig, use_box_loss(model, {loss_type!r}, "
            "momentum=wiou_momentum(train.max_iter)))"
        )
    if isinstance(momentum, bool) or not isinstance(momentum, Real) or not 0 < momentum <= 1:
        raise ValueError(f"momentum of {loss_type} must be a number in (0, 1], got {momentum!r}")


def _at_least_one(normalizer):
    """``max(normalizer, 1)`` for a Python number or a tensor (no host-device sync)."""
    if isinstance(normalizer, torch.Tensor):
        return normalizer.clamp(min=1)
    return max(normalizer, 1.0)
