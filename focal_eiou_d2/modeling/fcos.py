"""FCOS whose box-regression loss is any loss of focal_eiou_d2.layers."""

import torch
import torch.nn.functional as F
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch.fcos import FCOS
from detectron2.structures import Boxes
from detectron2.utils.events import get_event_storage
from fvcore.nn import sigmoid_focal_loss

from .box_loss import BoxRegressionLoss, step_image_sizes

# FCOS's box loss in Detectron2 (and in the FCOS paper's released code).
DEFAULT_LOSS = "giou"


@META_ARCH_REGISTRY.register()
class FocalEIoUFCOS(FCOS):
    """FCOS (Tian et al., ICCV 2019) with a configurable box-regression loss.

    Everything but the box loss is Detectron2's FCOS: the anchor-point matching (which differs
    between Detectron2 0.6 and main and is not touched here), the focal classification loss, the
    centerness target and loss, and the normalizer (a moving average of the number of positives).
    The box loss is ``box_loss`` on the boxes decoded from FCOS's (left, top, right, bottom)
    distances; Focal-EIoU with Eq. 11 is ``sum_i W_i * L_EIoU_i / sum_i W_i`` over the positive
    points of the global batch, as in :class:`FocalEIoURetinaNet`.

    Detectron2 builds FCOS from LazyConfig only; so does this class (``configs/lazy/``, or
    ``focal_eiou_d2.lazy.use_box_loss`` on any FCOS LazyConfig).

    As in :class:`FocalEIoURetinaNet`, a loss's training state is a buffer of this model, and a
    loss that takes each box's image size gets the size of the positive's own image.
    """

    step_image_sizes = None  # the batch's image sizes during a training step, for MPDIoU

    def __init__(self, *, box_loss=None, box_reg_loss_weight=1.0, **kwargs):
        """
        Args:
            box_loss (BoxRegressionLoss or None): the box-regression loss; its box2box_transform
                may be None (it then uses this model's). None is Detectron2's GIoU.
            box_reg_loss_weight (float): multiplies the box-regression loss.
            kwargs: arguments of Detectron2's ``FCOS``.
        """
        super().__init__(**kwargs)
        box_loss = box_loss or BoxRegressionLoss(DEFAULT_LOSS)
        self.box_loss = box_loss.for_head(self.box2box_transform, "sum_of_weights")
        self.box_loss.register_state(self)
        self.box_reg_loss_weight = box_reg_loss_weight
        # As in FocalEIoURetinaNet: a buffer, so that checkpoints keep the moving average.
        self.register_buffer("loss_normalizer", torch.tensor(300.0))

    def forward_training(self, images, features, predictions, gt_instances):
        """``FCOS.forward_training``, with the images' sizes at hand for the box loss."""
        with step_image_sizes(self, images.image_sizes):
            return super().forward_training(images, features, predictions, gt_instances)

    def losses(
        self, anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes, pred_centerness
    ):
        """Same inputs and outputs as ``FCOS.losses`` (Detectron2 0.6 passes ``gt_boxes`` as
        Boxes, main as tensors); see the class docstring."""
        num_images = len(gt_labels)
        gt_labels = torch.stack(gt_labels)  # (N, R)
        pos_mask = (gt_labels >= 0) & (gt_labels != self.num_classes)
        num_pos_anchors = pos_mask.sum().item()
        get_event_storage().put_scalar("num_pos_anchors", num_pos_anchors / num_images)
        normalizer = self._ema_update("loss_normalizer", max(num_pos_anchors, 1), 300)

        gt_labels_target = F.one_hot(gt_labels, num_classes=self.num_classes + 1)[:, :, :-1]
        loss_cls = sigmoid_focal_loss(
            torch.cat(pred_logits, dim=1),
            gt_labels_target.to(pred_logits[0].dtype),
            alpha=self.focal_loss_alpha,
            gamma=self.focal_loss_gamma,
            reduction="sum",
        )
        gt_tensors = [b.tensor if isinstance(b, Boxes) else b for b in gt_boxes]
        loss_box_reg = self.box_loss.dense(
            anchors,
            pred_anchor_deltas,
            gt_tensors,
            pos_mask,
            normalizer,
            head=self,
            image_sizes=self.step_image_sizes,
        )
        ctrness_targets = self.compute_ctrness_targets(anchors, gt_boxes)  # (N, R)
        pred_centerness = torch.cat(pred_centerness, dim=1).squeeze(dim=2)  # (N, R)
        ctrness_loss = F.binary_cross_entropy_with_logits(
            pred_centerness[pos_mask], ctrness_targets[pos_mask], reduction="sum"
        )
        return {
            "loss_fcos_cls": loss_cls / normalizer,
            "loss_fcos_loc": loss_box_reg * self.box_reg_loss_weight,
            "loss_fcos_ctr": ctrness_loss / normalizer,
        }
