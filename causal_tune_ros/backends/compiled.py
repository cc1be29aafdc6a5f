"""``compiled`` backend: the PyTorch model through ``torch.compile`` (inductor) for GPUs without TensorRT.

One static-shape graph per batch size, compiled whole (``fullgraph=True``: a graph break is an error,
not a silent slow path) when the backend loads, so the first frame is not the slow one and a compiler
failure falls back to eager like any other backend that cannot load. On CUDA with the inductor compiler
the graph also runs as a CUDA graph (``mode="reduce-overhead"``): one launch per frame instead of one
per kernel. The band is a tensor input of the graph, so switching bands never recompiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from causal_tune_ros.backends.base import LOGGER, BackendSpec
from causal_tune_ros.backends.eager import EagerBackend
from causal_tune_ros.errors import BackendError

#: The ``torch.compile`` compiler used in production.
DEFAULT_COMPILER = "inductor"


class CompiledBackend(EagerBackend):
    """Runs ``torch.compile(model)`` on CPU or CUDA, fp32 or fp16 (CUDA).

    Args:
        spec: As :class:`~causal_tune_ros.backends.eager.EagerBackend` (``torch_compile`` is implied).
        model: An already built segmenter to compile instead of loading ``spec.checkpoint``.
        compiler: ``torch.compile``'s ``backend``: ``inductor`` (default), another registered name, or a
            callable (tests count compilations with one).
    """

    name = "compiled"

    def __init__(
        self, spec: BackendSpec, model: Any = None, compiler: str | Callable[..., Any] = DEFAULT_COMPILER
    ) -> None:
        super().__init__(spec.with_changes(torch_compile=False), model=model)
        self.compiler = compiler
        self._cuda_graphs = False

    def load(self) -> None:
        """Load the model, compile it and run one warm-up frame (the compilation).

        Raises:
            BackendError: As the eager backend, or when compilation fails (missing C compiler or Triton,
                a graph break in the model).
        """
        if self._loaded:
            return
        import torch

        super().load()
        h, w = self.input_size
        warm_up = (np.zeros((1, 3, h, w), np.float32), np.asarray([0.2, 0.7], np.float32))
        # One eager frame first: it fills the model's caches (DCT bases), so the graph is traced against
        # their final state instead of being traced again after its first run.
        super()._run_device(*warm_up)
        self._cuda_graphs = self.compiler == "inductor" and self._device.type == "cuda"
        options: dict[str, Any] = {"backend": self.compiler, "dynamic": False, "fullgraph": True}
        if self._cuda_graphs:
            options["mode"] = "reduce-overhead"
        LOGGER.info("compiling the model with torch.compile (%s)", options)
        self._model = torch.compile(self._model, **options)
        try:
            self._run_device(*warm_up)
        except Exception as exc:  # dynamo, inductor or a missing toolchain: all mean "cannot compile"
            self.close()
            raise BackendError(f"torch.compile failed: {type(exc).__name__}: {exc}") from exc

    def _run_device(self, images: np.ndarray, band: np.ndarray) -> Any:
        logits = super()._run_device(images, band)
        # A CUDA graph reuses its output buffer on the next replay: hand out a copy the caller owns.
        return logits.clone() if self._cuda_graphs else logits

    def _versions(self) -> dict[str, str | None]:
        versions = super()._versions()
        versions["compiler"] = self.compiler if isinstance(self.compiler, str) else "custom"
        return versions
