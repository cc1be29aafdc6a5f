"""The network input size a checkpoint records, and who falls back to it (replay, node)."""

from __future__ import annotations

from pathlib import Path

import pytest

from causal_tune_ros.backends import DEFAULT_INPUT_SIZE, recorded_input_size_or_none
from causal_tune_ros.errors import CheckpointError
from causal_tune_ros.model import CausalTuneSegmenter, DinoV2, LightHead, save_checkpoint
from causal_tune_ros.model.checkpoint import recorded_input_size as read_recorded_size


def _checkpoint(path: Path, user: dict | None) -> Path:
    backbone = DinoV2(arch="vits14", embed_dim=32, depth=2, num_heads=2)
    model = CausalTuneSegmenter(backbone, LightHead(32, num_classes=19, channels=16), num_tokens=4, rank=2)
    return save_checkpoint(path, model, metadata=user, include_backbone=True)


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [([168, 336], (168, 336)), ([512, 1024], (518, 1022)), ([3, 5], (14, 14))],
)
def test_recorded_size_is_rounded_to_the_patch_size(tmp_path: Path, recorded, expected) -> None:
    ckpt = _checkpoint(tmp_path / "m.safetensors", {"input_size": recorded})
    assert read_recorded_size(ckpt) == expected
    assert recorded_input_size_or_none(ckpt) == expected


def test_no_record_no_file_no_size(tmp_path: Path) -> None:
    assert recorded_input_size_or_none(_checkpoint(tmp_path / "m.safetensors", None)) is None
    # The backends' helper never raises: the backend load reports a bad file with its reason.
    assert recorded_input_size_or_none(tmp_path / "missing.safetensors") is None
    assert recorded_input_size_or_none(None) is None
    # The checkpoint module's reader says why instead (its name carries no "or_none").
    with pytest.raises(CheckpointError, match=r"missing\.safetensors"):
        read_recorded_size(tmp_path / "missing.safetensors")


def test_node_backend_spec_uses_the_recorded_size_unless_set(tmp_path: Path) -> None:
    from causal_tune_ros.node.model_loading import backend_spec
    from causal_tune_ros.node.parameters import default_values, settings_from_values

    ckpt = _checkpoint(tmp_path / "m.safetensors", {"input_size": [168, 336]})
    values = dict(default_values(), **{"model.checkpoint": str(ckpt), "backend": "eager"})
    assert backend_spec(settings_from_values(values)).input_size == (168, 336)
    values.update({"model.input_height": 224, "model.input_width": 448})
    assert backend_spec(settings_from_values(values)).input_size == (224, 448)
    plain = _checkpoint(tmp_path / "plain.safetensors", None)
    values.update({"model.checkpoint": str(plain), "model.input_height": 0, "model.input_width": 0})
    assert backend_spec(settings_from_values(values)).input_size == DEFAULT_INPUT_SIZE
