"""Training throughput on the CPU at the small synthetic config, and where the time goes.

Usage::

    python bench/train_throughput.py [--config config/train/synthetic_small.yaml] [--steps 12] [--threads 1]

Runs the training step of :class:`causal_tune_ros.training.trainer.Trainer` (same data pipeline, model,
loss and optimizer) for a few steps with the in-memory cache off, so every image is rendered and
augmented as in a first epoch, and prints:

- training images per second (per CPU second of this process, and per wall second);
- the share of time in data generation (synthetic rendering + augmentation + tensor conversion) vs the
  model (forward + backward + optimizer step), as ratios measured in the same run;
- data generation split into rendering and augmentation.

CPU time (``time.process_time``) is the stable figure on a shared machine: other jobs stretch wall time
but not the CPU time this process spends. With ``--threads 1`` CPU time equals single-core time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # torch.set_num_threads(--threads) below sets the pool

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from causal_tune_ros.training.augment import augment
from causal_tune_ros.training.config import load_train_config
from causal_tune_ros.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "train" / "synthetic_small.yaml"))
    parser.add_argument("--steps", type=int, default=12, help="measured optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_train_config(
            args.config,
            [
                *args.overrides,
                f"run.output_dir={tmp}",
                "data.cache=false",  # measure generation, not a cache hit
                "data.num_workers=0",
                "run.device=cpu",
                "run.tensorboard=false",
            ],
        )
        trainer = Trainer(cfg, quiet=True)
        o = cfg.optim
        band = torch.tensor(trainer.band.as_tuple(), dtype=torch.float32)
        batches = trainer._batches(0)
        model = trainer.ddp_model.train()
        cpu = {"data": 0.0, "model": 0.0}
        wall = {"data": 0.0, "model": 0.0}
        for step in range(args.warmup + args.steps):
            measured = step >= args.warmup
            for _ in range(o.grad_accum):
                c0, w0 = time.process_time(), time.perf_counter()
                images, labels = next(batches)
                c1, w1 = time.process_time(), time.perf_counter()
                loss = trainer._loss(model(images, band), labels) / o.grad_accum
                loss.backward()
                if measured:
                    cpu["data"] += c1 - c0
                    wall["data"] += w1 - w0
                    cpu["model"] += time.process_time() - c1
                    wall["model"] += time.perf_counter() - w1
            c2, w2 = time.process_time(), time.perf_counter()
            trainer.optimizer.step()
            trainer.optimizer.zero_grad(set_to_none=True)
            trainer.scheduler.step()
            if measured:
                cpu["model"] += time.process_time() - c2
                wall["model"] += time.perf_counter() - w2

        # Data generation split: rendering (the base data set) vs augmentation, on fresh samples.
        base = trainer.train_samples.base
        params = trainer.augment_params
        n = min(len(base), 12)
        offset = len(base) - n  # samples the loop above has probably not rendered
        render_cpu = aug_cpu = 0.0
        for i in range(offset, offset + n):
            c0 = time.process_time()
            item = base[i]
            c1 = time.process_time()
            augment(item["image"], item["labels"], params, np.random.default_rng(i))
            aug_cpu += time.process_time() - c1
            render_cpu += c1 - c0

    images = args.steps * o.batch_size
    total_cpu, total_wall = cpu["data"] + cpu["model"], wall["data"] + wall["model"]
    crop = "x".join(map(str, cfg.augment.crop_size))
    bb = cfg.model.backbone.overrides
    print(
        f"config {Path(args.config).name}: crop {crop}, batch {o.batch_size}, backbone {bb}, "
        f"threads {args.threads}"
    )
    print(f"measured {args.steps} steps ({images} images) after {args.warmup} warm-up steps")
    print(
        f"training images/s: {images / total_cpu:.2f} per CPU second, "
        f"{images / total_wall:.2f} per wall second"
    )
    print(f"seconds per step: {total_cpu / args.steps:.2f} CPU, {total_wall / args.steps:.2f} wall")
    print(
        f"share of CPU time: data generation {cpu['data'] / total_cpu:.1%}, "
        f"model (forward + backward + step) {cpu['model'] / total_cpu:.1%}; "
        f"data / model = {cpu['data'] / cpu['model']:.2f}"
    )
    print(
        f"share of wall time: data generation {wall['data'] / total_wall:.1%}, "
        f"model {wall['model'] / total_wall:.1%}"
    )
    print(
        f"data generation per image: rendering {render_cpu / n * 1e3:.0f} ms, augmentation "
        f"{aug_cpu / n * 1e3:.0f} ms CPU (rendering / augmentation = {render_cpu / max(aug_cpu, 1e-9):.1f})"
    )
    # With data.cache (the config's setting) every epoch after the first only augments: estimate from the
    # figures above.
    model_per_image = cpu["model"] / images
    aug_per_image = aug_cpu / n
    print(
        f"with data.cache after the first epoch (estimated): data share "
        f"{aug_per_image / (aug_per_image + model_per_image):.1%}, "
        f"{1.0 / (aug_per_image + model_per_image):.2f} images per CPU second"
    )


if __name__ == "__main__":
    main()
