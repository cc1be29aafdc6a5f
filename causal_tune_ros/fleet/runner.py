"""The fleet driver: which bags need work, hand them to the workers, retry the lost ones, commit, index.

One bag is one unit of work; bags go to whichever worker is free, largest first. When a worker's process
or node dies, its bag goes back to the front of the queue (a bounded number of times) and Ray restarts the
worker. A bag that fails on its own (corrupt, unreadable) is reported and not retried. Finished bags are
committed by the driver alone (see :mod:`causal_tune_ros.fleet.state`), so two attempts never race.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from causal_tune_ros.band import Band
from causal_tune_ros.errors import CausalTuneError, ConfigError, FleetError
from causal_tune_ros.fleet import cluster, index, state
from causal_tune_ros.fleet.extra import require
from causal_tune_ros.fleet.inputs import BagJob, find_bags
from causal_tune_ros.fleet.progress import FleetProgress
from causal_tune_ros.fleet.summary import DONE, FAILED, KEPT, SKIPPED, BagResult, FleetSummary
from causal_tune_ros.fleet.worker import ModelSettings, WorkerConfig
from causal_tune_ros.replay.replayer import ReplayOptions, is_camera_topic

LOG = logging.getLogger(__name__)

#: Index schema metadata key listing the parts it was built from.
_INDEX_SOURCES = b"causal_tune_fleet_parts"


@dataclass
class FleetSettings:
    """How to run a fleet.

    Attributes:
        model: How each worker builds its pipeline.
        options: Replay options for every bag (``progress``/``overwrite``/``video`` are set by the fleet).
        presets: Weather condition -> band (default: the packaged presets).
        workers: Workers to start (``None``: as many as the cluster holds).
        address: Ray cluster address (``None``: a local Ray instance).
        resources: CPUs / GPUs per worker.
        retries: How many times a bag is retried after its worker died (then it is reported failed).
        overwrite: Redo bags whose outputs exist but do not match this run (other settings, changed input,
            or not written by a fleet run).
        progress: Progress bar / log lines and one line per finished bag.
        poll_interval: Seconds between progress polls of the workers.
    """

    model: ModelSettings = field(default_factory=ModelSettings)
    options: ReplayOptions = field(default_factory=ReplayOptions)
    presets: dict[str, Band] | None = None
    workers: int | None = None
    address: str | None = None
    resources: cluster.Resources = field(default_factory=cluster.Resources)
    retries: int = 2
    overwrite: bool = False
    progress: bool = True
    poll_interval: float = 0.5

    def output_settings(self, presets: dict[str, Band]) -> dict[str, Any]:
        """The settings that shape the outputs (their hash decides whether a done bag is current).

        Device, threads, workers and I/O threads change the speed, not the outputs, and are left out.

        Raises:
            ConfigError: If the checkpoint given does not exist.
        """
        from causal_tune_ros.replay.command import default_checkpoint

        ckpt = Path(self.model.checkpoint) if self.model.checkpoint else default_checkpoint()
        if not ckpt.is_file():
            raise ConfigError(f"checkpoint {ckpt} does not exist")
        st = ckpt.stat()
        o = self.options
        return {
            "checkpoint": {"path": str(ckpt.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns},
            "model": {
                k: v for k, v in asdict(self.model).items() if k not in ("checkpoint", "device", "threads")
            },
            "options": {
                "topics": sorted(o.topics) if o.topics else None,
                "weather": o.weather,
                "weather_topic": o.weather_topic,
                "weather_every": o.weather_every,
                "band": o.band.as_tuple() if o.band else None,
                "max_frames": o.max_frames,
                "every": o.every,
                "overlay": o.overlay,
                "copy_input": o.copy_input,
                "storage": o.storage,
            },
            "presets": {k: v.as_tuple() for k, v in sorted(presets.items())},
        }


@dataclass(frozen=True)
class WorkerState:
    """A worker as the last progress poll saw it.

    Attributes:
        index: Position in the pool.
        pid: Its process id (``None`` while a replacement worker starts).
        host: Its host name.
        bag: The bag it runs (``None`` when idle).
        frames: Frames of that bag done so far.
    """

    index: int
    pid: int | None
    host: str
    bag: str | None
    frames: int


#: Called after every progress poll with the workers' states (monitoring; runs in the driver).
PollCallback = Callable[[list[WorkerState]], None]


def expected_frames(job: BagJob, options: ReplayOptions) -> int:
    """Frames the replay will try on ``job`` (from the bag's metadata; 0 if it cannot be opened)."""
    from causal_tune_ros.bags import BagReader

    try:
        with BagReader(job.path) as bag:
            topics = bag.image_topics()
            if options.topics:
                topics = [t for t in topics if t in set(options.topics)]
            else:
                topics = [t for t in topics if is_camera_topic(t)]
            total = sum(math.ceil(bag.count(t) / options.every) for t in topics)
    except CausalTuneError:
        return 0
    return min(total, options.max_frames) if options.max_frames else total


def run_fleet(
    inputs: Sequence[str | Path],
    out: str | Path,
    settings: FleetSettings,
    on_poll: PollCallback | None = None,
) -> FleetSummary:
    """Segment every bag of ``inputs`` into ``out`` on a pool of Ray workers and index their frames.

    Bags already complete in ``out`` with the same settings are skipped. Ctrl-C stops the workers, keeps
    what was committed, writes the index and returns a summary marked ``interrupted``; the same call
    resumes.

    Args:
        inputs: Bag folders, bare bag files, or folders holding bags.
        out: Output folder (created).
        settings: :class:`FleetSettings`.
        on_poll: Called with the workers' states after each progress poll.

    Returns:
        The :class:`FleetSummary` (failed bags are in it; they do not raise).

    Raises:
        FleetError: The ``fleet`` extra is missing, no bag was found, names collide, the output folder is
            in use or cannot be written, Ray cannot start, or the workers cannot load the model.
        ConfigError: Bad settings (missing checkpoint, unknown weather ...).
    """
    started = time.perf_counter()
    require("ray")
    require("pyarrow")
    from causal_tune_ros.weather import CONDITIONS, load_band_presets

    weather = settings.options.weather
    if weather not in ("auto", "topic", *CONDITIONS):
        raise ConfigError(
            f"unknown weather {weather!r}; expected auto, topic or one of {', '.join(CONDITIONS)}"
        )
    presets = settings.presets if settings.presets is not None else load_band_presets()
    settings_hash = state.fingerprint(settings.output_settings(presets))
    layout = state.Layout(Path(out).absolute())
    if layout.out.exists() and not layout.out.is_dir():
        raise FleetError(f"output {layout.out} exists and is not a folder")
    jobs = find_bags(inputs, exclude=layout.out)
    summary = FleetSummary(out=layout.out, bags=[BagResult(name=j.name, input=str(j.path)) for j in jobs])
    with state.locked(layout):
        todo: list[tuple[BagJob, BagResult]] = []
        for i, (job, result) in enumerate(zip(jobs, list(summary.bags), strict=True)):
            found, meta, note = state.bag_state(layout, job, settings_hash)
            if found == state.DONE and meta is not None:
                done = BagResult.from_dict(meta.get("summary", {}))
                done.status, done.input = SKIPPED, str(job.path)
                summary.bags[i] = done
            elif found in (state.STALE, state.FOREIGN) and not settings.overwrite:
                result.status, result.note = KEPT, note
            else:
                todo.append((job, result))
        try:
            if todo:
                _Scheduler(layout, todo, settings, presets, settings_hash, summary, on_poll).run()
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            summary.index_rows = update_index(layout)
            summary.seconds = time.perf_counter() - started
            try:
                _write_text(layout.summary, summary.to_json())
            except OSError as exc:
                LOG.warning("cannot write %s: %s", layout.summary, exc)
    return summary


def update_index(layout: state.Layout) -> int:
    """Rebuild ``OUT/index.parquet`` from the complete bags' parts, unless it is current.

    Returns:
        Rows in the index.
    """
    pq = require("pyarrow.parquet")
    parts = state.complete_parts(layout)
    sources = [[p.name, p.stat().st_mtime_ns] for p in parts]
    if layout.index.exists():
        try:
            meta = pq.read_schema(layout.index).metadata or {}
            if json.loads(meta.get(_INDEX_SOURCES, b"null")) == sources:
                return int(pq.read_metadata(layout.index).num_rows)
        except (OSError, ValueError):
            pass  # unreadable: rebuilt below
    table = index.concat(parts)
    table = table.replace_schema_metadata({_INDEX_SOURCES: json.dumps(sources).encode()})
    index.write_table(table, layout.index)
    return int(table.num_rows)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)


@dataclass
class _Attempt:
    worker: int
    job: BagJob
    result: BagResult
    folder: Path


class _Scheduler:
    """The driver loop of one run over the bags that need work."""

    def __init__(
        self,
        layout: state.Layout,
        todo: list[tuple[BagJob, BagResult]],
        settings: FleetSettings,
        presets: dict[str, Band],
        settings_hash: str,
        summary: FleetSummary,
        on_poll: PollCallback | None,
    ) -> None:
        self.layout = layout
        self.settings = settings
        self.presets = presets
        self.settings_hash = settings_hash
        self.summary = summary
        self.on_poll = on_poll
        options = settings.options
        with ThreadPoolExecutor(max_workers=8) as pool:
            counts = list(pool.map(lambda jr: expected_frames(jr[0], options), todo))
        self.expected = {jr[0].name: n for jr, n in zip(todo, counts, strict=True)}
        # Largest bags first: the last bags to finish are then the short ones.
        self.pending = deque(sorted(todo, key=lambda jr: -self.expected[jr[0].name]))
        self.total_bags = len(todo)

    def run(self) -> None:
        ray = require("ray")
        s = self.settings
        options = ReplayOptions(**{**asdict(s.options), "progress": False, "overwrite": False, "video": None})
        self.config = WorkerConfig(model=s.model, options=options, presets=self.presets)
        connected = cluster.connect(s.address, s.workers, s.resources)
        actors: list[Any] = []
        progress: FleetProgress | None = None
        try:
            count = min(cluster.pool_size(s.workers, s.resources), len(self.pending))
            actors = [cluster.start_worker(self.config, s.resources) for _ in range(count)]
            try:
                infos = ray.get([a.describe.remote() for a in actors])
            except Exception as exc:  # a worker process that cannot even start
                raise FleetError(f"the fleet workers could not start: {_reason(exc)}") from None
            errors = {i["error"] for i in infos if i["error"]}
            if errors:
                raise FleetError(f"the fleet workers could not load the model: {'; '.join(sorted(errors))}")
            for warning in {i["warning"] for i in infos if i["warning"]}:
                print(f"causal-tune fleet: warning: {warning}", file=sys.stderr)
            self.summary.workers = count
            # Created once the workers are ready, so that rate and ETA measure the work.
            progress = FleetProgress(sum(self.expected.values()), self.total_bags, enabled=s.progress)
            self._loop(ray, actors, infos, progress)
        finally:
            if progress is not None:
                progress.close()
            cluster.stop_workers(actors)
            if connected:
                cluster.disconnect()

    def _loop(
        self, ray: Any, actors: list[Any], infos: list[dict[str, Any]], progress: FleetProgress
    ) -> None:
        """Hand out bags until none is left; ``actors`` is updated in place when a worker is replaced."""
        s = self.settings
        died = cluster.worker_died_errors()
        idle = deque(range(len(actors)))
        running: dict[Any, _Attempt] = {}
        polls: dict[int, Any] = {}
        live: dict[int, int] = {}
        workers: dict[int, tuple[int | None, str]] = {
            i: (int(info["pid"]), str(info["host"])) for i, info in enumerate(infos)
        }
        deaths_in_row = dict.fromkeys(range(len(actors)), 0)
        finished_frames = 0
        work_started = time.perf_counter()
        try:
            while self.pending or running:
                while self.pending and idle:
                    job, result = self.pending.popleft()
                    w = idle.popleft()
                    result.attempts += 1
                    folder = self.layout.new_attempt(job.name)
                    meta = {"settings": self.settings_hash, "input": job.identity, "format": 1}
                    ref = actors[w].process.remote(job, str(folder), meta)
                    running[ref] = _Attempt(w, job, result, folder)
                if not running:
                    break
                ready, _ = ray.wait(list(running), num_returns=1, timeout=s.poll_interval)
                if ready:
                    ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
                for ref in ready:
                    attempt = running.pop(ref)
                    w = attempt.worker
                    polls.pop(w, None)
                    frames = live.pop(w, 0)
                    try:
                        outcome = ray.get(ref)
                    except died as exc:
                        self.summary.worker_deaths += 1
                        deaths_in_row[w] += 1
                        shutil.rmtree(attempt.folder, ignore_errors=True)
                        finished_frames += frames
                        progress.add_total(frames)
                        self._lost(attempt, exc, progress)
                        # A fresh worker in its place (Ray puts it wherever there is room), unless this
                        # slot keeps dying: then it gets no more bags.
                        cluster.stop_workers([actors[w]])
                        if deaths_in_row[w] <= s.retries:
                            actors[w] = cluster.start_worker(self.config, s.resources)
                            workers[w] = (None, workers[w][1])
                            idle.append(w)  # other idle workers go first
                        else:
                            progress.write(
                                f"fleet: worker {w} died {deaths_in_row[w]} times in a row; retired"
                            )
                        continue
                    except Exception as exc:  # an unexpected error in the worker (a bug): report it
                        shutil.rmtree(attempt.folder, ignore_errors=True)
                        outcome = BagResult(name=attempt.job.name, status=FAILED, error=_reason(exc))
                    deaths_in_row[w] = 0
                    finished_frames += outcome.rows if outcome.status == DONE else frames
                    self._finish(attempt, outcome, progress)
                    idle.append(w)
                if not idle and not running and self.pending:
                    for _, result in self.pending:
                        result.status, result.error = FAILED, "no worker left (they kept dying)"
                    self.pending.clear()
                self._poll(ray, actors, running, polls, live, workers)
                done = sum(b.status in (DONE, FAILED) for b in self.summary.bags if b.attempts)
                failed = sum(b.status == FAILED for b in self.summary.bags if b.attempts)
                progress.set(finished_frames + sum(live.values()), done, failed)
        finally:
            self.summary.work_seconds = time.perf_counter() - work_started

    def _lost(self, attempt: _Attempt, exc: BaseException, progress: FleetProgress) -> None:
        result = attempt.result
        if result.attempts <= self.settings.retries:
            self.pending.appendleft((attempt.job, result))
            progress.write(
                f"fleet: {result.name}: its worker died ({_reason(exc)}); "
                f"retrying (attempt {result.attempts + 1} of at most {self.settings.retries + 1})"
            )
        else:
            result.status = FAILED
            result.error = f"its worker died on each of {result.attempts} attempts; last: {_reason(exc)}"
            progress.write(f"fleet: {result.line()}")

    def _finish(self, attempt: _Attempt, outcome: BagResult, progress: FleetProgress) -> None:
        result = attempt.result
        attempts = result.attempts
        for name in result.__dataclass_fields__:
            if name not in ("attempts", "input"):
                setattr(result, name, getattr(outcome, name))
        result.attempts = attempts
        if outcome.status == DONE:
            try:
                state.commit(self.layout, result.name, attempt.folder, overwrite=self.settings.overwrite)
            except FleetError as exc:
                result.status, result.error = FAILED, str(exc)
        else:
            result.status = FAILED
            shutil.rmtree(attempt.folder, ignore_errors=True)
        result.attempt = None
        progress.write(f"fleet: {result.line()}")

    def _poll(
        self,
        ray: Any,
        actors: list[Any],
        running: dict[Any, _Attempt],
        polls: dict[int, Any],
        live: dict[int, int],
        workers: dict[int, tuple[int | None, str]],
    ) -> None:
        """Ask busy workers how far they are (non-blocking: answers are read on a later round)."""
        busy = {a.worker: a for a in running.values()}
        for w in busy:
            if w not in polls:
                polls[w] = actors[w].progress.remote()
        if polls:
            answered, _ = ray.wait(list(polls.values()), num_returns=len(polls), timeout=0)
            answered_set = set(answered)
            for w in [w for w, ref in polls.items() if ref in answered_set]:
                ref = polls.pop(w)
                try:
                    bag, frames, pid, host = ray.get(ref)
                except Exception:  # the worker died meanwhile: its task reports it
                    continue
                workers[w] = (int(pid), str(host))
                if w in busy and bag == busy[w].job.name:
                    live[w] = int(frames)
        if self.on_poll is not None:
            states = [
                WorkerState(
                    index=w,
                    pid=pid,
                    host=host,
                    bag=busy[w].job.name if w in busy else None,
                    frames=live.get(w, 0),
                )
                for w, (pid, host) in sorted(workers.items())
            ]
            self.on_poll(states)


def _reason(exc: BaseException) -> str:
    """A one-paragraph reason from a (Ray-wrapped) exception: the innermost message, no traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return _reason(cause)
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
