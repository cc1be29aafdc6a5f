"""Eager PyTorch backend: the reference, on CPU or CUDA, fp32 or fp16 (CUDA), optionally torch.compile'd."""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_tune_ros.backends.base import LOGGER, Backend, BackendSpec, library_version
from causal_tune_ros.backends.segmenter import load_segmenter
from causal_tune_ros.errors import BackendError


class EagerBackend(Backend):
    """Runs the PyTorch model directly.

    Args:
        spec: ``checkpoint`` (+ ``backbone``) to load, ``device``, ``precision`` (fp32, or fp16 on CUDA),
            ``torch_compile``, ``num_threads`` (sets ``torch.set_num_threads``, process wide).
        model: An already built segmenter to run instead of loading ``spec.checkpoint`` (training-time
            evaluation, tests); it is moved to the device and put in eval mode.
    """

    name = "eager"
    device_output = True

    def __init__(self, spec: BackendSpec, model: Any = None) -> None:
        super().__init__(spec)
        self._given_model = model
        self._model: Any = None
        self._device: Any = None
        self._band_cache: tuple[bytes, Any] | None = None

    def load(self) -> None:
        """Load the checkpoint and prepare the model on the device.

        Raises:
            BackendError: CUDA asked for but absent, a precision eager does not run (int8, fp16 on CPU),
                no checkpoint and no model given.
            CheckpointError: Unreadable or mismatching checkpoint / backbone.
        """
        if self._loaded:
            return
        import torch

        spec = self.spec
        if spec.device == "cuda" and not torch.cuda.is_available():
            raise BackendError("device cuda requested but torch sees no CUDA device")
        if spec.precision == "int8":
            raise BackendError("the eager backend runs fp32 or fp16; int8 is the onnxruntime backend's")
        if spec.precision == "fp16" and spec.device != "cuda":
            raise BackendError("fp16 eager inference needs CUDA; use fp32 on the CPU")
        if spec.num_threads:
            torch.set_num_threads(int(spec.num_threads))
        model = self._given_model
        if model is None:
            if spec.checkpoint is None:
                raise BackendError("the eager backend needs a checkpoint (or a model)")
            model = load_segmenter(spec.checkpoint, spec.backbone)
            self.artefact = spec.checkpoint
        self._device = torch.device(spec.device)
        model = model.to(self._device).eval()
        if spec.precision == "fp16":
            model = model.half()
        if spec.torch_compile:
            LOGGER.info("compiling the eager model with torch.compile (first inference is slow)")
            model = torch.compile(model, dynamic=False)
        self._model = model
        self.num_classes = int(
            getattr(model, "num_classes", 0) or getattr(self._given_model, "num_classes", 0)
        )
        self._loaded = True

    def _band_tensor(self, band: np.ndarray) -> Any:
        """The band on the device, reused while it does not change (saves a host->device copy per frame)."""
        import torch

        key = band.tobytes()
        if self._band_cache is None or self._band_cache[0] != key:
            self._band_cache = (key, torch.from_numpy(band.copy()).to(self._device))
        return self._band_cache[1]

    def _run(self, images: np.ndarray, band: np.ndarray) -> np.ndarray:
        return self._run_device(images, band).float().cpu().numpy()

    def _run_device(self, images: np.ndarray, band: np.ndarray) -> Any:
        import torch

        x = torch.from_numpy(images)  # zero-copy view of the caller's array
        if self._device.type != "cpu":
            x = x.to(self._device, non_blocking=True)
        if self.spec.precision == "fp16":
            x = x.half()
        try:
            with torch.inference_mode():
                logits = self._model(x, self._band_tensor(band))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise BackendError(f"eager inference failed: {exc}") from exc
        return logits

    def _versions(self) -> dict[str, str | None]:
        import torch

        return {"torch": torch.__version__, "cuda": torch.version.cuda, "numpy": library_version("numpy")}

    def _device_name(self) -> str:
        import torch

        if self.spec.device == "cuda" and torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name()})"
        return f"cpu ({torch.get_num_threads()} threads)"

    @property
    def model(self) -> Any:
        """The loaded PyTorch module (``None`` before :meth:`load`)."""
        return self._model

    def close(self) -> None:
        """Drop the model (and free CUDA memory it held)."""
        self._model = None
        self._band_cache = None
        super().close()
