"""The one place where Detectron2 heads turn box-regression deltas into a loss value."""

import torch
from detectron2.utils import comm

from focal_eiou_d2.config import check_focal_eiou_config, check_loss_type
from focal_eiou_d2.layers import BOX_LOSSES, box_regression_loss
from focal_eiou_d2.layers.box_geometry import box_pair_geometry


def global_sum(values):
    """Sum a 1-D tensor over all processes (a no-op when not distributed).

    Args:
        values (Tensor[K]): per-process partial sums; not modified.

    Returns:
        Tensor[K]: the sums over the whole (global) batch.
    """
    if comm.get_world_size() == 1:
        return values
    values = values.clone()
    torch.distributed.all_reduce(values)
    return values


class BoxRegressionLoss:
    """A configured box-regression loss shared by RetinaNet, the RPN and the R-CNN box heads.

    Coordinate losses (smooth_l1, focal_l1) compare predicted and target deltas; box losses
    (the IoU family) decode the predicted deltas and compare XYXY boxes. Focal-EIoU can be
    normalized as in Eq. 11: the per-pair weights W_i = IoU_i^gamma are divided by their mean
    over the positives of the global batch, so that sum_i W_i * L_i / sum_i W_i replaces the mean
    of L_i.
    """

    def __init__(
        self,
        loss_type,
        box2box_transform,
        *,
        smooth_l1_beta=0.0,
        gamma=0.5,
        detach_weight=True,
        normalize_by_weights=True,
        focal_l1_beta=0.8,
    ):
        """
        Args:
            loss_type (str): a name of ``focal_eiou_d2.layers.BOX_LOSSES``.
            box2box_transform (Box2BoxTransform): the head's delta encoding.
            smooth_l1_beta (float): beta of smooth_l1 (0 is plain L1).
            gamma (float): gamma of focal_eiou (Eq. 10) and focal_eiou_star.
            detach_weight (bool): whether focal_eiou's IoU^gamma weight carries no gradient.
            normalize_by_weights (bool): Eq. 11 normalization of focal_eiou.
            focal_l1_beta (float): beta of focal_l1 and focal_eiou_v1 (Eq. 9).
        """
        spec = BOX_LOSSES[loss_type]
        available = {
            "beta": smooth_l1_beta if loss_type == "smooth_l1" else focal_l1_beta,
            "gamma": gamma,
            "detach_weight": detach_weight,
        }
        self.loss_type = loss_type
        self.on_boxes = spec.on_boxes
        self.params = {name: available[name] for name in spec.params if name in available}
        self.box2box_transform = box2box_transform
        self.gamma = gamma
        self.weights_normalize = loss_type == "focal_eiou" and normalize_by_weights

    @classmethod
    def from_config(cls, cfg, node, box2box_transform, smooth_l1_beta):
        """Build the loss of ``MODEL.<node>.BBOX_REG_LOSS_TYPE``, validating the config first."""
        check_focal_eiou_config(cfg)
        check_loss_type(cfg, node)
        params = cfg.MODEL.FOCAL_EIOU
        return cls(
            cfg.MODEL[node].BBOX_REG_LOSS_TYPE,
            box2box_transform,
            smooth_l1_beta=smooth_l1_beta,
            gamma=params.GAMMA,
            detach_weight=params.DETACH_WEIGHT,
            normalize_by_weights=params.NORMALIZE_BY_WEIGHTS,
            focal_l1_beta=params.FOCAL_L1_BETA,
        )

    def inverse_mean_weight(self, pred_boxes, gt_boxes):
        """1 / mean of IoU^gamma over the positives of the global batch (Eq. 11).

        A collective call in distributed training: every process must make it, with or without
        positives. Returns 0 when every weight is 0 (no positive overlaps its target).

        Args:
            pred_boxes, gt_boxes (Tensor[R, 4]): this process's positive pairs, XYXY.

        Returns:
            float: the factor that turns IoU^gamma into weights of mean 1.
        """
        with torch.no_grad():
            iou = box_pair_geometry(pred_boxes, gt_boxes).iou.clamp(min=0)
            local = torch.stack([iou.pow(self.gamma).sum(), iou.new_tensor(float(len(iou)))])
            weight_sum, count = global_sum(local.double()).tolist()
        return count / weight_sum if weight_sum > 0 else 0.0

    def __call__(self, anchors, pred_deltas, gt_boxes, normalizer):
        """Sum of the per-pair losses divided by ``normalizer``.

        With Eq. 11 normalization each focal_eiou term IoU^gamma * L_EIoU is divided by the mean
        of IoU^gamma over the global batch; with ``normalizer`` equal to the mean number of
        positives per process this is exactly ``sum_i W_i * L_EIoU_i / sum_i W_i`` over the
        global batch (times the number of processes, which DDP's gradient averaging undoes).

        Args:
            anchors (Tensor[R, 4]): XYXY anchors or proposals the deltas are relative to.
            pred_deltas (Tensor[R, 4]): predicted deltas of this process's positives.
            gt_boxes (Tensor[R, 4]): their XYXY targets.
            normalizer (float): what the head divides its box loss by (0 is treated as 1).

        Returns:
            Tensor: scalar loss; 0 with the graph attached when R == 0.
        """
        if self.on_boxes:
            pred = self.box2box_transform.apply_deltas(pred_deltas, anchors)
            target = gt_boxes
        else:
            pred = pred_deltas
            target = self.box2box_transform.get_deltas(anchors, gt_boxes)
        losses = box_regression_loss(self.loss_type, pred, target, **self.params)
        if self.weights_normalize:
            losses = losses * self.inverse_mean_weight(pred, target)
        return losses.sum() / (normalizer if normalizer > 0 else 1.0)


def global_mean_count(count):
    """The number of positives per process, averaged over the global batch (a collective call).

    Args:
        count (int): positives of this process.

    Returns:
        float: the sum of the counts over all processes divided by the number of processes.
    """
    total = global_sum(torch.tensor([float(count)], dtype=torch.float64))
    return total.item() / comm.get_world_size()
