"""Summaries over seeds: mean, sample standard deviation, and paired differences with a
Student-t 95 % confidence interval."""

import math

import numpy as np

CONFIDENCE = 0.95


def student_t_cdf(t, df, steps=2000):
    """P(T <= t) for Student's t distribution with ``df`` degrees of freedom.

    Integrates the density from 0 to |t| with Simpson's rule after the substitution
    x = atan(u / sqrt(df)), which maps the infinite range to a finite one and makes the
    integrand smooth (``steps`` even; 2000 gives about 10 correct digits).
    """
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    # With u = sqrt(df) tan(x): density(u) du = norm * cos(x)^(df - 1) * sqrt(df) dx.
    upper = math.atan(abs(t) / math.sqrt(df))
    h = upper / steps
    total = 0.0
    for index in range(steps + 1):
        weight = 1 if index in (0, steps) else (4 if index % 2 else 2)
        total += weight * math.cos(index * h) ** (df - 1)
    area = math.exp(log_norm) * math.sqrt(df) * total * h / 3
    return 0.5 + math.copysign(area, t)


def student_t_quantile(p, df):
    """The t with P(T <= t) = p (bisection on :func:`student_t_cdf`), for 0.5 <= p < 1."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p must lie in [0.5, 1), got {p}")
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def mean_std(values):
    """Mean and sample standard deviation (0 for a single value); NaN if a value is NaN."""
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std


def mean_half_width(std, n):
    """Half width of the 95 % confidence interval of a mean of ``n`` values with sample standard
    deviation ``std`` (Student t); NaN for fewer than 2 values."""
    if n < 2:
        return math.nan
    return student_t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)


def paired_difference(values, baseline_values):
    """Mean of ``values - baseline_values`` (paired, e.g. by seed) and its 95 % confidence
    interval's half width (Student t, n - 1 degrees of freedom; NaN for a single pair).

    Returns:
        tuple[float, float, int]: the mean difference, the half width, the number of pairs.
    """
    differences = np.asarray(values, dtype=np.float64) - np.asarray(baseline_values, np.float64)
    n = len(differences)
    if n < 2:
        return (float(differences.mean()) if n else math.nan), math.nan, n
    half_width = mean_half_width(float(differences.std(ddof=1)), n)
    return float(differences.mean()), half_width, n
