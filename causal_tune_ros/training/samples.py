"""Training data: data sets built from the config, an optional in-memory cache, augmented samples, and
the micro-batches of a run from any step on (same order on every rank and after a resume).

Each sample's augmentation comes from a generator seeded by ``(seed, epoch, index)`` and the order from
``DistributedSampler(seed, epoch)``, so a resumed run replays exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from causal_tune_ros.errors import ConfigError, DatasetError
from causal_tune_ros.progress import format_duration, progress_bar
from causal_tune_ros.training.augment import AugmentParams, augment, pad_pair, padded_size
from causal_tune_ros.training.config import AugmentConfig, DatasetConfig, TrainConfig
from causal_tune_ros.training.distributed import DistInfo
from causal_tune_ros.training.run_state import emit


def build_dataset_from_config(cfg: DatasetConfig, where: str) -> Any:
    """``build_dataset(name, root, split, **options)`` with errors naming the config key.

    Raises:
        ConfigError: Options the reader does not accept, or an unknown data set name.
        DatasetError: A missing folder or bad file (the reader's message).
    """
    from causal_tune_ros.training.datasets import build_dataset

    try:
        return build_dataset(cfg.name, cfg.root, cfg.split, **cfg.options)
    except TypeError as exc:
        raise ConfigError(f"{where}: bad options for data set {cfg.name!r}: {exc}") from exc
    except (ConfigError, DatasetError) as exc:
        raise type(exc)(f"{where}: {exc}") from exc


class CachedDataset:
    """Memoises a data set's items (base augmentation still happens per epoch on top of it).

    Args:
        base: Any sized, indexable data set; items are kept as returned.
    """

    def __init__(self, base: Any) -> None:
        self.base = base
        self._items: dict[int, Any] = {}
        #: Items ``__getitem__`` had to load (``fill`` does not count).
        self.misses = 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        item = self._items.get(index)
        if item is None:
            self.misses += 1
            item = self._items[index] = self.base[index]
        return item

    def missing(self, indices: Iterable[int]) -> list[int]:
        """The ones of ``indices`` not cached yet, in order, without repeats."""
        return [i for i in dict.fromkeys(int(i) for i in indices) if i not in self._items]

    def fill(self, indices: Iterable[int]) -> None:
        """Load ``indices`` into the cache now (items already cached are kept)."""
        for i in self.missing(indices):
            self._items[i] = self.base[i]


class TrainingSamples(Dataset):
    """Training view of a data set: augmented, padded crops as tensors.

    Indexed by ``(epoch, index)`` (what :class:`EpochSampler` yields): the augmentation generator is
    seeded by ``(seed, epoch, index)``, so a sample looks the same in every worker, on every rank and
    after a resume.

    Args:
        base: Items ``dict(image=(H, W, 3) uint8 RGB, labels=(H, W) uint8, ...)``.
        params: Augmentation settings.
        seed: Run seed.
        pad_multiple: Crops are padded (image 0, label ignore) to sides that are multiples of this.
    """

    def __init__(self, base: Any, params: AugmentParams, seed: int, pad_multiple: int = 14) -> None:
        self.base = base
        self.params = params
        self.seed = int(seed)
        self.pad_to = padded_size(params.crop_size, pad_multiple)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key
        item = self.base[index]
        try:
            image, labels = np.asarray(item["image"]), np.asarray(item["labels"])
        except (KeyError, TypeError) as exc:
            raise DatasetError(f"training sample {index}: expected dict(image, labels), got {exc}") from exc
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, index]))
        try:
            image, labels = augment(image, labels, self.params, rng)
        except ValueError as exc:
            raise DatasetError(f"training sample {index}: {exc}") from exc
        image, labels = pad_pair(image, labels, self.pad_to, self.params.ignore_index)
        # uint8 across the worker boundary (4x less than float); converted on the device.
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(labels.copy())


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` from a ``DistributedSampler`` epoch, skipping the first ``skip`` indices.

    Args:
        sampler: The distributed sampler (its ``set_epoch`` is called here).
        epoch: The epoch to draw.
        skip: Indices already consumed (resume inside an epoch).
    """

    def __init__(self, sampler: DistributedSampler, epoch: int, skip: int = 0) -> None:
        self.sampler = sampler
        self.epoch = epoch
        self.skip = skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        self.sampler.set_epoch(self.epoch)
        for pos, index in enumerate(self.sampler):
            if pos >= self.skip:
                yield self.epoch, int(index)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def worker_init(_: int) -> None:
    # Workers render / decode in parallel already; nested thread pools only oversubscribe the cores.
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def augment_params(cfg: AugmentConfig, ignore_index: int) -> AugmentParams:
    """The :class:`AugmentParams` the ``augment`` section describes (labels padded with ``ignore_index``)."""
    return AugmentParams(
        crop_size=tuple(cfg.crop_size),
        base_size=None if cfg.base_size is None else tuple(cfg.base_size),
        scale_range=tuple(cfg.scale_range),
        cat_max_ratio=cfg.cat_max_ratio,
        hflip_prob=cfg.hflip_prob,
        photometric=cfg.photometric,
        brightness_delta=cfg.brightness_delta,
        contrast_range=tuple(cfg.contrast_range),
        saturation_range=tuple(cfg.saturation_range),
        hue_delta=cfg.hue_delta,
        ignore_index=ignore_index,
        short_edge=None if cfg.short_edge is None else tuple(cfg.short_edge),
        max_long_edge=cfg.max_long_edge,
    )


class TrainBatches:
    """The micro-batches one rank trains on, epoch after epoch, from any point of the run.

    Args:
        samples: The training view of the data set.
        dist: This process's placement (the sampler draws this rank's share).
        micro_batch: Images per micro-batch on this rank.
        seed: Run seed (data order).
        num_workers: DataLoader worker processes.
        device: Where batches are moved (pinned memory on CUDA).

    Raises:
        DatasetError: Fewer samples than one micro-batch per process.
    """

    def __init__(
        self,
        samples: TrainingSamples,
        dist: DistInfo,
        micro_batch: int,
        seed: int,
        num_workers: int,
        device: torch.device,
    ) -> None:
        self.samples = samples
        self.micro_batch = micro_batch
        self.seed = seed
        self.num_workers = num_workers
        self.device = device
        self.sampler = DistributedSampler(
            samples, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=seed, drop_last=True
        )
        #: Micro-batches per epoch on this rank.
        self.per_epoch = len(self.sampler) // micro_batch
        if self.per_epoch == 0:
            raise DatasetError(
                f"data.train has {len(samples)} samples: too few for {dist.world_size} process(es) x "
                f"micro-batch {micro_batch}"
            )

    def batches(self, start_micro: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Micro-batches ``(images float in [0, 1], labels long)`` from global micro-batch ``start_micro``."""
        epoch, offset = divmod(start_micro, self.per_epoch)
        pin = self.device.type == "cuda"
        while True:
            loader = DataLoader(
                self.samples,
                batch_size=self.micro_batch,
                sampler=EpochSampler(self.sampler, epoch, skip=offset * self.micro_batch),
                num_workers=self.num_workers,
                drop_last=True,
                pin_memory=pin,
                worker_init_fn=worker_init if self.num_workers else None,
                # A private generator: creating loaders must not consume the global (dropout) RNG stream.
                generator=torch.Generator().manual_seed(self.seed),
            )
            for images, labels in loader:
                yield (
                    images.to(self.device, non_blocking=pin).float().div_(255.0),
                    labels.to(self.device, non_blocking=pin).long(),
                )
            epoch, offset = epoch + 1, 0

    def items_used(self, start_micro: int, micro_batches: int) -> list[int]:
        """Indices of the items this rank loads in ``micro_batches`` micro-batches from ``start_micro`` on."""
        per_epoch = self.per_epoch * self.micro_batch  # the loader drops the last partial batch
        epoch, offset = divmod(start_micro, self.per_epoch)
        left = micro_batches * self.micro_batch
        pos = offset * self.micro_batch
        used: dict[int, None] = {}
        while left > 0 and len(used) < len(self.samples):
            self.sampler.set_epoch(epoch)  # EpochSampler sets it again before the loader draws
            order = [int(i) for i in self.sampler][:per_epoch][pos : pos + left]
            used.update(dict.fromkeys(order))
            left -= len(order)
            epoch, pos = epoch + 1, 0
        return list(used)

    def warm_cache(self, start_micro: int, micro_batches: int, show: bool = False, bar: bool = False) -> None:
        """Load the cached items (``data.cache``) the coming micro-batches use, before the first of them.

        Otherwise the first epoch would also render or decode each item, so its steps would be slower
        than the rest and the ETA too long at the start. Nothing happens without a :class:`CachedDataset`.

        Args:
            start_micro: Global index of the first coming micro-batch.
            micro_batches: How many follow.
            show: Say what is cached, and how long it took.
            bar: Show a progress bar while caching (with ``show``).
        """
        cache = self.samples.base
        if not isinstance(cache, CachedDataset):
            return
        missing = cache.missing(self.items_used(start_micro, micro_batches))
        if not missing:
            return
        if show:
            emit(f"caching {len(missing)} training images (data.cache) before the first step")
        t0 = time.perf_counter()
        with progress_bar(len(missing), "cache", unit="img", enabled=show and bar, tty=True) as progress:
            for start in range(0, len(missing), 16):
                chunk = missing[start : start + 16]
                cache.fill(chunk)
                progress.update(len(chunk))
        if show:
            emit(f"cached {len(missing)} images in {format_duration(time.perf_counter() - t0)}")


def val_input_size(cfg: TrainConfig) -> tuple[int, int] | None:
    """The validation set's own ``input_size``, else ``eval.input_size`` (``None``: native size)."""
    size = (cfg.data.val.input_size if cfg.data.val else None) or cfg.eval.input_size
    return None if size is None else (int(size[0]), int(size[1]))
