"""Confidence intervals for proportions and for the difference of two, for figures compared against a holdout.

Wilson's score interval for one proportion (Wilson 1927), and Newcombe's hybrid score interval for the difference of
two independent proportions (Newcombe 1998, "Interval estimation for the difference between independent proportions:
comparison of eleven methods", method 10), which stays inside [-1, 1] and behaves at small counts and at 0% or 100%,
unlike the plain normal approximation. No scipy or statsmodels in the requirements: the formulas are a few lines.
"""

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution


def wilson_interval(successes: int, total: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of successes/total; (0, 1) when total is 0 (nothing is known)."""
    if total <= 0:
        return 0.0, 1.0
    p = successes / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = p + z2 / (2 * total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, (centre - half) / denominator), min(1.0, (centre + half) / denominator)


@dataclass(frozen=True)
class DifferenceInterval:
    difference: float | None  # p1 - p2, None when a group is empty
    low: float | None
    high: float | None

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)


def newcombe_difference(
    successes_1: int, total_1: int, successes_2: int, total_2: int, *, z: float = Z_95
) -> DifferenceInterval:
    """The difference p1 - p2 with Newcombe's hybrid score interval (method 10)."""
    if total_1 <= 0 or total_2 <= 0:
        return DifferenceInterval(None, None, None)
    p1, p2 = successes_1 / total_1, successes_2 / total_2
    l1, u1 = wilson_interval(successes_1, total_1, z=z)
    l2, u2 = wilson_interval(successes_2, total_2, z=z)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return DifferenceInterval(difference, low, high)
