"""Thin helpers around ``torch.distributed`` for runs started by ``torchrun`` (no home-made distribution).

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; we read
them through ``init_process_group(init_method="env://")``. A plain ``python``/``causal-tune`` start is a
single process and never touches ``torch.distributed``. Backend: NCCL on CUDA, Gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from causal_tune_ros.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run.

    Attributes:
        rank: Global rank (0 for a single process).
        world_size: Number of processes.
        local_rank: Rank on this node (selects the GPU).
        device: The device this process computes on.
        backend: ``nccl``, ``gloo`` or ``None`` when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        """True when a process group is in use (more than one process)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files and logs."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r} is not an integer") from None


def resolve_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """Pick the compute device.

    Args:
        preference: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        local_rank: GPU index on this node.

    Raises:
        ConfigError: ``cuda`` was asked for but is not available, or the preference is unknown.
    """
    if preference not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {preference!r}")
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(
            f"LOCAL_RANK {local_rank} has no GPU (this node has {count}); lower --nproc_per_node"
        )
    return torch.device("cuda", local_rank)


def init_distributed(device: str = "auto", backend: str = "auto") -> DistInfo:
    """Join the ``torchrun`` process group when there is one; otherwise describe a single process.

    Args:
        device: Device preference (see :func:`resolve_device`).
        backend: ``auto`` (NCCL on CUDA, Gloo on CPU), ``nccl`` or ``gloo``.

    Returns:
        This process's :class:`DistInfo`.

    Raises:
        ConfigError: Bad environment, NCCL asked for on CPU, or an unknown backend.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistInfo(rank=0, world_size=1, local_rank=local_rank, device=dev, backend=None)
    if backend == "auto":
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ConfigError(f"ddp.backend must be auto, nccl or gloo, got {backend!r}")
    if backend == "nccl" and dev.type != "cuda":
        raise ConfigError("ddp.backend nccl needs CUDA; use gloo (or auto) on CPU")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {}
        if backend == "nccl":
            kwargs["device_id"] = dev  # binds the communicator to our GPU (no guessing, no hang)
        dist.init_process_group(backend=backend, init_method="env://", **kwargs)
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        device=dev,
        backend=backend,
    )


def cleanup(info: DistInfo) -> None:
    """Leave the process group (a no-op for a single process)."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (a no-op for a single process)."""
    if info.distributed:
        if info.backend == "nccl":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def all_reduce_sum(array: np.ndarray, info: DistInfo) -> np.ndarray:
    """Sum an integer or float array over all ranks (e.g. confusion matrices); identity for one process.

    Args:
        array: The same shape on every rank.
        info: This process's :class:`DistInfo`.

    Returns:
        The elementwise sum over ranks, same dtype as ``array``.
    """
    if not info.distributed:
        return array
    # int64 / float64 keep counts exact; NCCL needs the tensor on this rank's GPU.
    dtype = torch.float64 if np.issubdtype(array.dtype, np.floating) else torch.int64
    tensor = torch.as_tensor(np.ascontiguousarray(array)).to(device=info.device, dtype=dtype)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy().astype(array.dtype, copy=False)


def all_reduce_mean(value: float, info: DistInfo) -> float:
    """Mean of a scalar over ranks (the logged loss); identity for one process."""
    if not info.distributed:
        return float(value)
    total = all_reduce_sum(np.array([value], dtype=np.float64), info)
    return float(total[0]) / info.world_size


def average_tensors_(tensors: list[torch.Tensor], info: DistInfo) -> None:
    """Replace each floating tensor by its mean over ranks, in place (a no-op for one process).

    Used for normalisation running statistics, which DDP leaves rank-local on the CPU (no SyncBatchNorm).
    """
    if not info.distributed:
        return
    for tensor in tensors:
        if tensor.dtype.is_floating_point:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor.div_(info.world_size)


def all_gather_object(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` for one process)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself for one process)."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def shard_indices(n: int, info: DistInfo) -> list[int]:
    """This rank's share of ``range(n)`` for evaluation: strided, no sample twice, none left out.

    Unlike ``DistributedSampler`` this never pads with repeated samples, so summed confusion matrices
    count every pixel exactly once.
    """
    return list(range(info.rank, n, info.world_size))
