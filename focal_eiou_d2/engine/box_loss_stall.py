"""A warning when box regression has stopped: its loss exactly 0, iteration after iteration."""

import logging

from detectron2.engine import HookBase

logger = logging.getLogger(__name__)

# The box-regression losses of Detectron2's RetinaNet and R-CNN heads (loss_box_reg) and of its
# FCOS (loss_fcos_loc), as the trainers record them.
BOX_LOSS_KEYS = ("loss_box_reg", "loss_fcos_loc")


class BoxLossStallWarning(HookBase):
    """Warns once per stall when a box-regression loss has been exactly 0 for ``iterations``
    iterations in a row: the box head gets no gradient.

    With Focal-EIoU's detached IoU^gamma weights (Eq. 11), a batch in which no positive's
    predicted box overlaps its target has loss 0, and box regression may not recover
    (docs/losses.md, "When no prediction overlaps"); other causes are a box-loss weight of 0 and
    batches without objects.
    The hook reads the values the trainer has already recorded (on the main process), so it adds
    no device reads.
    """

    def __init__(self, iterations=20):
        """
        Args:
            iterations (int): zero losses in a row that make a stall.
        """
        self.iterations = iterations
        self._zeros = {}  # key -> (zero values in a row, iteration of the last value seen)

    def after_step(self):
        histories = self.trainer.storage.histories()
        for key in BOX_LOSS_KEYS:
            if key not in histories:
                continue
            value, iteration = histories[key].values()[-1]
            zeros, seen = self._zeros.get(key, (0, None))
            if iteration == seen:
                continue
            zeros = zeros + 1 if value == 0 else 0
            self._zeros[key] = (zeros, iteration)
            if zeros == self.iterations:
                logger.warning(
                    "%s has been exactly 0 for %d iterations in a row (up to iteration %d): box "
                    "regression gets no gradient. Causes: a box-loss weight of 0, batches without "
                    "objects, or, with Focal-EIoU, no positive's predicted box overlapping its "
                    "target (every IoU^gamma weight of Eq. 11 is 0), from which training may not "
                    "recover: see docs/losses.md, 'When no prediction overlaps'.",
                    key,
                    zeros,
                    iteration,
                )
