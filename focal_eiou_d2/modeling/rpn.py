"""Region proposal network whose box-regression loss is any loss of focal_eiou_d2.layers."""

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import cat
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator.rpn import RPN
from detectron2.utils.events import get_event_storage

from .box_loss import BoxRegressionLoss, loss_weight_from_config, step_image_sizes


@PROPOSAL_GENERATOR_REGISTRY.register()
class FocalEIoURPN(RPN):
    """RPN with the box loss of ``MODEL.RPN.BBOX_REG_LOSS_TYPE``.

    Losses are normalized as in Detectron2 (by the number of sampled anchors); Focal-EIoU's Eq. 11
    normalization rescales its weights IoU^gamma to mean 1 over the positive anchors of the global
    batch.

    A loss with training state (Wise-IoU v3's running mean) keeps it as a buffer of this RPN; a
    loss that takes each box's image size (MPDIoU) gets the size of the anchor's own image.
    """

    step_image_sizes = None  # the batch's image sizes during a training step, for MPDIoU

    @configurable
    def __init__(self, *, box_loss, **kwargs):
        """
        Args:
            box_loss (BoxRegressionLoss): the box-regression loss.
            kwargs: arguments of Detectron2's ``RPN``.
        """
        super().__init__(**kwargs)
        self.box_loss = box_loss.for_head(self.box2box_transform, "mean_weight")
        self.box_loss.register_state(self)

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        loss_weight_from_config(cfg, "RPN")
        ret["box_loss"] = BoxRegressionLoss.from_config(cfg, "RPN", ret["smooth_l1_beta"])
        return ret

    def forward(self, images, features, gt_instances=None):
        """``RPN.forward``, with the images' sizes at hand for the box loss."""
        with step_image_sizes(self, images.image_sizes):
            return super().forward(images, features, gt_instances)

    def losses(self, anchors, pred_objectness_logits, gt_labels, pred_anchor_deltas, gt_boxes):
        """Same inputs and outputs as ``RPN.losses`` (4-D boxes only)."""
        num_images = len(gt_labels)
        gt_labels = torch.stack(gt_labels)  # (N, R)
        pos_mask = gt_labels == 1
        storage = get_event_storage()
        storage.put_scalar("rpn/num_pos_anchors", pos_mask.sum().item() / num_images)
        storage.put_scalar("rpn/num_neg_anchors", (gt_labels == 0).sum().item() / num_images)

        normalizer = self.batch_size_per_image * num_images
        localization_loss = self.box_loss.dense(
            anchors,
            pred_anchor_deltas,
            gt_boxes,
            pos_mask,
            normalizer,
            head=self,
            image_sizes=self.step_image_sizes,
        )
        valid_mask = gt_labels >= 0
        objectness_loss = F.binary_cross_entropy_with_logits(
            cat(pred_objectness_logits, dim=1)[valid_mask],
            gt_labels[valid_mask].to(torch.float32),
            reduction="sum",
        )
        losses = {"loss_rpn_cls": objectness_loss / normalizer, "loss_rpn_loc": localization_loss}
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}
