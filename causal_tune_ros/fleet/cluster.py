"""Ray: start a light local instance or join a cluster, size the pool, start the worker actors.

Workers are Ray actors of :class:`~causal_tune_ros.fleet.worker.BagProcessor`, so each keeps its model
loaded for life. Ray neither restarts them nor retries their calls (``max_restarts=0``,
``max_task_retries=0``): when a worker's process or node dies, the driver starts a replacement actor
(which Ray places wherever there is room) and puts the bag back in the queue itself, so attempts are
counted and bounded in one place. (A Ray-restarted actor refuses calls while it restarts, which would
spend the bag's attempts on nothing.) Each actor runs two calls at a time (``max_concurrency=2``): the
bag, and the driver's progress polls.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from causal_tune_ros.errors import FleetError
from causal_tune_ros.fleet.extra import require
from causal_tune_ros.fleet.worker import BagProcessor, WorkerConfig

LOG = logging.getLogger(__name__)

#: Object store of a local instance: the driver and workers pass only paths and small results.
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class Resources:
    """What one worker asks Ray for.

    Attributes:
        cpus: CPUs per worker (also its inference threads unless ``--threads`` says otherwise).
        gpus: GPUs per worker; fractions share a GPU between workers (0: CPU only).
    """

    cpus: float = 1.0
    gpus: float = 0.0


def connect(address: str | None, workers: int | None, resources: Resources) -> bool:
    """Make sure this process is connected to Ray.

    Args:
        address: A cluster address (``ray://host:10001``, ``host:6379`` or ``auto``); ``None`` starts a
            local instance sized for the workers (no dashboard, small object store).
        workers: Workers wanted (sizes a local instance; ``None``: one per CPU).
        resources: Per worker.

    Returns:
        Whether this call connected (the caller then disconnects with :func:`disconnect`); ``False``
        when Ray was already initialised in this process.

    Raises:
        FleetError: Ray is not installed or cannot start / reach the cluster.
    """
    ray = require("ray")
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            cpus = os.cpu_count() or 1
            if workers:
                cpus = max(cpus, int(workers * resources.cpus + 0.999))
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                **kwargs,
            )
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError ... from Ray
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise FleetError(f"cannot start or reach {where}: {exc}") from exc
    return True


def disconnect() -> None:
    """Disconnect from Ray (a local instance this process started stops with it)."""
    ray = require("ray")
    if ray.is_initialized():
        ray.shutdown()


def pool_size(workers: int | None, resources: Resources) -> int:
    """Workers to start: ``workers``, capped by what the cluster can hold at once.

    Raises:
        FleetError: If the cluster cannot hold a single worker.
    """
    ray = require("ray")
    total = ray.cluster_resources()
    fits = int(total.get("CPU", 0) // resources.cpus) if resources.cpus > 0 else 1 << 30
    if resources.gpus > 0:
        fits = min(fits, int(total.get("GPU", 0) // resources.gpus))
    if fits < 1:
        raise FleetError(
            f"the Ray cluster cannot hold one worker ({resources.cpus:g} CPU, {resources.gpus:g} GPU "
            f"each); it has {total.get('CPU', 0):g} CPU and {total.get('GPU', 0):g} GPU"
        )
    if workers is None:
        return fits
    if workers > fits:
        LOG.warning("only %d workers fit in the Ray cluster (asked for %d)", fits, workers)
    return max(1, min(workers, fits))


def start_worker(config: WorkerConfig, resources: Resources) -> Any:
    """Start one worker actor (not waiting for its model to load; calls queue until it has).

    Returns:
        The actor handle.
    """
    ray = require("ray")
    actor_cls = ray.remote(BagProcessor).options(
        num_cpus=resources.cpus,
        num_gpus=resources.gpus,
        max_restarts=0,
        max_task_retries=0,
        max_concurrency=2,
    )
    return actor_cls.remote(config)


def worker_died_errors() -> tuple[type[BaseException], ...]:
    """Ray exceptions meaning the worker's process or node died (the bag is worth retrying)."""
    exc = require("ray.exceptions")
    names = (
        "RayActorError",
        "ActorDiedError",
        "ActorUnavailableError",
        "WorkerCrashedError",
        "NodeDiedError",
        "ObjectLostError",
        "OwnerDiedError",
        "LocalRayletDiedError",
    )
    return tuple(getattr(exc, n) for n in names if isinstance(getattr(exc, n, None), type))


def stop_workers(actors: list[Any]) -> None:
    """Kill the actors now (their running bags are abandoned)."""
    ray = require("ray")
    for actor in actors:
        try:
            ray.kill(actor, no_restart=True)
        except Exception as exc:  # already dead, Ray shut down ...
            LOG.debug("could not kill a worker: %s", exc)
