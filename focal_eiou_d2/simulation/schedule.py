"""Step learning-rate schedule of Algorithm 1 (mu_t)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class StepSchedule:
    """Learning rate ``base_lr * decay ** k`` after k of the milestones have passed.

    With the defaults (T = 200): 0.1 for iterations 0..159, 0.01 for 160..179 and 0.001 for
    180..199 (0-based update index), as in the paper and the DIoU authors' code.

    Attributes:
        iterations: T, the number of updates.
        base_lr: learning rate before the first milestone.
        milestones: fractions of T at which the rate is multiplied by ``decay``.
        decay: the multiplier.
    """

    iterations: int = 200
    base_lr: float = 0.1
    milestones: tuple[float, ...] = (0.8, 0.9)
    decay: float = 0.1

    def lr(self, step: int) -> float:
        """Learning rate of update ``step`` (0-based, < iterations)."""
        passed = sum(step >= round(fraction * self.iterations) for fraction in self.milestones)
        return self.base_lr * self.decay**passed
