"""``causal-tune demo --package-model``: a checkpoint trained on a backbone FILE becomes standalone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from causal_tune_ros.classes import load_classes
from causal_tune_ros.demo.packaging import package_demo_model
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead
from causal_tune_ros.pretrain.trainer import save_pocket_backbone


def _trained_on_backbone_file(tmp_path: Path, operator: str = "spatial") -> tuple[Path, CausalTuneSegmenter]:
    """A checkpoint as `causal-tune train` writes it for a backbone file (which it does not embed)."""
    torch.manual_seed(0)
    tiny = DinoV2("custom", embed_dim=32, depth=3, num_heads=2, patch_size=14, img_size=56)
    backbone_file = save_pocket_backbone(tiny, tmp_path / "bb.safetensors")
    backbone = DinoV2.from_pretrained(backbone_file)
    torch.manual_seed(1)
    model = CausalTuneSegmenter(backbone, LightHead(32, 19, num_inputs=3, channels=16), num_tokens=8, rank=4)
    train_config = {
        "model": {
            "backbone": {"weights": str(backbone_file), "overrides": {}},
            "tuner": {"operator": operator},
        },
        "augment": {"crop_size": [28, 56]},
        "data": {"train": {"conditions": ["clear"]}},
    }
    path = save_checkpoint(
        tmp_path / "trained.safetensors",
        model.eval(),
        metadata={"train_config": train_config},
        class_names=load_classes().names,
        band=(0.2, 0.7),
    )
    return path, model


def test_package_embeds_the_backbone_file_and_describes_its_shape(tmp_path: Path) -> None:
    trained, model = _trained_on_backbone_file(tmp_path)
    assert not read_checkpoint_metadata(trained)["backbone"]["embedded"]

    out = package_demo_model(trained, tmp_path / "demo.safetensors", train_seconds=12.34)
    meta = read_checkpoint_metadata(out)
    user = meta["user"]
    assert meta["backbone"]["embedded"]
    # The shape comes from the backbone itself, not from the (empty) overrides of the training config.
    assert "3 blocks, width 32, patch 14" in user["description"]
    assert "pretrained without labels" in user["description"] and "NOT DINOv2" in user["description"]
    assert "Causal-Tune tokens" in user["description"]
    assert "pretrained without semantic labels" in user["backbone_note"]
    assert user["input_size"] == [28, 56] and user["train_seconds"] == 12.3 and user["dtype"] == "float16"
    assert user["train_command"] == "causal-tune train --config config/train/synthetic_pocket.yaml"

    # It loads on its own (no backbone argument) and segments as the trained model does, to float16.
    standalone = load_checkpoint(out)
    image, band = torch.rand(1, 3, 28, 56), torch.tensor([0.2, 0.7])
    with torch.no_grad():
        expected = model(image, band).argmax(1)
        got = standalone(image, band).argmax(1)
    assert (expected == got).float().mean() > 0.99


@pytest.mark.parametrize(("operator", "words"), [("rein", "Rein-style tokens without the band-pass")])
def test_package_names_the_ablation(tmp_path: Path, operator: str, words: str) -> None:
    trained, _ = _trained_on_backbone_file(tmp_path, operator)
    user = read_checkpoint_metadata(package_demo_model(trained, tmp_path / "rein.safetensors"))["user"]
    assert words in user["description"]
