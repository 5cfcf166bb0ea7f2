"""R-CNN box predictor whose box-regression loss is any loss of focal_eiou_d2.layers."""

from detectron2.config import configurable
from detectron2.layers import nonzero_tuple
from detectron2.modeling.roi_heads import FastRCNNOutputLayers

from .box_loss import BoxRegressionLoss, loss_weight_from_config, step_image_sizes


class FocalEIoUFastRCNNOutputLayers(FastRCNNOutputLayers):
    """``FastRCNNOutputLayers`` with the box loss of ``MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE``.

    The loss is normalized as in Detectron2, by the number of sampled regions; Focal-EIoU's Eq. 11
    normalization rescales its weights IoU^gamma to mean 1 over the foreground regions of the
    global batch.

    A loss with training state (Wise-IoU v3's running mean) keeps it as a buffer of this
    predictor, so each Cascade stage has its own; a loss that takes each box's image size
    (MPDIoU) gets the size of the region's own image, from its proposals' ``Instances``.
    """

    step_image_sizes = None  # one row per region during a training step, for MPDIoU

    @configurable
    def __init__(self, input_shape, *, box_loss, **kwargs):
        """
        Args:
            input_shape (ShapeSpec): shape of the box head's output.
            box_loss (BoxRegressionLoss): the box-regression loss.
            kwargs: arguments of Detectron2's ``FastRCNNOutputLayers``.
        """
        super().__init__(input_shape, **kwargs)
        self.box_loss = box_loss.for_head(self.box2box_transform, "mean_weight")
        self.box_loss.register_state(self)

    @classmethod
    def from_config(cls, cfg, input_shape, box2box_transform=None):
        ret = super().from_config(cfg, input_shape)
        if box2box_transform is not None:  # cascade stages pass their own
            ret["box2box_transform"] = box2box_transform
        loss_weight_from_config(cfg, "ROI_BOX_HEAD")
        ret["box_loss"] = BoxRegressionLoss.from_config(cfg, "ROI_BOX_HEAD", ret["smooth_l1_beta"])
        return ret

    def losses(self, predictions, proposals):
        """``FastRCNNOutputLayers.losses``, with each region's image size at hand for the box
        loss (``box_reg_loss`` gets the regions of all images concatenated)."""
        sizes = [p.image_size for p in proposals]
        with step_image_sizes(self, sizes, repeats=[len(p) for p in proposals]):
            return super().losses(predictions, proposals)

    def box_reg_loss(self, proposal_boxes, gt_boxes, pred_deltas, gt_classes):
        """Box loss of the foreground regions, divided by the number of regions.

        Args:
            proposal_boxes, gt_boxes (Tensor[R, 4]): XYXY proposals and their matched targets.
            pred_deltas (Tensor[R, 4] or Tensor[R, 4 * K]): predicted deltas.
            gt_classes (Tensor[R]): class of each region; K marks background.

        Returns:
            Tensor: scalar loss (the loss weight is applied by ``losses``).
        """
        fg_inds = nonzero_tuple((gt_classes >= 0) & (gt_classes < self.num_classes))[0]
        if pred_deltas.shape[1] == 4:  # class-agnostic regression
            fg_pred_deltas = pred_deltas[fg_inds]
        else:
            fg_pred_deltas = pred_deltas.view(-1, self.num_classes, 4)[fg_inds, gt_classes[fg_inds]]
        image_size = None
        if self.step_image_sizes is not None:
            image_size = self.step_image_sizes.to(fg_inds.device, non_blocking=True)[fg_inds]
        return self.box_loss(
            proposal_boxes[fg_inds],
            fg_pred_deltas,
            gt_boxes[fg_inds],
            gt_classes.numel(),
            head=self,
            image_size=image_size,
        )
