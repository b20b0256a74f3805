"""Closed forms of the paper, written out for the tests as independent references (numpy, no package code)."""

from __future__ import annotations

import numpy as np


def vl_norm_variance(lengths, alpha: float, max_length: float, unit_variance: float = 1.0) -> float:
    """Var_VL(alpha) = (V / M^2) * sum_i L_i^(1 - 2 alpha) / (sum_j L_j^-alpha)^2 over the non-empty responses,
    the variance of VL Norm's estimate under the model Var(g_i) = V * L_i."""
    values = np.asarray(lengths, dtype=np.float64)
    values = values[values > 0]
    numerator = (values ** (1.0 - 2.0 * alpha)).sum()
    denominator = (values ** (-alpha)).sum() ** 2
    return float(unit_variance / max_length**2 * numerator / denominator)
