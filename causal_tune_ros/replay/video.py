"""Side-by-side MP4 (input | overlay): H.264 through PyAV when it is installed, else OpenCV's ``mp4v``.

Browsers play H.264 (``avc1``, ``yuv420p``) MP4 files but not MPEG-4 Part 2 (``mp4v``). PyAV (``av``, a
dependency of the package) bundles FFmpeg with the ``libx264`` encoder, so the video is H.264 wherever
its wheels install; where PyAV or its H.264 encoder is missing, OpenCV's ``mp4v`` (in every
opencv-python wheel) still writes a file that desktop players show. :attr:`SideBySideVideo.codec` says
which one was used.

The video is written under a temporary name beside its final path and renamed when complete: a video
that has its final name is always whole; an interrupted replay removes the temporary file. An existing
file is replaced only with ``overwrite`` and only if it is an MP4 (``ftyp`` box at offset 4).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from causal_tune_ros.errors import BagError, ConfigError

LOG = logging.getLogger(__name__)

#: Codec names in :attr:`SideBySideVideo.codec`.
H264 = "h264"
MP4V = "mp4v"


def video_path_for_topic(path: str | Path, topic: str, n_topics: int) -> Path:
    """Where the video of ``topic`` goes: ``path`` itself for a single camera, else
    ``<stem>_<topic>.mp4`` beside it (``/front/image_raw`` -> ``out_front_image_raw.mp4``)."""
    path = Path(path)
    if n_topics <= 1:
        return path
    slug = re.sub(r"[^A-Za-z0-9]+", "_", topic).strip("_") or "camera"
    return path.with_name(f"{path.stem}_{slug}{path.suffix or '.mp4'}")


def _is_mp4(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == b"ftyp"


def check_video_target(path: str | Path, overwrite: bool) -> None:
    """Whether a video may be written at ``path``.

    Raises:
        BagError: ``path`` exists and ``overwrite`` is false, or it exists and is not an MP4 file.
    """
    p = Path(path)
    if not os.path.lexists(p):
        return
    if not overwrite:
        raise BagError(f"video {p} exists already (pass --overwrite to replace it)")
    if p.is_symlink() or not p.is_file() or not _is_mp4(p):
        raise BagError(f"{p} exists and is not an MP4 video; refusing to replace it")


def h264_available() -> bool:
    """Whether PyAV with an H.264 encoder is importable here."""
    try:
        import av

        av.codec.Codec("libx264", "w")
    except Exception:  # ImportError, or an FFmpeg build without libx264
        return False
    return True


class _PyAVWriter:
    """H.264 (libx264, yuv420p, +faststart for progressive playback in browsers) through PyAV."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import av

        self._container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "23", "preset": "veryfast"}

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def release(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


class _OpenCVWriter:
    """MPEG-4 Part 2 (``mp4v``) through OpenCV: the fallback."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import cv2

        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._writer.isOpened():
            raise ConfigError(f"OpenCV cannot write an mp4v video to {path}")

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def release(self) -> None:
        self._writer.release()


class SideBySideVideo:
    """Writes frames ``[input | overlay]`` to an MP4 (H.264 if possible, see the module docstring).

    The frame size is fixed by the first frame (rounded down to even sides, which H.264's 4:2:0 needs);
    later frames of another size are resized to it.

    Args:
        path: Output file (``.mp4``); its folder is created.
        fps: Playback rate (the bag's camera rate gives a real-time video).
        overwrite: Replace an existing MP4 at ``path`` (checked again when the video is committed).
        codec: ``"h264"`` (default; falls back to ``mp4v`` when PyAV or libx264 is missing) or ``"mp4v"``.

    Raises:
        ConfigError: If ``fps`` is not positive or the codec is unknown.
    """

    def __init__(
        self, path: str | Path, fps: float = 10.0, overwrite: bool = True, codec: str = H264
    ) -> None:
        if not fps > 0:
            raise ConfigError(f"video fps must be positive, got {fps}")
        if codec not in (H264, MP4V):
            raise ConfigError(f"unknown video codec {codec!r}; expected {H264} or {MP4V}")
        self.path = Path(path)
        self.fps = float(fps)
        self.overwrite = overwrite
        self.frames = 0
        self.codec = H264 if codec == H264 and h264_available() else MP4V
        self._writer: Any = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of one half

    def write(self, rgb: np.ndarray, overlay: np.ndarray) -> None:
        """Append one frame.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB input.
            overlay: ``(H, W, 3)`` uint8 RGB overlay at the same size.

        Raises:
            ConfigError: If the video file cannot be opened.
        """
        import cv2

        if self._writer is None:
            h, w = rgb.shape[:2]
            self._size = (max(w - w % 2, 2), max(h - h % 2, 2))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self.path.with_name(f".{self.path.stem}.partial-{secrets.token_hex(3)}.mp4")
            size = (2 * self._size[0], self._size[1])
            if self.codec == H264:
                try:
                    self._writer = _PyAVWriter(self._tmp, self.fps, size)
                except Exception as exc:  # an FFmpeg that refuses the settings: keep a video anyway
                    LOG.warning("H.264 video unavailable (%s); writing mp4v instead", exc)
                    self._tmp.unlink(missing_ok=True)
                    self.codec = MP4V
            if self._writer is None:
                self._writer = _OpenCVWriter(self._tmp, self.fps, size)
        assert self._size is not None
        halves = []
        for img in (rgb, overlay):
            if (img.shape[1], img.shape[0]) != self._size:
                img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
            halves.append(img)
        self._writer.write(np.concatenate(halves, axis=1))
        self.frames += 1

    def close(self, commit: bool = True) -> None:
        """Finish the file (idempotent): rename it into place, or with ``commit=False`` (an interrupted
        replay) delete it.

        Raises:
            BagError: If an existing file at :attr:`path` may not be replaced.
        """
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        assert self._tmp is not None
        try:
            writer.release()
            if commit:
                check_video_target(self.path, self.overwrite)
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> SideBySideVideo:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(commit=exc_type is None)
