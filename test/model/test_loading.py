"""Backbone weight files: official-layout round trips, layout variants, a clear error for each bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from causal_tune_ros.errors import CheckpointError
from causal_tune_ros.model import DinoV2, load_backbone, load_weights, save_official_checkpoint
from causal_tune_ros.model.dinov2 import ARCHS
from causal_tune_ros.model.weights import config_from_state_dict

transformers = pytest.importorskip("transformers")


def _randomize(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(0.1 * torch.randn(param.shape, generator=gen))


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small transformers models (2 layers, width 64, 4 heads, 56 px grid) saved with save_pretrained."""
    common = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 56}
    models = {
        "plain": transformers.Dinov2Model(transformers.Dinov2Config(patch_size=14, **common)),
        "registers": transformers.Dinov2WithRegistersModel(
            transformers.Dinov2WithRegistersConfig(patch_size=14, num_register_tokens=4, **common)
        ),
        "swiglu": transformers.Dinov2Model(
            transformers.Dinov2Config(patch_size=14, use_swiglu_ffn=True, **common)
        ),
    }
    folders = {}
    for i, (name, model) in enumerate(models.items()):
        _randomize(model, seed=i)
        folders[name] = tmp_path_factory.mktemp(name)
        model.save_pretrained(folders[name])
    return folders


IMAGES = torch.randn(1, 3, 42, 70, generator=torch.Generator().manual_seed(0))
#: The official repository's resampling rule, without / with registers.
_OFFICIAL_RULE = {
    False: {"interpolate_offset": 0.1, "interpolate_antialias": False},
    True: {"interpolate_offset": 0.0, "interpolate_antialias": True},
}


def _features(model: DinoV2) -> torch.Tensor:
    with torch.no_grad():
        return model(IMAGES)


def _official_keys(depth: int, registers: bool, swiglu: bool) -> set[str]:
    """The key set of an official facebookresearch DINOv2 checkpoint, written out from its layout."""
    keys = {"cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias"}
    keys |= {"norm.weight", "norm.bias"} | ({"register_tokens"} if registers else set())
    ffn = ("mlp.w12", "mlp.w3") if swiglu else ("mlp.fc1", "mlp.fc2")
    for i in range(depth):
        for layer in ("norm1", "attn.qkv", "attn.proj", "norm2", *ffn):
            keys |= {f"blocks.{i}.{layer}.weight", f"blocks.{i}.{layer}.bias"}
        keys |= {f"blocks.{i}.ls1.gamma", f"blocks.{i}.ls2.gamma"}
    return keys


@pytest.mark.parametrize("variant", ["plain", "registers", "swiglu"])
def test_official_layout_round_trip(hf_folders: dict[str, Path], variant: str, tmp_path: Path) -> None:
    from_hf = DinoV2.from_pretrained(hf_folders[variant])
    path = save_official_checkpoint(from_hf, tmp_path / "dinov2_tiny_pretrain.pth")
    state = torch.load(path, weights_only=True)
    assert set(state) == _official_keys(2, variant == "registers", variant == "swiglu")
    # Width 64 is not an official width, so the head count is a hint; everything else is read from tensors.
    from_pth = DinoV2.from_pretrained(path, num_heads=4)
    # An official-layout .pth follows the official position-embedding rule; an HF folder transformers'.
    official = DinoV2.from_pretrained(hf_folders[variant], **_OFFICIAL_RULE[variant == "registers"])
    assert from_pth.config == official.config
    assert torch.equal(_features(from_pth), _features(official))
    # The safetensors variant stores the config, so it reloads without hints.
    st_path = save_official_checkpoint(from_hf, tmp_path / "backbone.safetensors")
    assert torch.equal(_features(load_backbone(st_path)), _features(from_hf))


def test_official_variants_chunked_prefixed_wrapped(hf_folders: dict[str, Path], tmp_path: Path) -> None:
    model = DinoV2.from_pretrained(hf_folders["registers"])
    state = model.state_dict()
    # block_chunks=2: blocks.<chunk>.<global index>.*
    chunked = {
        k.replace("blocks.1.", "blocks.1.1.").replace("blocks.0.", "blocks.0.0."): v for k, v in state.items()
    }
    wrapped = {"model": {f"module.{k}": v for k, v in state.items()}}
    teacher = {"teacher": {**{f"backbone.{k}": v for k, v in state.items()}, "dino_head.w": torch.zeros(2)}}
    expected = _features(model)
    for i, obj in enumerate((chunked, wrapped, teacher)):
        torch.save(obj, tmp_path / f"{i}.pth")
        assert torch.equal(_features(DinoV2.from_pretrained(tmp_path / f"{i}.pth", num_heads=4)), expected)


def test_hf_weights_file_and_load_weights(hf_folders: dict[str, Path]) -> None:
    folder = hf_folders["swiglu"]
    expected = _features(DinoV2.from_pretrained(folder))
    # The safetensors file alone (config.json beside it is read).
    assert torch.equal(_features(DinoV2.from_pretrained(folder / "model.safetensors")), expected)
    target = DinoV2(**DinoV2.from_pretrained(folder).config)
    assert torch.equal(_features(load_weights(target, folder).eval()), expected)


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("registers", [0, 4])
def test_infers_official_architectures(arch: str, registers: int) -> None:
    with torch.device("meta"):  # the key set and shapes of a real checkpoint, without the memory
        state = DinoV2(arch, num_register_tokens=registers).state_dict()
    config = config_from_state_dict(state)
    assert config["arch"] == arch and config["num_register_tokens"] == registers
    assert (config["embed_dim"], config["depth"], config["num_heads"]) == tuple(
        ARCHS[arch][k] for k in ("embed_dim", "depth", "num_heads")
    )
    assert config["ffn_layer"] == ARCHS[arch]["ffn_layer"] and config["mlp_ratio"] == 4.0
    assert config["img_size"] == 518


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    vitb = save_official_checkpoint(DinoV2("vitb14", depth=1, img_size=28), tmp_path / "dinov2_vitb14.pth")
    with torch.device("meta"):
        vits = DinoV2("vits14", depth=1, img_size=28)
    with pytest.raises(
        CheckpointError, match=r"shape mismatch .*cls_token \(expected \(1, 1, 384\), got \(1, 1, 768\)"
    ):
        load_weights(vits, vitb)
    with pytest.raises(CheckpointError, match=r"does not match DinoV2\(arch='vits14'"):
        DinoV2.from_pretrained(vitb, arch="vits14", depth=1, img_size=28)
    # Inference reads the file rather than trusting a name.
    assert DinoV2.from_pretrained(vitb).config["embed_dim"] == 768


def test_config_mismatches_name_the_keys(hf_folders: dict[str, Path], tmp_path: Path) -> None:
    source = DinoV2.from_pretrained(hf_folders["registers"])
    path = save_official_checkpoint(source, tmp_path / "reg.pth")
    custom = {"arch": "custom", "embed_dim": 64, "num_heads": 4, "img_size": 56, "num_register_tokens": 4}
    with pytest.raises(CheckpointError, match=r"unexpected keys \(14\): blocks\.1\.attn\.proj\.bias"):
        DinoV2.from_pretrained(path, **{**custom, "depth": 1})
    with pytest.raises(CheckpointError, match=r"missing keys \(\d+\): blocks\.2\.norm1\.weight"):
        DinoV2.from_pretrained(path, **{**custom, "depth": 3})
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): register_tokens"):
        DinoV2.from_pretrained(path, **{**custom, "depth": 2, "num_register_tokens": 0})
    # A Hugging Face folder whose config.json disagrees with its weights.
    folder = tmp_path / "hf"
    shutil.copytree(hf_folders["plain"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(CheckpointError, match=r"missing keys \(\d+\): blocks\.2\."):
        DinoV2.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "vit"}))
    with pytest.raises(CheckpointError, match=r"unsupported model_type 'vit'"):
        DinoV2.from_pretrained(folder)


def test_bad_paths_and_files(hf_folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        DinoV2.from_pretrained(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"folder without config\.json"):
        DinoV2.from_pretrained(tmp_path)
    only_config = tmp_path / "only_config"
    only_config.mkdir()
    shutil.copy(hf_folders["plain"] / "config.json", only_config)
    with pytest.raises(CheckpointError, match=r"has config\.json but no weights"):
        DinoV2.from_pretrained(only_config)

    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        DinoV2.from_pretrained(tmp_path / "empty.pth")
    (tmp_path / "notes.pth").write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        DinoV2.from_pretrained(tmp_path / "notes.pth")

    # Truncated files of both formats.
    good_st = (hf_folders["plain"] / "model.safetensors").read_bytes()
    cut_folder = tmp_path / "cut_hf"
    shutil.copytree(hf_folders["plain"], cut_folder)
    (cut_folder / "model.safetensors").write_bytes(good_st[: len(good_st) // 2])
    with pytest.raises(CheckpointError, match="safetensors file is truncated or corrupt"):
        DinoV2.from_pretrained(cut_folder)
    pth = save_official_checkpoint(DinoV2.from_pretrained(hf_folders["plain"]), tmp_path / "good.pth")
    (tmp_path / "cut.pth").write_bytes(pth.read_bytes()[: pth.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        DinoV2.from_pretrained(tmp_path / "cut.pth")

    # Readable files that are not DINOv2 backbones.
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        DinoV2.from_pretrained(tmp_path / "list.pth")
    torch.save({"epoch": 3}, tmp_path / "no_tensors.pth")
    with pytest.raises(CheckpointError, match="holds no tensors"):
        DinoV2.from_pretrained(tmp_path / "no_tensors.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a DINOv2 backbone checkpoint: no cls_token"):
        DinoV2.from_pretrained(tmp_path / "other.pth")
    torch.save({"weights": torch.zeros(1), "obj": Path("x")}, tmp_path / "pickled.pth")
    with pytest.raises(CheckpointError, match="not a plain tensor checkpoint"):
        DinoV2.from_pretrained(tmp_path / "pickled.pth")
    # A non-official width needs the head count.
    with pytest.raises(CheckpointError, match=r"embed_dim 64 .* pass num_heads"):
        DinoV2.from_pretrained(pth)
