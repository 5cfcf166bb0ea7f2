"""A warning when box regression has stopped: its loss exactly 0, iteration after iteration."""

import logging

from detectron2.engine import HookBase

logger = logging.getLogger(__name__)

# The box-regression losses as the trainers record them: Detectron2's RetinaNet and R-CNN heads
# (loss_box_reg; Cascade R-CNN's loss_box_reg_stage0, ...) and its FCOS (loss_fcos_loc).
BOX_LOSS_PREFIXES = ("loss_box_reg", "loss_fcos_loc")


class BoxLossStallWarning(HookBase):
    """Warns once per stall when a box-regression loss has been exactly 0 in ``values`` recorded
    values in a row: the box head gets no gradient.

    With Focal-EIoU's detached IoU^gamma weights (Eq. 11), a batch in which no positive's
    predicted box overlaps its target has loss 0, and box regression may not recover
    (docs/losses.md, "When no prediction overlaps"); other causes are a box-loss weight of 0 and
    batches without objects. The hook reads the values the trainer has already recorded (on the
    main process; every recorded value, also when several arrive between two steps), so it adds
    no device reads.
    """

    def __init__(self, values=20):
        """
        Args:
            values (int): zero values in a row that make a stall (one per iteration, unless the
                trainer records metrics less often).
        """
        self.values = values
        self._runs = {}  # key -> (zeros in a row, iteration of the first, last iteration seen)

    def after_step(self):
        for key, history in self.trainer.storage.histories().items():
            if key.startswith(BOX_LOSS_PREFIXES):
                self._read(key, history.values())

    def _read(self, key, recorded):
        zeros, first, seen = self._runs.get(key, (0, None, -1))
        start = len(recorded)
        while start > 0 and recorded[start - 1][1] > seen:
            start -= 1
        for value, iteration in recorded[start:]:
            if value != 0:
                zeros = 0
                continue
            zeros, first = zeros + 1, first if zeros else iteration
            if zeros == self.values:
                logger.warning(
                    "%s has been exactly 0 from iteration %d to %d (%d values in a row): box "
                    "regression gets no gradient. Causes: a box-loss weight of 0, batches without "
                    "objects, or, with Focal-EIoU, no positive's predicted box overlapping its "
                    "target (every IoU^gamma weight of Eq. 11 is 0), from which training may not "
                    "recover: see docs/losses.md, 'When no prediction overlaps'.",
                    key,
                    first,
                    iteration,
                    zeros,
                )
        if recorded:
            self._runs[key] = (zeros, first, max(seen, recorded[-1][1]))
