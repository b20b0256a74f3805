"""The mini-batch side of VL Norm's ``minibatch`` scope, in verl's FSDP engine.

verl hands a policy-loss function one micro-batch at a time. The ``minibatch`` scope weighs row i of an
optimizer mini-batch by c_i = L_i^-alpha / (M D), D = sum_{j in mini-batch} L_j^-alpha over every micro-batch
and data-parallel rank of the step. verl's ``FSDPEngine.forward_backward_batch`` is the one place that holds a
rank's whole mini-batch with its data-parallel group (it all-reduces the mini-batch token count there). This
module wraps that method: when the loss function is verl's ``ppo_loss`` bound to a VL Norm actor config with
``scope=minibatch``, it computes the rank's :class:`WeightSums` (vectorised, once per mini-batch), all-reduces
them over the data-parallel group, hands the engine a shallow copy of the mini-batch whose advantages carry
c_i (:func:`prepare_minibatch`; the clipped surrogate is positively homogeneous in A, so this scales row i's
per-token losses by c_i), and exposes the sums to the loss (its diagnostics) through a context variable for
the duration of the call. The loss then only sums. Every other call passes through untouched.

The wrapped method is verl-internal, so the wrap is guarded: verl's version must be in
:data:`vlnorm_verl.extension.verl_compat.SUPPORTED_VERL` and the method's signature must be the one this code
was written against; otherwise :func:`install` raises. Only ``scope=minibatch`` installs it (from the
worker-side loss config); a ``batch``-scope run leaves verl's engine untouched and pays nothing.
``tests/integration`` pins the contract.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from typing import Any

import torch

from vlnorm_verl.aggregation import WeightSums, minibatch_scope_row_factors, response_lengths
from vlnorm_verl.extension.settings import LOSS_MODE, VLNormConfigError
from vlnorm_verl.extension.verl_compat import INSTALL_SUPPORTED_VERL
from vlnorm_verl.extension.verl_compat import check_verl_version as check_verl_version_in_range

EXPECTED_PARAMS = ("self", "data", "loss_function", "forward_only")
_WRAPPED_FLAG = "_vl_norm_wrapped"

_current_minibatch: contextvars.ContextVar[WeightSums | None] = contextvars.ContextVar(
    "vl_norm_minibatch", default=None
)


class UnsupportedEngineError(VLNormConfigError):
    """The installed verl cannot provide mini-batch statistics to the VL Norm loss."""


def current_minibatch() -> WeightSums | None:
    """The all-reduced weight sums of the mini-batch being processed (its advantages scaled by
    :func:`prepare_minibatch`), or None outside the hook."""
    return _current_minibatch.get()


def check_verl_version(version: str | None = None) -> None:
    """verl's version is in :data:`~vlnorm_verl.extension.verl_compat.SUPPORTED_VERL` (pre-releases refused)."""
    check_verl_version_in_range(
        "VL Norm scope=minibatch (it wraps verl's FSDPEngine.forward_backward_batch)",
        f"use algorithm.vl_norm.scope=batch or {INSTALL_SUPPORTED_VERL}",
        version=version,
        error=UnsupportedEngineError,
    )


def _fsdp_engine_class():
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    return FSDPEngine


def check_engine_contract(engine_cls: type | None = None) -> None:
    """Raise UnsupportedEngineError unless forward_backward_batch has the expected signature."""
    engine_cls = engine_cls or _fsdp_engine_class()
    method = getattr(engine_cls, "forward_backward_batch", None)
    if method is None:
        raise UnsupportedEngineError(f"{engine_cls.__name__} has no forward_backward_batch; verl changed")
    method = getattr(method, "__wrapped__", method)
    params = tuple(inspect.signature(method).parameters)
    if params != EXPECTED_PARAMS:
        raise UnsupportedEngineError(
            f"{engine_cls.__name__}.forward_backward_batch{params} differs from the expected {EXPECTED_PARAMS}; "
            "verl changed its engine API: use algorithm.vl_norm.scope=batch or pin verl 0.9.x"
        )


def minibatch_loss_config(loss_function: Any) -> Any | None:
    """The actor config bound to `loss_function` (a partial of verl's ``ppo_loss``) when it selects the VL Norm
    loss with ``scope=minibatch`` and a set M (``loss_scale_factor``), else None."""
    config = (
        getattr(loss_function, "keywords", {}).get("config") if isinstance(loss_function, functools.partial) else None
    )
    policy_loss = getattr(config, "policy_loss", None)
    if getattr(policy_loss, "loss_mode", None) != LOSS_MODE or getattr(policy_loss, "scope", None) != "minibatch":
        return None
    if getattr(policy_loss, "alpha", None) is None or getattr(config, "loss_scale_factor", None) is None:
        return None  # the loss raises the error that names the setting
    return config


def minibatch_weight_sums(lengths: torch.Tensor, alpha: float, group=None) -> WeightSums:
    """WeightSums of this rank's rows (lengths L_i), merged over the data-parallel `group` (if distributed)."""
    local = WeightSums.from_lengths(lengths, alpha).to_tensor()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        device = _collective_device(group)
        sums = local[[0, 1, 2, 5, 6]].to(device)
        extrema = local[[3, 4]].to(device)
        torch.distributed.all_reduce(sums, op=torch.distributed.ReduceOp.SUM, group=group)
        torch.distributed.all_reduce(extrema, op=torch.distributed.ReduceOp.MAX, group=group)
        sums, extrema = sums.cpu(), extrema.cpu()
        local = torch.stack([sums[0], sums[1], sums[2], extrema[0], extrema[1], sums[3], sums[4]])
    return WeightSums.from_tensor(local)


def prepare_minibatch(data: Any, config: Any, group=None) -> tuple[Any, WeightSums]:
    """(a shallow copy of the mini-batch `data` whose ``advantages`` rows carry c_i, the mini-batch's sums).

    `data` is the engine's TensorDict (``response_mask`` and ``advantages`` padded or jagged); `config` the actor
    config (:func:`minibatch_loss_config`). The input is not modified: with several PPO epochs verl hands the
    same mini-batch again.
    """
    alpha = float(config.policy_loss.alpha)
    lengths = response_lengths(data["response_mask"])
    sums = minibatch_weight_sums(lengths, alpha, group)
    advantages = data["advantages"]
    factors = minibatch_scope_row_factors(lengths, alpha, float(config.loss_scale_factor), sums.sum_u)
    scaled = data.clone(recurse=False)
    scaled["advantages"] = advantages * factors.to(advantages.device, advantages.dtype).unsqueeze(-1)
    return scaled, sums


def _collective_device(group) -> torch.device:
    backend = torch.distributed.get_backend(group)
    if backend in ("nccl", "hccl") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    try:
        from verl.utils.device import get_device_id, get_device_name

        if backend not in ("gloo",):
            return torch.device(get_device_name(), get_device_id())
    except Exception:  # noqa: BLE001 - fall back to CPU tensors for gloo
        pass
    return torch.device("cpu")


def _wrap(original):
    @functools.wraps(original)
    def forward_backward_batch(self, data, loss_function, forward_only=False):
        config = None if forward_only else minibatch_loss_config(loss_function)
        if config is None:
            return original(self, data, loss_function, forward_only)
        data, sums = prepare_minibatch(data, config, group=self.get_data_parallel_group())
        token = _current_minibatch.set(sums)
        try:
            return original(self, data, loss_function, forward_only)
        finally:
            _current_minibatch.reset(token)

    setattr(forward_backward_batch, _WRAPPED_FLAG, True)
    return forward_backward_batch


def is_installed() -> bool:
    try:
        return bool(getattr(_fsdp_engine_class().forward_backward_batch, _WRAPPED_FLAG, False))
    except ImportError:
        return False


def install() -> bool:
    """Wrap FSDPEngine.forward_backward_batch once per process (``scope=minibatch`` only). Returns True.

    A verl version or engine API this code was not written against raises :class:`UnsupportedEngineError`.
    """
    try:
        check_verl_version()
        engine_cls = _fsdp_engine_class()
    except ImportError as exc:
        raise UnsupportedEngineError(f"cannot import verl's FSDP engine for VL Norm scope=minibatch: {exc}") from exc
    if getattr(engine_cls.forward_backward_batch, _WRAPPED_FLAG, False):
        return True
    check_engine_contract(engine_cls)
    engine_cls.forward_backward_batch = _wrap(engine_cls.forward_backward_batch)
    return True
