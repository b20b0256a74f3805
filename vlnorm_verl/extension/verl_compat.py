"""Guards for the verl internals this package touches: a version range and call signatures.

verl's public mechanisms (entry points, registries, the Hydra search path) cover most of the plugin; a few
pieces must touch private verl code. Each such piece calls :func:`check_verl_version` and
:func:`check_signature` before it touches anything, and fails with :class:`UnsupportedVerlError`, naming the
verl version found and what changed, instead of misbehaving silently. The internals, and who touches them:

* ``verl.workers.rollout.base._ROLLOUT_REGISTRY`` (a private dict) - :mod:`vlnorm_verl.cpu.rollout.backend`;
* ``verl.trainer.ppo.v1.replay_buffer.ReplayBuffer._evict_terminal_groups`` / ``._sampleable_terminal_keys``
  and its ``filter_groups_metric`` / ``train_batch_size`` state - :mod:`vlnorm_verl.extension.bounded_sampler`;
* ``verl.workers.engine.fsdp.transformer_impl.FSDPEngine.forward_backward_batch`` -
  :mod:`vlnorm_verl.extension.engine_hook`;
* ``verl.utils.distributed.initialize_global_process_group_ray`` - :mod:`vlnorm_verl.cpu.platform`.

The supported range is compared on release tuples, so a pre-release of the next minor (``0.10.0.dev0``, which
:class:`packaging.version.Version` orders *below* ``0.10``) is outside it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from packaging.version import Version

#: verl releases the guarded code was written against: [low, high), compared on release tuples
SUPPORTED_VERL: tuple[str, str] = ("0.9.1", "0.10")
#: the fix to offer when the installed verl is outside the range (derived, so it follows SUPPORTED_VERL)
INSTALL_SUPPORTED_VERL = (
    f"install a supported verl (pip install 'verl[verl-core]>={SUPPORTED_VERL[0]},<{SUPPORTED_VERL[1]}')"
)


class UnsupportedVerlError(RuntimeError):
    """The installed verl differs from what a guarded piece of this package was written against."""


def release(version: str) -> tuple[int, ...]:
    """The release tuple of `version`, padded to three parts (``0.10.0.dev0`` -> ``(0, 10, 0)``)."""
    parts = Version(version).release
    return tuple(parts) + (0,) * max(0, 3 - len(parts))


def installed_verl_version() -> str:
    import verl

    return str(verl.__version__)


def is_supported(version: str | None = None) -> bool:
    found = release(version or installed_verl_version())
    low, high = (release(v) for v in SUPPORTED_VERL)
    return low <= found < high


def check_verl_version(
    what: str, fix: str, version: str | None = None, error: type[Exception] = UnsupportedVerlError
) -> None:
    """Raise `error` unless verl's version is in :data:`SUPPORTED_VERL`; `what` names the internal, `fix` the fix."""
    found = version or installed_verl_version()
    if not is_supported(found):
        low, high = SUPPORTED_VERL
        raise error(f"{what} is written against verl >={low},<{high} (found verl {found}); {fix}")


def check_signature(
    func: Callable[..., Any] | None,
    expected: tuple[str, ...],
    qualname: str,
    fix: str,
    error: type[Exception] = UnsupportedVerlError,
) -> None:
    """Raise `error` unless `func` (unwrapped) exists and takes exactly the parameters `expected`, in order."""
    version = installed_verl_version()
    if func is None:
        raise error(f"verl {version} has no {qualname}; verl changed: {fix}")
    params = tuple(inspect.signature(getattr(func, "__wrapped__", func)).parameters)
    if params != expected:
        raise error(f"verl {version}'s {qualname}{params} differs from the expected {expected}; verl changed: {fix}")
