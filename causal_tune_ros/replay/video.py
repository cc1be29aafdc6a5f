"""Side-by-side MP4 (input | overlay) through OpenCV's ``VideoWriter`` with the ``mp4v`` codec.

``mp4v`` ships with every opencv-python wheel (H.264 does not), so the file can always be written; any
player or browser that handles MPEG-4 Part 2 shows it.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType

import numpy as np

from causal_tune_ros.errors import ConfigError


def video_path_for_topic(path: str | Path, topic: str, n_topics: int) -> Path:
    """Where the video of ``topic`` goes: ``path`` itself for a single camera, else
    ``<stem>_<topic>.mp4`` beside it (``/front/image_raw`` -> ``out_front_image_raw.mp4``)."""
    path = Path(path)
    if n_topics <= 1:
        return path
    slug = re.sub(r"[^A-Za-z0-9]+", "_", topic).strip("_") or "camera"
    return path.with_name(f"{path.stem}_{slug}{path.suffix or '.mp4'}")


class SideBySideVideo:
    """Writes frames ``[input | overlay]`` to an MP4.

    The frame size is fixed by the first frame (rounded down to even sides, which MPEG-4 encoders
    prefer); later frames of another size are resized to it.

    Args:
        path: Output file (``.mp4``); its folder is created.
        fps: Playback rate (the bag's camera rate gives a real-time video).

    Raises:
        ConfigError: If ``fps`` is not positive, or OpenCV cannot open the file for writing.
    """

    def __init__(self, path: str | Path, fps: float = 10.0) -> None:
        if not fps > 0:
            raise ConfigError(f"video fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.frames = 0
        self._writer = None
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
            writer = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (2 * self._size[0], self._size[1])
            )
            if not writer.isOpened():
                raise ConfigError(f"OpenCV cannot write an mp4v video to {self.path}")
            self._writer = writer
        assert self._size is not None
        halves = []
        for img in (rgb, overlay):
            if (img.shape[1], img.shape[0]) != self._size:
                img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
            halves.append(img)
        frame = np.concatenate(halves, axis=1)
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> SideBySideVideo:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
