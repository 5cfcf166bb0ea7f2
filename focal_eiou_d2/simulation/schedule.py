"""Step learning-rate schedule of Algorithm 1 (mu_t)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class StepSchedule:
    """Learning rate ``base_lr * decay ** k`` after k of the milestones have passed.

    A milestone m passes at update ``round(m * iterations)`` (0-based): Algorithm 1's T = 200
    with milestones 0.8 and 0.9 gives ``base_lr`` for updates 0..159, ``base_lr * decay`` for
    160..179 and ``base_lr * decay**2`` for 180..199.

    Attributes:
        iterations: T, the number of updates.
        base_lr: learning rate before the first milestone.
        milestones: fractions of T at which the rate is multiplied by ``decay``.
        decay: the multiplier.
    """

    iterations: int
    base_lr: float
    milestones: tuple[float, ...]
    decay: float

    def lr(self, step: int) -> float:
        """Learning rate of update ``step`` (0-based, < iterations)."""
        passed = sum(step >= round(fraction * self.iterations) for fraction in self.milestones)
        return self.base_lr * self.decay**passed
