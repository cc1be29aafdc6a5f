"""DinoV2 backbone: same numbers as transformers on the same weights, token layout, shapes and errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model import DinoV2, interpolate_pos_embed

transformers = pytest.importorskip("transformers")

HIDDEN, LAYERS, HEADS, IMAGE = 64, 3, 4, 56  # 4 x 4 pretraining grid
NATIVE = (56, 56)
NON_NATIVE = (42, 70)  # 3 x 5 patches: fewer rows (downsampling) and more columns (upsampling)


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Give every parameter distinct random values (transformers' init makes norms, biases and
    LayerScale constant, which would hide a swapped or dropped tensor)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            scale_like = name.endswith(("norm1.weight", "norm2.weight", "layernorm.weight", "lambda1"))
            param.copy_(1.0 + 0.2 * noise if scale_like else 0.1 * noise)


def _hf_model(registers: int, swiglu: bool = False) -> torch.nn.Module:
    common = {
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "image_size": IMAGE,
        "patch_size": 14,
        "use_swiglu_ffn": swiglu,
    }
    if registers:
        config = transformers.Dinov2WithRegistersConfig(num_register_tokens=registers, **common)
        model = transformers.Dinov2WithRegistersModel(config)
    else:
        model = transformers.Dinov2Model(transformers.Dinov2Config(**common))
    _randomize(model, seed=registers + 10 * swiglu)
    return model.eval()


VARIANTS = {"plain": (0, False), "registers": (4, False), "swiglu": (0, True)}


@pytest.fixture(scope="module")
def hf_pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[torch.nn.Module, str]]:
    """Each variant as a transformers model and as the folder it saved itself to."""
    pairs = {}
    for name, (registers, swiglu) in VARIANTS.items():
        model = _hf_model(registers, swiglu)
        folder = tmp_path_factory.mktemp(f"hf_{name}")
        model.save_pretrained(folder)
        pairs[name] = (model, str(folder))
    return pairs


def _images(size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_transformers_at_native_size(hf_pairs: dict, variant: str) -> None:
    hf, folder = hf_pairs[variant]
    ours = DinoV2.from_pretrained(folder)
    assert ours.num_register_tokens == VARIANTS[variant][0]
    images = _images(NATIVE)
    with torch.no_grad():
        expected = hf(pixel_values=images).last_hidden_state
        got = ours(images)
    assert got.shape == expected.shape == (2, 1 + ours.num_register_tokens + 16, HIDDEN)
    assert (got - expected).abs().max().item() < 1e-4


@pytest.mark.parametrize("size", [NON_NATIVE, (238, 462)], ids=["42x70", "238x462"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_hf_folders_match_transformers_at_non_native_sizes(hf_pairs: dict, variant: str, size: tuple) -> None:
    """A Hugging Face folder resamples position embeddings as transformers does (by default)."""
    hf, folder = hf_pairs[variant]
    images = _images(size, seed=1)
    with torch.no_grad():
        expected = hf(pixel_values=images).last_hidden_state
        ours = DinoV2.from_pretrained(folder)
        got = ours(images)
        official = DinoV2.from_pretrained(folder, interpolate_offset=0.1, interpolate_antialias=False)(images)
    assert (got - expected).abs().max().item() < 1e-4
    assert ours.config["interpolate_offset"] == 0.0
    assert ours.config["interpolate_antialias"] == bool(VARIANTS[variant][0])
    # The official rule (+0.1 scale-factor offset), still selectable, differs at these sizes.
    assert (official - expected).abs().max().item() > 1e-4


def test_interpolation_follows_official_dinov2() -> None:
    side, dim = 4, 8
    pos = torch.randn(1, 1 + side * side, dim, generator=torch.Generator().manual_seed(3))
    # Native grid: the stored embeddings, untouched.
    assert interpolate_pos_embed(pos, side, side, antialias=False, offset=0.1) is pos
    grid = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    for antialias, offset in ((False, 0.1), (True, 0.0), (False, 0.0)):
        out = interpolate_pos_embed(pos, 3, 6, antialias=antialias, offset=offset)
        assert out.shape == (1, 1 + 18, dim)
        assert torch.equal(out[:, 0], pos[:, 0])  # class token embedding passes unchanged
        # DINOv2's rule: a scale factor of (n + offset) / M when an offset is set, else the output size.
        resize = {"scale_factor": ((3 + offset) / side, (6 + offset) / side)} if offset else {"size": (3, 6)}
        ref = F.interpolate(grid, mode="bicubic", antialias=antialias, **resize)
        assert torch.allclose(out[:, 1:], ref.permute(0, 2, 3, 1).reshape(1, 18, dim), atol=1e-6)
    # The three rules give different (slightly) embeddings: the choice matters and is configurable.
    a = interpolate_pos_embed(pos, 3, 6, antialias=False, offset=0.1)
    b = interpolate_pos_embed(pos, 3, 6, antialias=False, offset=0.0)
    c = interpolate_pos_embed(pos, 3, 6, antialias=True, offset=0.0)
    assert not torch.allclose(a, b) and not torch.allclose(b, c)


def test_interpolation_defaults_follow_register_count() -> None:
    plain = DinoV2("custom", embed_dim=32, depth=1, num_heads=2, img_size=56)
    reg = DinoV2("custom", num_register_tokens=4, embed_dim=32, depth=1, num_heads=2, img_size=56)
    assert (plain.config["interpolate_antialias"], plain.config["interpolate_offset"]) == (False, 0.1)
    assert (reg.config["interpolate_antialias"], reg.config["interpolate_offset"]) == (True, 0.0)


def _tiny(registers: int = 0) -> DinoV2:
    torch.manual_seed(0)
    return DinoV2(
        "custom", num_register_tokens=registers, embed_dim=32, depth=3, num_heads=2, img_size=56
    ).eval()


def test_token_layout_and_shape_errors() -> None:
    model = _tiny(registers=2)
    assert model.num_prefix_tokens == 3
    images = _images((28, 42))
    tokens = model.prepare_tokens(images)
    assert tokens.shape == (2, 1 + 2 + 6, 32)
    # Registers carry no position embedding and are the same for every image.
    assert torch.equal(tokens[:, 1:3], model.register_tokens.expand(2, -1, -1))
    assert torch.equal(tokens[0, 0], tokens[1, 0])  # class token does not depend on the image
    with pytest.raises(ValueError, match=r"multiples of the patch size 14, got 50x56"):
        model.prepare_tokens(torch.zeros(1, 3, 50, 56))
    with pytest.raises(ValueError, match=r"multiples of the patch size 14"):
        model(torch.zeros(1, 3, 56, 13))
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, H, W\)"):
        model(torch.zeros(1, 1, 56, 56))


def test_blocks_reproduce_forward() -> None:
    """The Causal-Tune wrapper drives the public pieces itself: prepare_tokens, each block, norm."""
    model = _tiny(registers=4)
    images = _images((42, 56))
    with torch.no_grad():
        x = model.prepare_tokens(images)
        for block in model.blocks:
            x = block(x)
        assert torch.equal(model.norm(x), model(images))


def test_intermediate_layers() -> None:
    model = _tiny(registers=4)
    images = _images((42, 56))  # 3 x 4 patches
    with torch.no_grad():
        full = model(images)
        last_two = model.get_intermediate_layers(images, 2)
        picked = model.get_intermediate_layers(images, [0, -1], reshape=True)
        raw = model.get_intermediate_layers(images, [1], norm=False)
        pairs = model.get_intermediate_layers(images, 1, return_class_token=True)
    assert len(last_two) == 2 and all(t.shape == (2, 12, 32) for t in last_two)
    assert torch.equal(last_two[1], full[:, 5:])  # last layer, normalised, prefix tokens dropped
    assert len(picked) == 2 and all(t.shape == (2, 32, 3, 4) for t in picked)
    # Patch token (row 1, column 2) is token 1 * 4 + 2 of the sequence.
    assert torch.equal(picked[1][:, :, 1, 2], full[:, 5 + 1 * 4 + 2])
    assert not torch.allclose(raw[0], model.norm(raw[0]))
    patches, cls = pairs[0]
    assert torch.equal(patches, full[:, 5:]) and torch.equal(cls, full[:, 0])
    for bad in (0, 4, [3], [-4], []):
        with pytest.raises(ValueError):
            model.get_intermediate_layers(images, bad)


def test_cached_position_embeddings() -> None:
    model = _tiny(registers=4)  # antialiased resampling: the case the TorchScript ONNX exporter lacks
    images, other = _images((42, 70)), _images((28, 28))
    with torch.no_grad():
        expected, expected_other = model(images), model(other)
        model.cache_pos_embed(42, 70)
        assert torch.equal(model(images), expected)
        assert torch.equal(model(other), expected_other)  # other sizes still resample
        assert not any("cache" in key for key in model.state_dict())  # not part of the weights
        model.pos_embed.mul_(2.0)
        assert torch.equal(model(images), expected)  # stale until recomputed, as documented
        model.cache_pos_embed(42, 70)
        assert not torch.equal(model(images), expected)
    with pytest.raises(ValueError, match="multiples of the patch size"):
        model.cache_pos_embed(40, 70)


def test_gradient_reaches_the_tokens() -> None:
    # Causal-Tune trains through the frozen backbone: gradients must flow through the blocks.
    model = _tiny().requires_grad_(False)
    tokens = model.prepare_tokens(_images(NATIVE)).requires_grad_(True)
    out = tokens
    for block in model.blocks:
        out = block(out)
    model.norm(out).square().mean().backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0


def test_official_architectures_match_transformers_parameter_counts() -> None:
    configs = {
        "vits14": (384, 12, 6, False),
        "vitb14": (768, 12, 12, False),
        "vitl14": (1024, 24, 16, False),
        "vitg14": (1536, 40, 24, True),
    }
    for arch, (hidden, layers, heads, swiglu) in configs.items():
        with torch.device("meta"):  # shapes only, no memory
            ours = DinoV2(arch)
            hf = transformers.Dinov2Model(
                transformers.Dinov2Config(
                    hidden_size=hidden,
                    num_hidden_layers=layers,
                    num_attention_heads=heads,
                    image_size=518,
                    patch_size=14,
                    use_swiglu_ffn=swiglu,
                )
            )
        assert (ours.embed_dim, ours.depth, ours.num_heads, ours.patch_size) == (hidden, layers, heads, 14)
        assert ours.pos_embed.shape == (1, 1 + 37 * 37, hidden)
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters()), arch
    with torch.device("meta"):
        giant = DinoV2("vitg14")
    assert giant.blocks[0].mlp.w12.weight.shape == (2 * 4096, 1536)  # SwiGLU: 2/3 of 4 x 1536, x8


def test_config_round_trip_and_arch_names() -> None:
    model = DinoV2("dinov2_vitb14_reg4", depth=2, img_size=28)
    assert (model.arch, model.num_register_tokens, model.embed_dim, model.depth) == ("vitb14", 4, 768, 2)
    config = json.loads(json.dumps(model.config))  # JSON-able
    rebuilt = DinoV2(**config)
    assert rebuilt.config == model.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    with pytest.raises(ConfigError, match="unknown DINOv2 architecture 'vitx14'"):
        DinoV2("vitx14")
    with pytest.raises(ConfigError, match="implies 4 register tokens"):
        DinoV2("vits14_reg4", num_register_tokens=2)
    with pytest.raises(ConfigError, match="unknown DinoV2 option"):
        DinoV2("vits14", hidden_size=10)
    with pytest.raises(ConfigError, match="needs embed_dim, depth, num_heads"):
        DinoV2("custom")
    with pytest.raises(ConfigError, match="must divide embed_dim"):
        DinoV2("vits14", num_heads=5, depth=1)
