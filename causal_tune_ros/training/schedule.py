"""Time in a training run: the learning-rate schedule and the remaining-time estimate."""

from __future__ import annotations

import time


class PolyWarmup:
    """LR factor of step ``s``: linear warmup, then ``(1 - s / total) ** power``, floored at ``min_ratio``.

    A picklable callable for ``LambdaLR`` (its state then round-trips through ``state_dict``).
    """

    def __init__(self, total: int, power: float, warmup: int, warmup_ratio: float, min_ratio: float) -> None:
        self.total = total
        self.power = power
        self.warmup = warmup
        self.warmup_ratio = warmup_ratio
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        progress = min(step, self.total) / self.total
        factor = (1.0 - self.min_ratio) * (1.0 - progress) ** self.power + self.min_ratio
        if step < self.warmup:
            # mmcv's linear warmup: from warmup_ratio to 1 over `warmup` steps, times the poly factor.
            factor *= 1.0 - (1.0 - step / self.warmup) * (1.0 - self.warmup_ratio)
        return factor


class EtaEstimator:
    """Remaining time of a run, from its recent step times.

    The first step after a start or resume is left out: it pays for memory allocation and first-call
    set-up, so it says little about the steps after it. Later step times are
    smoothed exponentially (as tqdm's ``smoothing`` does), so the estimate follows the current speed
    rather than the average since the start.

    Args:
        smoothing: Weight of the newest step time, in (0, 1].

    Raises:
        ValueError: If ``smoothing`` is outside (0, 1].
    """

    def __init__(self, smoothing: float = 0.05) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.smoothing = smoothing
        self.seconds_per_step: float | None = None
        self._last: float | None = None

    def tick(self, now: float | None = None) -> None:
        """Record the end of one optimizer step (``now`` defaults to ``time.perf_counter()``)."""
        now = time.perf_counter() if now is None else now
        if self._last is not None:
            dt = now - self._last
            avg = self.seconds_per_step
            self.seconds_per_step = dt if avg is None else self.smoothing * dt + (1 - self.smoothing) * avg
        self._last = now

    def remaining(self, steps_left: int) -> float | None:
        """Seconds for ``steps_left`` more steps, or ``None`` before the second step has ended."""
        return None if self.seconds_per_step is None else self.seconds_per_step * max(steps_left, 0)
