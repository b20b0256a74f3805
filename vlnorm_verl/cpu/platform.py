"""A CPU platform for verl 0.9.1, registered through verl's public platform registry.

verl resolves its device once per process through ``verl.plugin.platform.get_platform()``: the
``VERL_PLATFORM`` environment variable names a class registered with
``PlatformRegistry.register(platform=...)``. verl 0.9.1 ships CUDA, ROCm and NPU platforms only; this
module adds ``cpu`` so that verl's FSDP2 engine can train a small model on CPU with the ``gloo`` backend
(verl's trainer and SFT trainer on CPU - ``cluster=cpu``, the quickstart's warm-start - and the engine tests use it).

What verl reads from the platform on the actor-update path, and what this class answers:

- ``device_name`` = ``"cpu"``: device meshes (``init_device_mesh("cpu", ...)``), autocast device type,
  engine offload/onload targets, ``trainer.device``.
- ``current_device()`` = ``"cpu"``: verl moves micro-batches with ``td.to(get_device_id())``; an integer
  id would mean ``cuda:<id>``, so the CPU answer must be the string ``"cpu"`` (as ``torch.cpu`` does).
- ``communication_backend_name()`` = ``"gloo"``: verl builds ``"cpu:gloo,<device>:<backend>"``, which torch
  rejects for ``cpu`` (duplicate device type), so callers start a plain ``gloo`` process group first
  (:func:`init_process_group`); verl then skips its own initialisation.
- ``device_module``: a small namespace with the ``torch.cuda``-like calls verl makes on this path
  (``synchronize``, ``empty_cache``, memory statistics, ``mem_get_info``, RNG state, ...), answered
  for host memory.
- ``vendor_name`` = ``"cpu"``. The engine registry keys engines by (device, vendor); verl registers
  its FSDP engines for ``cuda``/``npu`` only, so processes also set ``VERL_ENGINE_DEVICE=cuda`` (a public
  override in ``EngineRegistry.get_engine_cls``) to select the FSDP engine class while every tensor stays
  on the CPU.

Use: set :data:`ENV` in the process environment (:func:`apply_env`) and call :func:`register` (idempotent)
before verl code first calls ``get_platform()``; then :func:`init_process_group`. The plugin entry point
(:mod:`vlnorm_verl.plugin`) does both steps in every verl process when ``VERL_PLATFORM=cpu`` — verl's trainer,
its Ray workers included — and :func:`patch_process_group_init` fixes verl's own process-group start-up there.
Supported: FSDP2 (``actor.strategy=fsdp2``), fp32, eager attention, 1 or 2 ranks, the ``hf`` rollout
(:mod:`vlnorm_verl.cpu.rollout`). Not supported: FSDP1 (``sync_module_states`` needs a GPU), vLLM/SGLang,
profiling, CUDA IPC.
"""

from __future__ import annotations

import functools
import os
import types
from contextlib import contextmanager
from typing import Any

import psutil
import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

from vlnorm_verl.extension.verl_compat import INSTALL_SUPPORTED_VERL, check_signature, check_verl_version
from vlnorm_verl.extension.verl_compat import UnsupportedVerlError as UnsupportedVerlError  # re-exported

PLATFORM_NAME = "cpu"

#: Environment a process needs for verl to run its FSDP engine on this platform.
ENV: dict[str, str] = {
    "VERL_PLATFORM": PLATFORM_NAME,
    "VERL_ENGINE_DEVICE": "cuda",
}


def _host_mem_get_info(device: Any = None) -> tuple[int, int]:
    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _build_device_module() -> types.ModuleType:
    """A ``torch.cuda``-shaped namespace for the host: only what verl calls, with host answers."""
    mod = types.ModuleType("vlnorm_cpu_device")
    mod.is_available = lambda: True
    mod.is_initialized = lambda: True
    mod.device_count = lambda: 1
    mod.current_device = lambda: "cpu"
    # verl's flops counter looks the device up by name ("CPU" is in its table of known devices).
    mod.get_device_name = lambda device=None: "CPU"
    mod.set_device = _noop
    mod.synchronize = _noop
    mod.empty_cache = _noop
    mod.manual_seed = torch.manual_seed
    mod.manual_seed_all = torch.manual_seed
    mod.get_rng_state = lambda device=None: torch.get_rng_state()
    mod.set_rng_state = lambda state, device=None: torch.set_rng_state(state)
    mod.memory_allocated = _zero
    mod.memory_reserved = _zero
    mod.max_memory_allocated = _zero
    mod.max_memory_reserved = _zero
    mod.reset_peak_memory_stats = _noop
    mod.mem_get_info = _host_mem_get_info
    mod.set_per_process_memory_fraction = _noop
    return mod


_DEVICE_MODULE = _build_device_module()


class PlatformCPU(PlatformBase):
    """verl platform backed by the host CPU and the gloo backend (no profiling, no IPC)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return _DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never win auto-detection: this platform is chosen only through VERL_PLATFORM=cpu.
        return False

    def current_device(self) -> str:  # type: ignore[override]
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CPU_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "CPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_cpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def register() -> type[PlatformCPU]:
    """Register :class:`PlatformCPU` as ``cpu`` in verl's platform registry (idempotent)."""
    if PlatformRegistry.get(PLATFORM_NAME) is not PlatformCPU:
        PlatformRegistry.register(platform=PLATFORM_NAME)(PlatformCPU)
    return PlatformCPU


def apply_env(environ: dict[str, str] | None = None) -> None:
    """Write :data:`ENV` into ``environ`` (default: this process's environment)."""
    target = os.environ if environ is None else environ
    target.update(ENV)


def init_process_group(rank: int = 0, world_size: int = 1, port: int | None = None) -> None:
    """Start the plain ``gloo`` process group verl's FSDP engine needs on CPU (no-op if one exists).

    Sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``LOCAL_WORLD_SIZE``/``MASTER_ADDR`` (127.0.0.1)/``MASTER_PORT``
    (a free loopback port when ``port`` is None and none is set) as verl's ``Worker`` reads them.
    """
    import socket

    import torch.distributed as dist

    if dist.is_initialized():
        return
    if port is None and "MASTER_PORT" not in os.environ:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR=os.environ.get("MASTER_ADDR", "127.0.0.1"),
    )
    if port is not None:
        os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(backend="gloo", rank=rank, world_size=world_size)


def check_active() -> None:
    """Raise if verl resolved its platform to something other than :class:`PlatformCPU` in this process."""
    from verl.plugin.platform import get_platform

    platform = get_platform()
    if not isinstance(platform, PlatformCPU):
        raise RuntimeError(
            f"verl resolved its platform to {type(platform).__name__}, not the CPU platform: set "
            f"VERL_PLATFORM={PLATFORM_NAME} and call vlnorm_verl.cpu.platform.register() before verl first calls "
            "get_platform() (e.g. before importing verl's workers)"
        )


PROCESS_GROUP_INIT_PARAMS = ("timeout_second", "backend")
#: modules holding a reference to verl's function (``engine_workers`` imports it by name)
PROCESS_GROUP_INIT_MODULES = ("verl.utils.distributed", "verl.workers.engine_workers")
_WRAPPED_FLAG = "_vlnorm_cpu_wrapped"


def is_requested(environ: Any = None) -> bool:
    """Whether this process asks verl for the CPU platform (``VERL_PLATFORM=cpu``)."""
    env = os.environ if environ is None else environ
    return str(env.get("VERL_PLATFORM", "")).strip().lower() == PLATFORM_NAME


def check_process_group_contract(version: str | None = None, func: Any = None) -> None:
    """Raise :class:`UnsupportedVerlError` unless verl's version and the wrapped function's signature are known."""
    check_verl_version(
        "vlnorm_verl's CPU platform (it wraps verl's private "
        "verl.utils.distributed.initialize_global_process_group_ray)",
        f"{INSTALL_SUPPORTED_VERL} or unset VERL_PLATFORM=cpu",
        version=version,
    )
    from verl.utils import distributed

    target = func if func is not None else getattr(distributed, "initialize_global_process_group_ray", None)
    check_signature(
        target,
        PROCESS_GROUP_INIT_PARAMS,
        "verl.utils.distributed.initialize_global_process_group_ray",
        "update vlnorm_verl.cpu.platform.patch_process_group_init",
    )


def patch_process_group_init() -> bool:
    """Make verl's ``initialize_global_process_group_ray`` start a plain ``gloo`` group on this platform.

    verl builds the backend ``f"cpu:gloo,{device}:{backend}"``, i.e. ``"cpu:gloo,cpu:gloo"`` here, which torch
    rejects (``Duplicate device type cpu``); it is called from ``TrainingWorker.__init__`` before any hook of ours
    could run. The wrapper passes ``backend="gloo"`` when the caller gave none and the CPU platform is requested,
    and calls verl's function otherwise. Guarded by :func:`check_process_group_contract`. Returns True when it
    installed (or had installed) the wrapper; a no-op returning False unless ``VERL_PLATFORM=cpu``.
    """
    import importlib
    import sys

    if not is_requested():
        return False
    from verl.utils import distributed

    current = distributed.initialize_global_process_group_ray
    if getattr(current, _WRAPPED_FLAG, False):
        wrapper = current
    else:
        check_process_group_contract(func=current)
        original = current

        @functools.wraps(original)
        def wrapper(timeout_second=None, backend=None):
            if backend is None and is_requested():
                backend = "gloo"
            return original(timeout_second=timeout_second, backend=backend)

        setattr(wrapper, _WRAPPED_FLAG, True)
    for name in PROCESS_GROUP_INIT_MODULES:
        module = sys.modules.get(name) if name != PROCESS_GROUP_INIT_MODULES[0] else importlib.import_module(name)
        if module is not None and hasattr(module, "initialize_global_process_group_ray"):
            module.initialize_global_process_group_ray = wrapper
    return True


def activate() -> None:
    """Make the CPU platform this process's verl platform, also when verl already resolved another one here.

    Code that ran before ``VERL_PLATFORM=cpu`` was exported (``vlnorm-verl train``'s checks, imports in plain
    ``main_ppo``) may have let verl auto-detect its platform (CUDA by default when no accelerator is found);
    verl's public ``set_platform`` replaces it. The ``cluster=cpu`` Hydra callback calls this in the driver.
    """
    apply_env()
    install_if_requested()
    from verl.plugin.platform import get_platform, set_platform

    if not isinstance(get_platform(), PlatformCPU):
        set_platform(PlatformCPU())


def install_if_requested() -> bool:
    """In a process with ``VERL_PLATFORM=cpu``: register the platform and wrap verl's process-group start-up.

    Called by the plugin entry point on ``import verl`` (driver, TaskRunner, every Ray worker). ``engine_workers``
    imports the wrapped function by name, so when it is imported after this call it picks up the wrapper from
    ``verl.utils.distributed``; when it was imported before, its reference is replaced too.
    """
    if not is_requested():
        return False
    os.environ.setdefault("VERL_ENGINE_DEVICE", ENV["VERL_ENGINE_DEVICE"])
    register()
    return patch_process_group_init()


# Imported first in a VERL_PLATFORM=cpu process (before verl), this module's own `import verl` ran the plugin while
# it was half-initialised; the plugin then leaves the installation to this line.
if is_requested():
    install_if_requested()
