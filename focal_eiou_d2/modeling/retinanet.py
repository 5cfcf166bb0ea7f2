"""RetinaNet whose box-regression loss is any loss of focal_eiou_d2.layers."""

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import cat
from detectron2.modeling import META_ARCH_REGISTRY, RetinaNet
from detectron2.utils.events import get_event_storage
from fvcore.nn import sigmoid_focal_loss

from .box_loss import BoxRegressionLoss, loss_weight_from_config, step_image_sizes


@META_ARCH_REGISTRY.register()
class FocalEIoURetinaNet(RetinaNet):
    """RetinaNet with the box loss of ``MODEL.RETINANET.BBOX_REG_LOSS_TYPE`` and its weight
    ``MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT``.

    The classification loss and its normalizer (a moving average of the number of positive
    anchors) are Detectron2's; the box loss uses the same normalizer, except Focal-EIoU with
    Eq. 11, which is ``sum_i W_i * L_EIoU_i / sum_i W_i`` over the positive anchors of the global
    batch (``BoxRegressionLoss``'s "sum_of_weights" form).

    The focal loss is fvcore's eager ``sigmoid_focal_loss``, the formula Detectron2 scripts as
    ``sigmoid_focal_loss_jit``: TorchScript's profiling executor switches the scripted version to
    other kernels after its first calls, so a resumed process would round differently from an
    uninterrupted one.

    A loss with training state (Wise-IoU v3's running mean) keeps it as a buffer of this model;
    a loss that takes each box's image size (MPDIoU) gets the size of the positive's own image.
    """

    step_image_sizes = None  # the batch's image sizes during a training step, for MPDIoU

    @configurable
    def __init__(self, *, box_loss, box_reg_loss_weight=1.0, **kwargs):
        """
        Args:
            box_loss (BoxRegressionLoss): the box-regression loss (its box2box_transform may be
                None: it then uses this model's).
            box_reg_loss_weight (float): multiplies the box-regression loss.
            kwargs: arguments of Detectron2's ``RetinaNet``.
        """
        super().__init__(**kwargs)
        # Detectron2 keeps this moving average in a plain attribute, which checkpoints lose; as a
        # buffer it is saved, so a resumed training continues exactly where it stopped.
        self.register_buffer("loss_normalizer", torch.tensor(100.0))
        self.box_loss = box_loss.for_head(self.box2box_transform, "sum_of_weights")
        self.box_loss.register_state(self)
        self.box_reg_loss_weight = box_reg_loss_weight

    @classmethod
    def from_config(cls, cfg):
        # The loss first: a config lacking this project's keys fails before the backbone is built.
        beta = cfg.MODEL.RETINANET.SMOOTH_L1_LOSS_BETA
        box_loss = BoxRegressionLoss.from_config(cfg, "RETINANET", beta)
        ret = super().from_config(cfg)
        ret["box_loss"] = box_loss
        ret["box_reg_loss_weight"] = loss_weight_from_config(cfg, "RETINANET")
        return ret

    def forward_training(self, images, features, predictions, gt_instances):
        """``RetinaNet.forward_training``, with the images' sizes at hand for the box loss."""
        with step_image_sizes(self, images.image_sizes):
            return super().forward_training(images, features, predictions, gt_instances)

    def losses(self, anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes):
        """Same inputs and outputs as ``RetinaNet.losses``; see the class docstring."""
        num_images = len(gt_labels)
        gt_labels = torch.stack(gt_labels)  # (N, R)
        valid_mask = gt_labels >= 0
        pos_mask = (gt_labels >= 0) & (gt_labels != self.num_classes)
        num_pos_anchors = pos_mask.sum().item()
        get_event_storage().put_scalar("num_pos_anchors", num_pos_anchors / num_images)
        normalizer = self._ema_update("loss_normalizer", max(num_pos_anchors, 1), 100)

        gt_labels_target = F.one_hot(gt_labels[valid_mask], num_classes=self.num_classes + 1)
        loss_cls = sigmoid_focal_loss(
            cat(pred_logits, dim=1)[valid_mask],
            gt_labels_target[:, :-1].to(pred_logits[0].dtype),  # no loss for background
            alpha=self.focal_loss_alpha,
            gamma=self.focal_loss_gamma,
            reduction="sum",
        )
        loss_box_reg = self.box_loss.dense(
            anchors,
            pred_anchor_deltas,
            gt_boxes,
            pos_mask,
            normalizer,
            head=self,
            image_sizes=self.step_image_sizes,
        )
        return {
            "loss_cls": loss_cls / normalizer,
            "loss_box_reg": loss_box_reg * self.box_reg_loss_weight,
        }
