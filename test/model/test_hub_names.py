"""Backbone hub names resolve through the standard caches (filled here by the test; never downloaded),
a clear error when offline and not cached, and checkpoints record the position-embedding rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from causal_tune_ros.errors import CheckpointError
from causal_tune_ros.model import DinoV2, save_official_checkpoint
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.checkpoint import read_checkpoint_metadata, save_checkpoint
from causal_tune_ros.model.heads import LightHead
from causal_tune_ros.model.weights import OFFICIAL_URL, resolve_backbone_source

transformers = pytest.importorskip("transformers")
hf_constants = pytest.importorskip("huggingface_hub.constants")

COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGES = torch.randn(1, 3, 42, 70, generator=torch.Generator().manual_seed(0))


def _tiny_hf(registers: int = 0) -> torch.nn.Module:
    common = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 56}
    if registers:
        cfg = transformers.Dinov2WithRegistersConfig(patch_size=14, num_register_tokens=registers, **common)
        return transformers.Dinov2WithRegistersModel(cfg).eval()
    return transformers.Dinov2Model(transformers.Dinov2Config(patch_size=14, **common)).eval()


@pytest.fixture
def offline_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Empty Hugging Face and torch.hub caches under tmp_path, downloads off."""
    hf_cache, torch_home = tmp_path / "hf_hub", tmp_path / "torch_hub"
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(torch_home))
    try:
        yield {"hf": hf_cache, "torch": torch_home}
    finally:
        torch.hub.set_dir(before)


def _put_in_hf_cache(cache: Path, repo: str, model: torch.nn.Module) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / COMMIT
    model.save_pretrained(snapshot)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(COMMIT)
    return snapshot


def test_hf_name_resolves_from_the_hf_cache_offline(offline_caches: dict[str, Path]) -> None:
    hf = _tiny_hf(registers=4)
    snapshot = _put_in_hf_cache(offline_caches["hf"], "facebook/dinov2-with-registers-small", hf)
    assert resolve_backbone_source("facebook/dinov2-with-registers-small") == snapshot
    model = DinoV2.from_pretrained("facebook/dinov2-with-registers-small")
    with torch.no_grad():
        expected = hf(pixel_values=IMAGES).last_hidden_state
        assert (model(IMAGES) - expected).abs().max() < 1e-4
    with pytest.raises(
        CheckpointError, match=r"dinov2-large is not a local file .*not in the Hugging Face cache"
    ):
        DinoV2.from_pretrained("facebook/dinov2-large")


def test_torch_hub_name_resolves_from_torch_hub_cache_offline(offline_caches: dict[str, Path]) -> None:
    torch.manual_seed(0)
    source = DinoV2("vits14", depth=1, img_size=56)
    cached = offline_caches["torch"] / "checkpoints" / "dinov2_vits14_pretrain.pth"
    save_official_checkpoint(source, cached)
    assert resolve_backbone_source("dinov2_vits14") == cached
    model = DinoV2.from_pretrained("dinov2_vits14")
    assert model.config["interpolate_offset"] == 0.1  # official file: official resampling
    with torch.no_grad():
        assert torch.equal(model(IMAGES), source.eval()(IMAGES))
    url = OFFICIAL_URL.format(arch="dinov2_vitl14", reg="_reg4")
    with pytest.raises(
        CheckpointError, match=r"dinov2_vitl14_reg4_pretrain\.pth is not in torch\.hub's cache"
    ):
        DinoV2.from_pretrained("dinov2_vitl14_reg")
    assert url == "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth"


def test_paths_are_not_mistaken_for_hub_names(tmp_path: Path) -> None:
    missing = "models/dinov2_vitl14_pretrain.pth"
    assert resolve_backbone_source(missing) == Path(missing)  # not a repo id: load_backbone says "missing"
    with pytest.raises(CheckpointError, match="does not exist"):
        DinoV2.from_pretrained(tmp_path / "nothing.pth")


def test_checkpoints_record_the_interpolation_rule(tmp_path: Path) -> None:
    hf = _tiny_hf()
    hf.save_pretrained(tmp_path / "hf")
    from_hf = DinoV2.from_pretrained(tmp_path / "hf")
    from_pth = DinoV2.from_pretrained(save_official_checkpoint(from_hf, tmp_path / "b.pth"), num_heads=2)
    for backbone, rule in ((from_hf, "transformers"), (from_pth, "official")):
        model = CausalTuneSegmenter(backbone, LightHead(32, 3, channels=8), num_tokens=4, rank=2)
        path = save_checkpoint(tmp_path / f"{rule}.safetensors", model)
        meta = read_checkpoint_metadata(path)["backbone"]
        assert meta["interpolation"] == rule
        assert meta["config"]["interpolate_offset"] == (0.0 if rule == "transformers" else 0.1)
