"""The ``compiled`` backend: one whole graph, the band a graph input (switching bands never recompiles)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from causal_tune_ros.backends import BACKEND_NAMES, BackendSpec, create_backend, load_backend_with_fallback
from causal_tune_ros.backends.compiled import CompiledBackend
from causal_tune_ros.backends.eager import EagerBackend
from causal_tune_ros.band import Band
from causal_tune_ros.errors import BackendError

from .backend_support import INPUT_SIZE, build_tiny_model


class CompileCounter:
    """A ``torch.compile`` backend that records every graph dynamo hands over, then runs it as is."""

    def __init__(self) -> None:
        self.graphs: list[torch.fx.GraphModule] = []

    def __call__(self, graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        self.graphs.append(graph)
        return graph.forward


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_band_changes_do_not_recompile(images: np.ndarray) -> None:
    """One whole graph per batch size (the band one of its inputs); four bands, no recompilation."""
    counter = CompileCounter()
    model = build_tiny_model()
    spec = BackendSpec(name="compiled", input_size=INPUT_SIZE)
    backend = CompiledBackend(spec, model=model, compiler=counter)
    backend.load()  # compiles at load time (warm-up frame), whole graph
    assert len(counter.graphs) == 1
    placeholders = [n for n in counter.graphs[0].graph.nodes if n.op == "placeholder"]
    assert any(tuple(n.meta["example_value"].shape) == (2,) for n in placeholders)  # the band: an input
    eager = EagerBackend(spec.with_changes(name="eager"), model=model)
    for band in (Band(), Band(0.05, 0.3), Band(0.4, 0.9), Band()):
        np.testing.assert_allclose(backend.infer(images[:1], band), eager.infer(images[:1], band), atol=1e-5)
    assert len(counter.graphs) == 1  # four bands, one compilation
    for band in (Band(), Band(0.1, 0.5)):
        assert backend.infer(images, band).shape[0] == 2
    assert len(counter.graphs) == 2  # batch 2: its own static-shape graph, once
    assert backend.describe().name == "compiled"


def test_compiled_is_a_backend_name_and_a_failed_compile_falls_back(tiny_checkpoint: Path) -> None:
    assert "compiled" in BACKEND_NAMES
    backend = create_backend("compiled", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)
    assert isinstance(backend, CompiledBackend) and backend.compiler == "inductor"

    def broken(graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        raise RuntimeError("no C compiler")

    failing = CompiledBackend(
        BackendSpec(name="compiled", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE), compiler=broken
    )
    with pytest.raises(BackendError, match=r"torch\.compile failed"):
        failing.load()
    assert not failing.loaded


def test_node_parameter_and_cli_offer_the_same_backend_names() -> None:
    from causal_tune_ros.node.parameters.table import BACKENDS
    from causal_tune_ros.replay.command import add_arguments

    assert BACKENDS == BACKEND_NAMES
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["in.bag", "-o", "out", "--backend", "compiled"]).backend == "compiled"
    with pytest.raises(SystemExit):
        parser.parse_args(["in.bag", "-o", "out", "--backend", "tensorflow"])


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_compiled_inductor_on_cuda_matches_eager(
    tiny_checkpoint: Path, images: np.ndarray, precision: str
) -> None:
    spec = BackendSpec(
        name="compiled", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, device="cuda", precision=precision
    )
    backend, warning = load_backend_with_fallback(spec)
    assert warning is None and backend.name == "compiled"
    eager = create_backend(spec.with_changes(name="eager"))
    for band in (Band(), Band(0.05, 0.3)):
        got, want = backend.infer(images[:1], band), eager.infer(images[:1], band)
        atol = 5e-2 if precision == "fp16" else 1e-3
        np.testing.assert_allclose(got, want, atol=atol)
        assert (got.argmax(1) == want.argmax(1)).mean() > 0.99
