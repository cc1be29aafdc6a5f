"""The pretraining loop and the backbone file it writes."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causal_tune_ros.errors import CheckpointError, DatasetError
from causal_tune_ros.fileio import atomic_path
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.weights import CONFIG_METADATA_KEY
from causal_tune_ros.pretrain.config import PretrainConfig, config_to_dict
from causal_tune_ros.pretrain.data import PretrainScenes, pretrain_scene_seed, render_pretrain_scenes
from causal_tune_ros.pretrain.objective import PretrainNet

#: Metadata key of the pretraining record (config, losses, wall time) in the backbone file.
PRETRAIN_METADATA_KEY = "causal_tune_ros.pretrain"


@dataclass
class PretrainResult:
    """What a pretraining run produced.

    Attributes:
        backbone: The pretrained backbone (float32, eval mode).
        path: File written, or None.
        losses: Mean loss terms of the last logged window.
        render_seconds: Wall time spent rendering the scenes.
        train_seconds: Wall time of the optimisation.
    """

    backbone: DinoV2
    path: Path | None
    losses: dict[str, float]
    render_seconds: float
    train_seconds: float


def build_backbone(cfg: PretrainConfig) -> DinoV2:
    """The randomly initialised backbone of ``cfg`` (seeded by ``backbone.init_seed``)."""
    torch.manual_seed(cfg.backbone.init_seed)
    return DinoV2("custom", **cfg.backbone.overrides())


def _batch(
    scenes: PretrainScenes, idx: np.ndarray, cfg: PretrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clear views, weather views and geometry targets of scenes ``idx``, each pair cropped alike."""
    ch, cw = cfg.data.crop
    h, w = scenes.images.shape[2:4]
    clear, weather, geom = [], [], []
    for i in idx:
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        v = int(rng.integers(1, scenes.images.shape[1])) if scenes.images.shape[1] > 1 else 0
        flip = bool(rng.random() < 0.5)
        views = scenes.images[i, [0, v], y : y + ch, x : x + cw]  # (2, ch, cw, 3)
        g = scenes.targets[i, :, y : y + ch, x : x + cw].astype(np.float32)
        if flip:
            views = views[:, :, ::-1]
            g = g[:, :, ::-1].copy()
            g[1] = -g[1]  # the normal's x component mirrors
        clear.append(views[0])
        weather.append(views[1])
        geom.append(g)

    def to_tensor(arr: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.stack(arr))).permute(0, 3, 1, 2).float().div_(255.0)

    return to_tensor(clear), to_tensor(weather), torch.from_numpy(np.stack(geom))


def scenes_for(cfg: PretrainConfig, log: Callable[[str], None] = print) -> PretrainScenes:
    """The scenes ``cfg.data`` describes: from ``cfg.data.cache`` when it matches, else rendered (and cached).

    Raises:
        DatasetError: A cache file that cannot be read or written.
    """
    d = cfg.data
    cache = Path(d.cache) if d.cache else None
    if cache is not None and cache.is_file():
        try:
            scenes = PretrainScenes.load(cache)
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"cannot read the scene cache {cache}: {exc}") from exc
        expected = [pretrain_scene_seed(d.seed, i) for i in range(d.num_scenes)]
        if scenes.images.shape[2:4] == (d.height, d.width) and scenes.seeds == expected:
            log(f"pretrain: {len(scenes)} scenes from {cache}")
            return scenes
        log(f"pretrain: {cache} holds other scenes; rendering")
    log(f"pretrain: rendering {d.num_scenes} scenes x 5 conditions at {d.height}x{d.width}")
    scenes = render_pretrain_scenes(d.num_scenes, d.height, d.width, seed=d.seed)
    if cache is not None:
        try:
            scenes.save(cache)
        except OSError as exc:
            raise DatasetError(f"cannot write the scene cache {cache}: {exc}") from exc
    return scenes


def _lr(step: int, cfg: PretrainConfig) -> float:
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    t = (step - o.warmup_steps) / max(1, o.steps - o.warmup_steps)
    return o.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def pretrain(
    cfg: PretrainConfig,
    scenes: PretrainScenes | None = None,
    log: Callable[[str], None] = print,
    save: bool = True,
) -> PretrainResult:
    """Pretrain the backbone of ``cfg`` and (optionally) write it.

    Args:
        cfg: The configuration.
        scenes: Pre-rendered scenes (rendered from ``cfg.data`` when None).
        log: Progress sink.
        save: Write ``cfg.output`` (fp16 safetensors, :func:`save_pocket_backbone`).

    Returns:
        The :class:`PretrainResult`.

    Raises:
        CheckpointError: If the output cannot be written.
    """
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    if scenes is None:
        scenes = scenes_for(cfg, log)
    render_seconds = time.perf_counter() - t0

    backbone = build_backbone(cfg)
    torch.manual_seed(cfg.seed)
    net = PretrainNet(backbone, cfg.objective)
    net.train()
    decay = [p for n, p in net.named_parameters() if p.ndim >= 2 and "pos_embed" not in n]
    no_decay = [p for n, p in net.named_parameters() if not (p.ndim >= 2 and "pos_embed" not in n)]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.optim.lr,
        betas=(0.9, 0.95),
    )
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x9E7]))
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(scenes)
    order = rng.permutation(n)
    pos = 0
    window: dict[str, list[float]] = {}
    t1 = time.perf_counter()
    last: dict[str, float] = {}
    for step in range(cfg.optim.steps):
        if pos + cfg.optim.batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos : pos + cfg.optim.batch_size]
        pos += cfg.optim.batch_size
        clear, weather, geom = _batch(scenes, idx, cfg, rng)
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        loss, terms = net.loss(clear, weather, geom, gen)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretrain: non-finite loss at step {step}: {terms}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.grad_clip)
        opt.step()
        for k, v in terms.items():
            window.setdefault(k, []).append(v)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.optim.steps:
            last = {k: float(np.mean(v)) for k, v in window.items()}
            window = {}
            rate = (step + 1) / (time.perf_counter() - t1)
            text = " ".join(f"{k} {v:.4f}" for k, v in last.items())
            log(f"pretrain: step {step + 1}/{cfg.optim.steps} {text} ({rate:.2f} steps/s)")
        if save and cfg.save_every > 0 and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.optim.steps:
            record = _record(cfg, last, render_seconds, time.perf_counter() - t1, step + 1)
            log(f"pretrain: wrote interim {save_pocket_backbone(backbone, cfg.output, record)}")
    train_seconds = time.perf_counter() - t1
    backbone.eval()
    path = None
    if save:
        path = save_pocket_backbone(backbone, cfg.output, _record(cfg, last, render_seconds, train_seconds))
        log(f"pretrain: wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return PretrainResult(backbone, path, last, render_seconds, train_seconds)


def _record(
    cfg: PretrainConfig, losses: dict[str, float], render_s: float, train_s: float, step: int | None = None
) -> dict[str, Any]:
    """The pretraining record stored in the file (``step`` set for an interim file)."""
    return {
        "config": config_to_dict(cfg),
        "step": cfg.optim.steps if step is None else step,
        "complete": step is None,
        "final_losses": losses,
        "render_seconds": round(render_s, 1),
        "train_seconds": round(train_s, 1),
    }


def save_pocket_backbone(backbone: DinoV2, path: str | Path, record: dict[str, Any] | None = None) -> Path:
    """Write a backbone as float16 safetensors in the official DINOv2 layout, with its config in metadata.

    ``DinoV2.from_pretrained(path)`` and a training config's ``model.backbone.weights`` load it (as float32).

    Args:
        backbone: The backbone.
        path: Destination ``.safetensors`` file (parents created; written beside, then renamed).
        record: JSON-able pretraining record stored under :data:`PRETRAIN_METADATA_KEY`.

    Returns:
        The path written.

    Raises:
        CheckpointError: If the file cannot be written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    state = {
        k: v.detach().to("cpu", torch.float16).contiguous()
        for k, v in backbone.state_dict().items()
        if not k.startswith("_")
    }
    metadata = {CONFIG_METADATA_KEY: json.dumps(backbone.config)}
    if record is not None:
        metadata[PRETRAIN_METADATA_KEY] = json.dumps(record)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata=metadata)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc}") from exc
    return path
