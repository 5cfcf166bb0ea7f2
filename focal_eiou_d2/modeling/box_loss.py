"""The one place where Detectron2 heads turn box-regression deltas into a loss value.

Focal-EIoU's batch normalization (Eq. 11) is decided here, not in the heads. It has two forms,
set by the head that uses the loss (:meth:`BoxRegressionLoss.for_head`):

- ``"sum_of_weights"`` (RetinaNet, FCOS: heads normalized by their number of positives): the box
  loss is ``sum_i W_i * L_EIoU_i / sum_i W_i`` over the positives of the global batch, with
  ``W_i = IoU_i^gamma``; the head's own normalizer is not used.
- ``"mean_weight"`` (RPN, R-CNN box heads: normalized by their number of sampled anchors or
  regions): the weights ``W_i`` are divided by their mean over the positives of the global batch,
  and the head's normalizer is kept, so the loss keeps the head's scale.

The sums over the global batch are all-reduced across processes on the data's device (NCCL
reduces only CUDA tensors), and nothing is read back to the host: every quantity stays a tensor.
"""

import torch
from detectron2.layers import cat
from detectron2.structures import Boxes
from detectron2.utils import comm

from focal_eiou_d2.config import loss_params_from_config
from focal_eiou_d2.layers import BOX_LOSSES, box_pair_geometry, box_regression_loss

EQ11_FORMS = ("sum_of_weights", "mean_weight")


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


class BoxRegressionLoss:
    """A configured box-regression loss shared by RetinaNet, FCOS, the RPN and the R-CNN heads.

    Coordinate losses (smooth_l1, focal_l1, balanced_l1) compare predicted and target deltas;
    box losses (the IoU family) decode the predicted deltas and compare XYXY boxes.
    """

    def __init__(
        self,
        loss_type,
        box2box_transform=None,
        *,
        params=None,
        normalize_by_weights=True,
        eq11_form="mean_weight",
    ):
        """
        Args:
            loss_type (str): a name of ``focal_eiou_d2.layers.BOX_LOSSES``.
            box2box_transform (Box2BoxTransform or None): the delta encoding; None until a head
                binds its own (:meth:`for_head`).
            params (dict or None): keyword arguments of the loss, among
                ``BOX_LOSSES[loss_type].params``; unset ones keep the library's defaults.
            normalize_by_weights (bool): Eq. 11 normalization of focal_eiou.
            eq11_form (str): one of :data:`EQ11_FORMS`, see the module docstring; the heads of
                this package set it.
        """
        if loss_type not in BOX_LOSSES:
            raise ValueError(
                f"unknown box-regression loss {loss_type!r}; valid: {', '.join(BOX_LOSSES)}"
            )
        if eq11_form not in EQ11_FORMS:
            raise ValueError(f"eq11_form must be one of {EQ11_FORMS}, got {eq11_form!r}")
        spec = BOX_LOSSES[loss_type]
        params = dict(params or {})
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise ValueError(f"loss {loss_type!r} takes {spec.params}, not {unknown}")
        self.loss_type = loss_type
        self.on_boxes = spec.on_boxes
        self.params = params
        self.box2box_transform = box2box_transform
        self.normalize_by_weights = normalize_by_weights
        self.weighted = loss_type == "focal_eiou" and normalize_by_weights
        self.eq11_form = eq11_form

    @classmethod
    def from_config(cls, cfg, node, smooth_l1_beta):
        """Build the loss of ``MODEL.<node>.BBOX_REG_LOSS_TYPE``, validating the config first.

        Args:
            cfg (CfgNode): the config.
            node (str): "RETINANET", "RPN" or "ROI_BOX_HEAD".
            smooth_l1_beta (float): the head's smooth L1 beta (from Detectron2's own key).
        """
        loss_type, params, normalize_by_weights = loss_params_from_config(cfg, node, smooth_l1_beta)
        return cls(loss_type, params=params, normalize_by_weights=normalize_by_weights)

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
        )

    def __call__(self, anchors, pred_deltas, gt_boxes, normalizer):
        """The box loss of this process's positives.

        Args:
            anchors (Tensor[R, 4]): XYXY anchors or proposals the deltas are relative to.
            pred_deltas (Tensor[R, 4]): predicted deltas of this process's positives.
            gt_boxes (Tensor[R, 4]): their XYXY targets.
            normalizer (float or Tensor[]): what the head divides its box loss by; values below
                1 count as 1. Not used by Eq. 11's "sum_of_weights" form.

        Returns:
            Tensor[]: the loss; 0 with the graph attached when R == 0 (a collective call in
            distributed training with Eq. 11: every process must make it).
        """
        if self.on_boxes:
            pred = self.box2box_transform.apply_deltas(pred_deltas, anchors)
            target = gt_boxes
        else:
            pred = pred_deltas
            target = self.box2box_transform.get_deltas(anchors, gt_boxes)
        losses = box_regression_loss(self.loss_type, pred, target, **self.params)
        if not self.weighted:
            return losses.sum() / _at_least_one(normalizer)
        weight_sum, count = self._global_weight_sum_and_count(pred, target)
        if self.eq11_form == "sum_of_weights":
            # sum_i W_i L_i / sum_i W_i (Eq. 11) times the number of processes, which DDP's
            # gradient averaging divides out again.
            factor = comm.get_world_size() / _positive(weight_sum)
            return losses.sum() * factor.to(losses.dtype)
        factor = count / _positive(weight_sum)
        return losses.sum() * factor.to(losses.dtype) / _at_least_one(normalizer)

    def dense(self, anchors, pred_anchor_deltas, gt_boxes, pos_mask, normalizer):
        """The box loss of a dense head (RetinaNet, RPN, FCOS) from its per-level outputs.

        Args:
            anchors (list[Boxes]): the anchors of each feature level, shared by the images.
            pred_anchor_deltas (list[Tensor[N, Hi*Wi*A, 4]]): predicted deltas per level.
            gt_boxes (list[Tensor[R, 4]]): matched XYXY target of every anchor, per image.
            pos_mask (Tensor[N, R] of bool): the positive anchors.
            normalizer (float or Tensor[]): see :meth:`__call__`.
        """
        positives = pos_mask.nonzero(as_tuple=True)  # once for the three gathers
        all_anchors = Boxes.cat(anchors).tensor.expand(len(gt_boxes), -1, -1)
        return self(
            all_anchors[positives],
            cat(pred_anchor_deltas, dim=1)[positives],
            torch.stack(gt_boxes)[positives],
            normalizer,
        )

    def _global_weight_sum_and_count(self, pred, target):
        """sum_i IoU_i^gamma and the number of positives over the global batch (Tensor[] each).

        The weights as focal_eiou computes them: IoU of the (possibly half-precision) boxes, in
        float32 or wider, detached.
        """
        with torch.no_grad():
            iou = box_pair_geometry(pred, target).iou.clamp(min=0)
            gamma = self.params.get("gamma")
            if gamma is None:
                gamma = BOX_LOSSES["focal_eiou"].defaults["gamma"]
            local = torch.stack([iou.pow(gamma).sum(), iou.new_full((), iou.numel())])
            weight_sum, count = global_sum(local.double())
        return weight_sum, count


def _at_least_one(normalizer):
    """``max(normalizer, 1)`` for a Python number or a tensor (no host-device sync)."""
    if isinstance(normalizer, torch.Tensor):
        return normalizer.clamp(min=1)
    return max(normalizer, 1.0)


def _positive(weight_sum):
    """``weight_sum`` with 0 replaced by 1: when every weight is 0, so is every weighted loss."""
    return torch.where(weight_sum > 0, weight_sum, torch.ones_like(weight_sum))
