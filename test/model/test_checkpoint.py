"""Causal-Tune checkpoints: exact round trips, metadata, and a clear CheckpointError for every bad file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from causal_tune_ros.band import Band
from causal_tune_ros.errors import CheckpointError, ConfigError
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.checkpoint import (
    FORMAT_VERSION,
    METADATA_KEY,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead

DIM, DEPTH, CLASSES = 32, 3, 4
NAMES = ["road", "car", "sky", "person"]
BAND = torch.tensor([0.2, 0.7])


def _backbone(**overrides: object) -> DinoV2:
    torch.manual_seed(0)
    config = {"embed_dim": DIM, "depth": DEPTH, "num_heads": 2, "img_size": 42, **overrides}
    return DinoV2("custom", num_register_tokens=1, **config)  # type: ignore[arg-type]


def _trained_model() -> CausalTuneSegmenter:
    """A model whose every checkpointed tensor (incl. BatchNorm statistics) differs from a fresh init."""
    model = CausalTuneSegmenter(
        _backbone(), LightHead(DIM, CLASSES, channels=8), layers=[0, 2], num_tokens=6, rank=3
    )
    model.train()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    images = torch.rand(2, 3, 42, 56, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, CLASSES, (2, 10, 14), generator=torch.Generator().manual_seed(2))
    F.cross_entropy(model(images, BAND), labels).backward()
    optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def model() -> CausalTuneSegmenter:
    return _trained_model()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(1, 3, 42, 70, generator=torch.Generator().manual_seed(3))


@pytest.fixture
def saved(tmp_path: Path, model: CausalTuneSegmenter) -> Path:
    return save_checkpoint(
        tmp_path / "ct.safetensors",
        model,
        {"dataset": "synthetic", "iterations": 1},
        class_names=NAMES,
        band=BAND,
    )


def _rewrite(src: Path, dst: Path, edit: object) -> Path:
    """Copy a checkpoint, letting ``edit(tensors, metadata_dict)`` change tensors and metadata."""
    with safe_open(str(src), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        metadata = dict(handle.metadata())
    document = json.loads(metadata[METADATA_KEY])
    edit(tensors, document)  # type: ignore[operator]
    metadata[METADATA_KEY] = json.dumps(document)
    save_file(tensors, str(dst), metadata=metadata)
    return dst


# ---------------------------------------------------------------------------------------------- round trips


def test_round_trip_with_given_backbone_is_exact(
    saved: Path, model: CausalTuneSegmenter, images: torch.Tensor
) -> None:
    loaded = load_checkpoint(saved, backbone=_backbone())
    assert not loaded.training and not loaded.backbone.training
    assert loaded.config == model.config
    with torch.no_grad():
        for band in (BAND, torch.tensor([0.1, 0.5]), None):
            assert torch.equal(loaded(images, band), model(images, band))
    with safe_open(str(saved), framework="pt") as handle:
        names = set(handle.keys())
    assert not any(n.startswith("backbone.") for n in names)
    assert {"tuner.tokens_a", "tuner.tokens_b", "tuner.scale", "tuner.mlp_out.weight"} <= names
    assert "head.fuse.norm.running_mean" in names


def test_round_trip_with_embedded_backbone_needs_nothing_else(
    tmp_path: Path, model: CausalTuneSegmenter, images: torch.Tensor
) -> None:
    path = save_checkpoint(tmp_path / "demo.safetensors", model, include_backbone=True)
    loaded = load_checkpoint(path)
    assert loaded.backbone.config == model.backbone.config
    assert all(not p.requires_grad for p in loaded.backbone.parameters())
    with torch.no_grad():
        assert torch.equal(loaded(images, BAND), model(images, BAND))
    assert read_checkpoint_metadata(path)["backbone"]["embedded"] is True


def test_metadata_records_everything_needed(saved: Path, model: CausalTuneSegmenter) -> None:
    meta = read_checkpoint_metadata(saved)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["backbone"] == {
        "arch": "custom",
        "config": model.backbone.config,
        "embedded": False,
        "interpolation": "official+transformers",  # registers: both position-embedding rules agree
    }
    assert meta["segmenter"] == model.config
    assert meta["segmenter"]["head"]["type"] == "LightHead"
    assert meta["class_names"] == NAMES
    assert meta["train_band"] == pytest.approx([0.2, 0.7])
    assert meta["user"] == {"dataset": "synthetic", "iterations": 1}


def test_band_may_be_a_band_object_and_bad_arguments_are_refused(
    tmp_path: Path, model: CausalTuneSegmenter
) -> None:
    path = save_checkpoint(tmp_path / "b.safetensors", model, band=Band(0.1, 0.6))
    assert read_checkpoint_metadata(path)["train_band"] == [0.1, 0.6]
    with pytest.raises(ConfigError, match="class names"):
        save_checkpoint(tmp_path / "c.safetensors", model, class_names=["road"])
    with pytest.raises(ConfigError, match="JSON"):
        save_checkpoint(tmp_path / "d.safetensors", model, metadata={"when": object()})
    with pytest.raises(ConfigError, match="band"):
        save_checkpoint(tmp_path / "e.safetensors", model, band=(0.7, 0.2))
    assert not (tmp_path / "d.safetensors").exists()


# ---------------------------------------------------------------------------------------------- errors


def test_missing_backbone_is_asked_for(saved: Path) -> None:
    with pytest.raises(CheckpointError, match="backbone must be given") as info:
        load_checkpoint(saved)
    assert "--backbone FILE" in str(info.value)  # what a command-line user types
    assert "training config names" not in str(info.value)  # this one records no training config


def test_missing_backbone_names_the_file_the_training_config_used(
    model: CausalTuneSegmenter, tmp_path: Path
) -> None:
    """`causal-tune train` on a backbone file records it; the error tells the user which file to pass."""
    train_config = {"model": {"backbone": {"weights": "models/pocket/pocket_vit.safetensors"}}}
    path = save_checkpoint(tmp_path / "t.safetensors", model, metadata={"train_config": train_config})
    with pytest.raises(CheckpointError, match="backbone must be given") as info:
        load_checkpoint(path)
    assert "its training config names: models/pocket/pocket_vit.safetensors" in str(info.value)


def test_mismatching_backbone_names_each_differing_field(saved: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(saved, backbone=_backbone(embed_dim=48, depth=4))
    message = str(info.value)
    assert "embed_dim: checkpoint 32, given 48" in message
    assert "depth: checkpoint 3, given 4" in message
    assert "num_heads" not in message
    with pytest.raises(CheckpointError, match="num_register_tokens"):
        load_checkpoint(
            saved, backbone=DinoV2("custom", embed_dim=DIM, depth=DEPTH, num_heads=2, img_size=42)
        )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors", backbone=_backbone())
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint_metadata(tmp_path / "nope.safetensors")


def test_not_safetensors(tmp_path: Path) -> None:
    pth = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(2)}, pth)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    for path in (pth, text, short):
        with pytest.raises(CheckpointError, match="is not a safetensors checkpoint") as info:
            load_checkpoint(path, backbone=_backbone())
        assert "header too large" not in str(info.value)  # what the library says about a text file
        with pytest.raises(CheckpointError, match="is not a safetensors checkpoint"):
            read_checkpoint_metadata(path)


def test_truncated_file(tmp_path: Path, saved: Path) -> None:
    data = saved.read_bytes()
    for keep in (len(data) - 64, 20):
        cut = tmp_path / f"cut{keep}.safetensors"
        cut.write_bytes(data[:keep])
        with pytest.raises(CheckpointError, match="truncated"):
            load_checkpoint(cut, backbone=_backbone())


def test_safetensors_without_causal_tune_metadata(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a Causal-Tune checkpoint"):
        read_checkpoint_metadata(path)


def test_missing_extra_and_misshapen_tensors(tmp_path: Path, saved: Path) -> None:
    def drop(tensors: dict, meta: dict) -> None:
        del tensors["tuner.tokens_b"]

    def extra(tensors: dict, meta: dict) -> None:
        tensors["tuner.surprise"] = torch.zeros(3)

    def reshape(tensors: dict, meta: dict) -> None:
        tensors["tuner.tokens_a"] = torch.zeros(2, 6, 5)

    def more_tokens(tensors: dict, meta: dict) -> None:
        meta["segmenter"]["num_tokens"] = 7  # metadata and tensors disagree

    cases = [
        (drop, r"missing tensors: tuner\.tokens_b"),
        (extra, r"unexpected tensors: tuner\.surprise"),
        (reshape, r"tuner\.tokens_a: shape \(2, 6, 5\) in the file, the model needs \(2, 6, 3\)"),
        (more_tokens, r"tuner\.tokens_a: shape \(2, 6, 3\) in the file, the model needs \(2, 7, 3\)"),
    ]
    for k, (edit, match) in enumerate(cases):
        path = _rewrite(saved, tmp_path / f"edit{k}.safetensors", edit)
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(path, backbone=_backbone())


def test_newer_format_and_bad_config_are_refused(tmp_path: Path, saved: Path) -> None:
    def newer(tensors: dict, meta: dict) -> None:
        meta["format_version"] = FORMAT_VERSION + 1

    def bad_head(tensors: dict, meta: dict) -> None:
        meta["segmenter"]["head"]["type"] = "NoSuchHead"

    with pytest.raises(CheckpointError, match="newer"):
        read_checkpoint_metadata(_rewrite(saved, tmp_path / "newer.safetensors", newer))
    with pytest.raises(CheckpointError, match="NoSuchHead"):
        load_checkpoint(_rewrite(saved, tmp_path / "head.safetensors", bad_head), backbone=_backbone())


# ------------------------------------------------------------------------------------------ hostile metadata


def _with_metadata_text(src: Path, dst: Path, text: str) -> Path:
    """Copy a checkpoint with its metadata document replaced by raw JSON text."""
    with safe_open(str(src), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        metadata = dict(handle.metadata())
    metadata[METADATA_KEY] = text
    save_file(tensors, str(dst), metadata=metadata)
    return dst


def test_deeply_nested_metadata_is_a_checkpoint_error(tmp_path: Path, saved: Path) -> None:
    with safe_open(str(saved), framework="pt") as handle:
        document = handle.metadata()[METADATA_KEY]
    for depth in (100_000, 200):  # beyond the JSON parser's recursion limit, and merely absurd
        nested = '{"a": ' * depth + "1" + "}" * depth
        text = document.replace('"user": {', f'"user": {{"deep": {nested}, ', 1)
        path = _with_metadata_text(saved, tmp_path / f"deep{depth}.safetensors", text)
        with pytest.raises(CheckpointError, match="nested"):
            read_checkpoint_metadata(path)
        with pytest.raises(CheckpointError, match="nested"):
            load_checkpoint(path, backbone=_backbone())


def test_odd_architecture_values_are_checkpoint_errors(tmp_path: Path, model: CausalTuneSegmenter) -> None:
    embedded = save_checkpoint(tmp_path / "embedded.safetensors", model, include_backbone=True)
    cases = {
        "negative": lambda meta: meta["backbone"]["config"].update(embed_dim=-8),
        "text": lambda meta: meta["backbone"]["config"].update(num_heads="two"),
        "tokens": lambda meta: meta["segmenter"].update(num_tokens=-3),
        "list": lambda meta: meta["segmenter"].update(rank=[1, 2]),
    }
    for name, edit in cases.items():
        path = _rewrite(embedded, tmp_path / f"{name}.safetensors", lambda t, m, e=edit: e(m))
        with pytest.raises(CheckpointError):
            load_checkpoint(path)


def test_huge_declared_architecture_is_refused_before_allocating(
    tmp_path: Path, model: CausalTuneSegmenter
) -> None:
    """embed_dim 65536 / depth 48 (~50 GB if built) on a tiny file: refused from the header's shapes.

    Run in a child whose address space is capped at 4 GiB, so building the declared model (what the
    code did before) fails there with an allocation error instead of exhausting the machine.
    """
    embedded = save_checkpoint(tmp_path / "embedded.safetensors", model, include_backbone=True)
    files = {
        "deep": {"embed_dim": 65536, "depth": 48},
        "wide": {"embed_dim": 65536},  # the file's block count: the shape check itself must catch it
    }

    def declare(meta: dict, change: dict) -> None:
        meta["backbone"]["config"].update(change)
        meta["segmenter"]["head"]["in_channels"] = change["embed_dim"]  # consistent, so it builds

    for name, change in files.items():
        _rewrite(
            embedded,
            tmp_path / f"{name}.safetensors",
            lambda t, m, c=change: declare(m, c),
        )
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "from causal_tune_ros.errors import CheckpointError\n"
        "from causal_tune_ros.model.checkpoint import load_checkpoint\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        load_checkpoint(path)\n"
        "    except CheckpointError as exc:\n"
        "        print('CheckpointError:', exc)\n"
    )
    paths = [str(tmp_path / f"{name}.safetensors") for name in files]
    done = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("CheckpointError:") for line in lines), done.stdout
    assert "backbone depth 48 declared, the file holds 3 blocks" in lines[0]
    assert "shape (1, 1, 32) in the file, the model needs (1, 1, 65536)" in lines[1]
