"""``vlnorm-verl probe``: measure how the variance of a response's policy gradient grows with its length, and pick
VL Norm's alpha from the measurement.

VL Norm's weights x_i ∝ L_i^-alpha are the minimum-variance unbiased choice when Var(g_i) ∝ L_i^beta with
alpha = beta (g_i = grad(A_i * sum_t log pi(y_it | ...)), the summed gradient of response i). The probe estimates
beta on the user's own model and data, measures the variance of every aggregator (GRPO, DAPO, Dr. GRPO Norm, VL
Norm at several alpha) at matched step size, and recommends the alpha whose VL Norm estimator has the least
measured variance — measured directly, since the power law can be misspecified.

Modules: :mod:`~vlnorm_verl.probe.stats` (the statistics), :mod:`~vlnorm_verl.probe.gradients` (per-response
gradients, exact or projected, per parameter block), :mod:`~vlnorm_verl.probe.sampling` (responses and GRPO
advantages), :mod:`~vlnorm_verl.probe.model_io` (HF directories and verl checkpoints), :mod:`~vlnorm_verl.probe.api`
(the Python API), :mod:`~vlnorm_verl.probe.report` (Markdown, JSON, plot), :mod:`~vlnorm_verl.probe.cli`.
"""

from vlnorm_verl.probe.api import ProbeResult, probe_arrays, probe_model, probe_npz
from vlnorm_verl.probe.errors import ProbeError

__all__ = ["ProbeError", "ProbeResult", "probe_arrays", "probe_model", "probe_npz"]
