"""Frozen-feature probe of a backbone: a linear classifier on clear scenes, mIoU per weather condition.

A cheap stand-in for the Causal-Tune fine-tuning, used to choose the pocket backbone's pretext task. The
backbone stays frozen; its patch tokens at four evenly spaced blocks (layer-normed, concatenated) feed one
linear layer per patch whose logits are upsampled bilinearly to half resolution. It trains on clear
labelled scenes of the ``SyntheticDataset`` ``train`` split and is scored on the ``val`` split in all five
conditions and on the demo's frames (scene seeds 100.., as ``causal-tune demo`` renders them).

    python bench/pocket_probe.py models/pocket/pocket_vit.safetensors
    python bench/pocket_probe.py random:192,6,3      # a random-init backbone (width, depth, heads)
    python bench/pocket_probe.py --time models/pocket/pocket_vit.safetensors   # CPU ms per frame only

``--time`` (run it on a quiet machine) prints the CPU time per 168 x 336 frame of the backbone alone and of
the Causal-Tune segmenter of ``config/train/synthetic_small.yaml`` built on it (one thread), then stops.

Rendered scenes are cached in ``--cache`` (npz) so several backbones are probed on the same pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.pretrain.objective import ObjectiveWeights, PretrainNet
from causal_tune_ros.synthetic import CONDITIONS, render_scene
from causal_tune_ros.training.datasets.synthetic import SyntheticDataset
from causal_tune_ros.training.metrics import ConfusionMatrix

H, W = 168, 336
NUM_CLASSES = 19
DEMO_SEGMENTS = (("clear", 3), ("snow", 6), ("night", 6), ("fog", 3), ("rain", 3))


def render_sets(cache: Path, train_scenes: int, val_scenes: int) -> dict[str, np.ndarray]:
    """Train (clear), val (all conditions) and demo frames, cached in an npz."""
    if cache.is_file():
        with np.load(cache) as data:
            sets = dict(data)
        if len(sets["train_img"]) == train_scenes and len(sets["val_img"]) == val_scenes * 5:
            return sets
    t = time.perf_counter()
    train = SyntheticDataset(train_scenes, "clear", seed=0, height=H, width=W, split="train")
    val = SyntheticDataset(val_scenes * 5, None, seed=0, height=H, width=W, split="val")
    items_t = [train[i] for i in range(len(train))]
    items_v = [val[i] for i in range(len(val))]
    demo = [(c, render_scene(100 + k, c, H, W)) for c, n in DEMO_SEGMENTS for k in range(n)]
    sets = {
        "train_img": np.stack([it["image"] for it in items_t]),
        "train_lbl": np.stack([it["labels"] for it in items_t]),
        "val_img": np.stack([it["image"] for it in items_v]),
        "val_lbl": np.stack([it["labels"] for it in items_v]),
        "val_cond": np.array([it["condition"] for it in items_v]),
        "demo_img": np.stack([f.image for _, f in demo]),
        "demo_lbl": np.stack([f.labels for _, f in demo]),
        "demo_cond": np.array([c for c, _ in demo]),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **sets)
    print(f"probe: rendered sets in {time.perf_counter() - t:.0f} s -> {cache}")
    return sets


def load_backbone(spec: str) -> DinoV2:
    if spec.startswith("random:"):
        width, depth, heads, *ratio = (float(v) for v in spec.split(":", 1)[1].split(","))
        torch.manual_seed(0)
        overrides = {"embed_dim": int(width), "depth": int(depth), "num_heads": int(heads), "patch_size": 14}
        return DinoV2("custom", mlp_ratio=ratio[0] if ratio else 4.0, **overrides).eval()
    return DinoV2.from_pretrained(spec).eval()


@torch.no_grad()
def features(net: PretrainNet, images: np.ndarray, batch: int = 16) -> torch.Tensor:
    """(N, L*C, gh, gw) float16 frozen features."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).permute(0, 3, 1, 2).float() / 255.0
        feats = net.features(x)
        f = torch.cat([F.layer_norm(t, t.shape[-1:]) for t in feats], dim=-1)
        gh, gw = H // 14, W // 14
        out.append(f.transpose(1, 2).reshape(len(x), -1, gh, gw).half())
    return torch.cat(out)


def half_labels(labels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(labels[:, ::2, ::2].astype(np.int64))


def logits_of(lin: torch.nn.Module, f: torch.Tensor) -> torch.Tensor:
    return F.interpolate(lin(f.float()), size=(H // 2, W // 2), mode="bilinear", align_corners=False)


def probe(
    spec: str, sets: dict[str, np.ndarray], steps: int, seed: int = 0, heads: tuple[str, ...] = ("linear",)
) -> dict[str, dict[str, float]]:
    backbone = load_backbone(spec)
    net = PretrainNet(backbone, ObjectiveWeights()).eval()
    t = time.perf_counter()
    ft = features(net, sets["train_img"])
    fv = features(net, sets["val_img"])
    fd = features(net, sets["demo_img"])
    print(f"probe: features in {time.perf_counter() - t:.0f} s ({ft.shape[1]} channels)")
    yt = half_labels(sets["train_lbl"])
    results: dict[str, dict[str, float]] = {}
    for head in heads:
        torch.manual_seed(seed)
        c = ft.shape[1]
        if head == "linear":
            lin: torch.nn.Module = torch.nn.Conv2d(c, NUM_CLASSES, 1)
        else:  # a small non-linear head: 1x1 MLP with 256 hidden channels
            lin = torch.nn.Sequential(
                torch.nn.Conv2d(c, 256, 1), torch.nn.GELU(), torch.nn.Conv2d(256, NUM_CLASSES, 1)
            )
        opt = torch.optim.AdamW(lin.parameters(), lr=3e-3, weight_decay=1e-4)
        g = torch.Generator().manual_seed(seed)
        for step in range(steps):
            idx = torch.randint(0, len(ft), (16,), generator=g)
            loss = F.cross_entropy(logits_of(lin, ft[idx]), yt[idx], ignore_index=255)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for group in opt.param_groups:
                group["lr"] = 3e-3 * (1 - (step + 1) / steps) ** 0.9
        with torch.no_grad():
            for name, f, lbl, cond in (
                ("val", fv, sets["val_lbl"], sets["val_cond"]),
                ("demo", fd, sets["demo_lbl"], sets["demo_cond"]),
            ):
                pred = torch.cat([logits_of(lin, f[i : i + 32]).argmax(1) for i in range(0, len(f), 32)])
                y = half_labels(lbl)
                row = {}
                for cnd in CONDITIONS:
                    sel = torch.from_numpy(cond == cnd)
                    row[cnd] = 100 * ConfusionMatrix(NUM_CLASSES).update(pred[sel], y[sel]).miou()
                row["adverse"] = float(np.mean([row[c] for c in CONDITIONS if c != "clear"]))
                key = name if head == "linear" else f"{name}/{head}"
                results[key] = {k: round(v, 1) for k, v in row.items()}
    return results


def time_frames(spec: str, frames: int = 20) -> None:
    """Print CPU ms per 168 x 336 frame (batch 1, one thread): the backbone, then a segmenter on it."""
    torch.set_num_threads(1)  # thread_time counts this thread only
    from causal_tune_ros.training.config import load_train_config
    from causal_tune_ros.training.trainer import build_model

    overrides = ["model.backbone.overrides={}", f"model.backbone.weights={spec}"]
    model = build_model(load_train_config("config/train/synthetic_small.yaml", overrides).model, NUM_CLASSES)
    model.eval()
    x = torch.rand(1, 3, H, W)
    band = torch.tensor([0.2, 0.7])
    norm = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    with torch.inference_mode():
        for name, fn in (("backbone", lambda: model.backbone(norm)), ("segmenter", lambda: model(x, band))):
            fn()
            t = time.thread_time()
            for _ in range(frames):
                fn()
            print(f"{spec} {name}: {1000 * (time.thread_time() - t) / frames:.1f} CPU ms per frame")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "backbones", nargs="+", help="backbone files/folders, or random:WIDTH,DEPTH,HEADS[,MLP]"
    )
    parser.add_argument("--cache", default="/tmp/pocket_probe_sets.npz", help="npz cache of rendered scenes")
    parser.add_argument("--train-scenes", type=int, default=300)
    parser.add_argument("--val-scenes", type=int, default=20, help="per condition")
    parser.add_argument("--steps", type=int, default=600, help="probe optimiser steps")
    parser.add_argument("--heads", default="linear", help="probe heads, comma-separated: linear, mlp")
    parser.add_argument("--json", default=None, help="append results as JSON lines here")
    parser.add_argument("--time", action="store_true", help="only time inference per frame (quiet machine)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.time:
        for spec in args.backbones:
            time_frames(spec)
        return
    sets = render_sets(Path(args.cache), args.train_scenes, args.val_scenes)
    for spec in args.backbones:
        res = probe(spec, sets, args.steps, heads=tuple(args.heads.split(",")))
        for name, row in res.items():
            cells = " ".join(f"{k} {v:5.1f}" for k, v in row.items())
            print(f"{spec} [{name}] {cells}")
        if args.json:
            with open(args.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"backbone": spec, **res}) + "\n")


if __name__ == "__main__":
    main()
