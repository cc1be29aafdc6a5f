"""Common machinery of the file-based readers: sample lists, image / label decoding, label mapping.

A reader lists its (image, label) file pairs once, at construction, and fails then with a
:class:`~causal_tune_ros.errors.DatasetError` that names the missing folder or the image without a label.
``__getitem__`` decodes one pair and returns ``dict(image, labels, condition, name)``:

* ``image``: ``(H, W, 3)`` uint8 RGB;
* ``labels``: ``(H, W)`` uint8 Cityscapes train ids, 255 = ignore;
* ``condition``: weather / domain tag used for per-condition results;
* ``name``: a stable, unique id of the sample (relative path without suffix).

Label PNGs may be single-channel ids or 8-bit palette images (GTAV and Mapillary Vistas ship palette
PNGs whose palette *index* is the class id). OpenCV always expands palettes to colours, so palette files
are mapped back to their indices through the file's own ``PLTE`` chunk.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from causal_tune_ros.errors import DatasetError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Sample:
    """One (image, label) file pair.

    Attributes:
        image: Image file.
        label: Label file.
        condition: Condition / domain tag.
        name: Unique sample name.
        lut: 256-entry uint8 table from the label file's ids to train ids (``None``: already train ids).
    """

    image: Path
    label: Path
    condition: str
    name: str
    lut: np.ndarray | None = None


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder.

    Raises:
        DatasetError: Naming the missing folder and what it should hold.
    """
    if not path.is_dir():
        raise DatasetError(f"{what}: folder {path} does not exist")
    return path


def read_image(path: Path) -> np.ndarray:
    """Decode an image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        DatasetError: Missing, empty, or not a decodable image.
    """
    data = _read_bytes(path)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot decode image {path} (corrupt or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label(path: Path) -> np.ndarray:
    """Decode a label file as ``(H, W)`` uint8 ids (palette PNGs give their palette indices).

    Raises:
        DatasetError: Missing, empty, undecodable, a colour image without palette, or ids above 255.
    """
    data = _read_bytes(path)
    palette = png_palette(bytes(data[: 1 << 20])) if bytes(data[:8]) == _PNG_SIGNATURE else None
    if palette is not None:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"cannot decode label image {path} (corrupt or not an image)")
        return _palette_indices(img, palette, path)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"cannot decode label image {path} (corrupt or not an image)")
    if img.ndim == 3:
        if img.shape[2] >= 3 and not (
            np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])
        ):
            raise DatasetError(f"label image {path} is a colour image; expected single-channel class ids")
        img = img[..., 0]
    if img.dtype != np.uint8:
        if img.dtype.kind not in "ui" or (img.size and int(img.max()) > 255):
            raise DatasetError(f"label image {path} holds ids above 255 ({img.dtype}); expected 8-bit ids")
        img = img.astype(np.uint8)
    return img


def _read_bytes(path: Path) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise DatasetError(f"cannot read {path}: the file is empty")
    return data


def png_palette(head: bytes) -> np.ndarray | None:
    """The ``(N, 3)`` uint8 RGB palette of an indexed-colour PNG, or ``None`` for other PNGs.

    Args:
        head: The file's first bytes (the PLTE chunk precedes the image data).

    Returns:
        The palette, or ``None`` when the PNG is not colour type 3 (palette).
    """
    if not head.startswith(_PNG_SIGNATURE) or len(head) < 33:
        return None
    pos = 8
    color_type = None
    while pos + 8 <= len(head):
        length, ctype = struct.unpack(">I4s", head[pos : pos + 8])
        body = head[pos + 8 : pos + 8 + length]
        if ctype == b"IHDR" and len(body) >= 10:
            color_type = body[9]
            if color_type != 3:
                return None
        elif ctype == b"PLTE":
            if color_type != 3 or len(body) != length or length % 3:
                return None
            return np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif ctype in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def _palette_indices(bgr: np.ndarray, palette: np.ndarray, path: Path) -> np.ndarray:
    """Map decoded palette colours back to palette indices (first index wins for repeated colours)."""
    keys = (palette[:, 0].astype(np.int32) << 16) | (palette[:, 1].astype(np.int32) << 8) | palette[:, 2]
    uniq_keys, first = np.unique(keys, return_index=True)
    packed = (bgr[..., 2].astype(np.int32) << 16) | (bgr[..., 1].astype(np.int32) << 8) | bgr[..., 0]
    pos = np.clip(np.searchsorted(uniq_keys, packed), 0, len(uniq_keys) - 1)
    if not np.array_equal(uniq_keys[pos], packed):
        raise DatasetError(f"label image {path}: pixel colours outside its own palette (corrupt file?)")
    return first[pos].astype(np.uint8)


class SegmentationDataset:
    """A list of :class:`Sample` read on demand (``torch.utils.data.Dataset`` compatible).

    Args:
        samples: The file pairs.
        transform: Optional callable applied to each sample dict before it is returned.
        limit: Keep only the first ``limit`` samples (quick runs).

    Raises:
        DatasetError: ``samples`` is empty.
    """

    #: Data set name used in messages.
    dataset_name = "dataset"
    #: When True, an image whose size differs from its label's is resized to the label's size (GTAV has a
    #: few such pairs); otherwise the mismatch is an error.
    resize_image_to_label = False

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        limit: int | None = None,
    ) -> None:
        samples = list(samples)
        if limit is not None:
            samples = samples[: max(0, int(limit))]
        if not samples:
            raise DatasetError(f"{self.dataset_name}: no samples found")
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def conditions(self) -> list[str]:
        """Conditions present, in first-seen order."""
        return list(dict.fromkeys(s.condition for s in self.samples))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.dataset_name}: index {index} out of range for {len(self)} samples")
        s = self.samples[index]
        image = read_image(s.image)
        labels = read_label(s.label)
        if s.lut is not None:
            labels = s.lut[labels]
        if image.shape[:2] != labels.shape:
            if not self.resize_image_to_label:
                raise DatasetError(
                    f"{self.dataset_name}: image {s.image} is {image.shape[1]}x{image.shape[0]} but its "
                    f"label {s.label} is {labels.shape[1]}x{labels.shape[0]}"
                )
            image = cv2.resize(image, (labels.shape[1], labels.shape[0]), interpolation=cv2.INTER_LINEAR)
        item = {"image": image, "labels": labels, "condition": s.condition, "name": s.name}
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples, conditions={self.conditions})"


def pair_files(
    images: Sequence[Path],
    label_for: Callable[[Path], Sequence[tuple[Path, np.ndarray | None]]],
    condition: str,
    name_for: Callable[[Path], str],
    dataset: str,
) -> list[Sample]:
    """Pair each image with the first existing label candidate.

    Args:
        images: Image files (sorted).
        label_for: Image -> candidate ``(label path, lookup table)`` in order of preference.
        condition: Condition tag for all pairs.
        name_for: Image -> sample name.
        dataset: Data set name for messages.

    Raises:
        DatasetError: An image has none of its label candidates.
    """
    out = []
    for img in images:
        candidates = label_for(img)
        for label, lut in candidates:
            if label.is_file():
                out.append(Sample(img, label, condition, name_for(img), lut))
                break
        else:
            expected = " or ".join(str(c[0]) for c in candidates)
            raise DatasetError(f"{dataset}: image {img} has no label (expected {expected})")
    return out


def _crc(chunk_type: bytes, body: bytes) -> int:
    return zlib.crc32(chunk_type + body) & 0xFFFFFFFF


def encode_palette_png(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """Encode ``(H, W)`` uint8 indices as an 8-bit palette PNG (the GTAV / Vistas label format).

    OpenCV cannot write palette PNGs; this small encoder serves tests and tools that make such files.

    Args:
        indices: ``(H, W)`` uint8 palette indices.
        palette: ``(N, 3)`` uint8 RGB palette, ``N <= 256``.

    Returns:
        The PNG file's bytes.
    """
    idx = np.ascontiguousarray(indices, dtype=np.uint8)
    pal = np.ascontiguousarray(palette, dtype=np.uint8).reshape(-1, 3)
    h, w = idx.shape
    raw = b"".join(b"\x00" + idx[r].tobytes() for r in range(h))  # filter type 0 on every row

    def chunk(ctype: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", _crc(ctype, body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + chunk(b"IHDR", ihdr)
        + chunk(b"PLTE", pal.tobytes())
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
