"""Cost of Causal-Tune over the frozen DINOv2 backbone, beside its analytic FLOP floor.

Usage::

    python bench/model_overhead.py [--height 518 --width 1036] [--iters 12] [--threads 1]
                                   [--no-hf] [--no-naive]

Builds a random ViT-S/14 (weights do not change the timing), the Causal-Tune segmenter on it (all 12
layers, 100 tokens, rank 16, LightHead with 19 classes) and, under ``torch.inference_mode`` after warmup,
times in interleaved rounds (the order rotates every round):

- ``backbone``: the frozen backbone producing the head's four LayerNormed feature maps
  (``get_intermediate_layers``), i.e. the same work as below without Causal-Tune;
- ``causal-tune``: ``model.features(images, band)``, backbone + Causal-Tune on every layer (normalisation,
  band-pass, refinement; the head is NOT included);
- ``head``: ``model.head`` alone on those features (reported separately);
- ``naive layout`` (``--no-naive`` skips): the same refinement written the straightforward way (permute to
  (B, C, H, W), DCT, mask multiply, back, full-rank tokens, unfused MLPs, residual and concatenation);
- ``ours`` vs ``transformers.Dinov2Model`` (``--no-hf`` skips): plain backbone forward (last hidden
  state) on the same random weights, loaded through a saved Hugging Face folder.

Ratios are of medians of the same run (the machine is shared and noisy; ratios travel better than
milliseconds), on CPU time (``time.thread_time``: other processes holding the cores do not count) and on
wall time; ``paired`` is the median of per-round CPU-time ratios.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable

import torch

from causal_tune_ros.model.band_pass import gaussian_band_pass
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.dct import dct_2d, idct_2d
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead

Timings = dict[str, dict[str, list[float]]]  # variant -> {"wall": [...], "cpu": [...]} seconds


def interleaved(fns: dict[str, Callable[[], object]], iters: int, warmup: int) -> Timings:
    """Run every function once per round, rotating the order; wall and CPU seconds per call.

    CPU time (``time.thread_time`` with one intra-op thread, where PyTorch computes in the calling thread;
    ``time.process_time``, i.e. summed over threads, otherwise) does not count the time other processes
    hold the cores, so ratios of CPU times stay meaningful on a busy shared machine.
    """
    clock = time.thread_time if torch.get_num_threads() == 1 else time.process_time
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: Timings = {name: {"wall": [], "cpu": []} for name in names}
    for round_index in range(iters):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), clock()
            fns[name]()
            times[name]["cpu"].append(clock() - cpu)
            times[name]["wall"].append(time.perf_counter() - wall)
    return times


def flop_floor(
    height: int, width: int, dim: int = 384, depth: int = 12, tokens: int = 100, rank: int = 16
) -> dict[str, object]:
    """Analytic multiply-accumulates (MACs) of ViT-S/14 and of Causal-Tune on every layer."""
    h, w = height // 14, width // 14
    n = h * w
    seq = n + 1
    per_block = 12 * seq * dim * dim + 2 * seq * seq * dim  # qkv 3, proj 1, MLP 8 (x N C^2); QK^T + AV
    backbone = depth * per_block + n * dim * 3 * 14 * 14  # + patch embedding
    mlp = n * dim * dim  # MLP_out on every frequency position
    attention = 2 * n * tokens * dim  # scores X T^T and S V, as written
    # As computed (exact rewrite, T = A B): (X B^T) A^T, then (S [A, 1]) [B W^T; c^T].
    attention_low_rank = n * (2 * rank + 1) * (dim + tokens)
    dct_pair = 2 * n * dim * (h + w)  # DCT (H then W contraction) + IDCT
    prepare = depth * 2 * rank * dim * dim  # value basis B W_tok^T W_out^T, once per forward
    return {
        "grid": (h, w),
        "backbone": backbone,
        "as_written": depth * (mlp + attention + dct_pair),
        "as_computed": depth * (mlp + attention_low_rank + dct_pair) + prepare,
        "mlp": depth * mlp,
        "attention": depth * attention,
        "attention_low_rank": depth * attention_low_rank,
        "dct": depth * dct_pair,
        "prepare": prepare,
    }


def naive_features(
    model: CausalTuneSegmenter, images: torch.Tensor, band: torch.Tensor
) -> list[torch.Tensor]:
    """``model.features`` with the refinement written the straightforward way (same math)."""
    backbone, tuner = model.backbone, model.tuner
    B, _, H, W = images.shape
    gh, gw = H // 14, W // 14
    prefix = backbone.num_prefix_tokens
    mask = gaussian_band_pass(gh, gw, band)
    tokens_all = tuner.tokens()
    x = backbone.prepare_tokens((images - model.pixel_mean) / model.pixel_std)
    out = []
    for i, block in enumerate(backbone.blocks):
        x = block(x)
        t = tokens_all[tuner.layers.index(i)]
        grid = x[:, prefix:].transpose(1, 2).reshape(B, -1, gh, gw)
        spec = (dct_2d(grid) * mask).flatten(2).transpose(1, 2)  # (B, N, C)
        attn = torch.softmax(spec @ t.t() / math.sqrt(t.shape[-1]), dim=-1)
        delta = tuner.mlp_out(attn @ tuner.mlp_token(t) + spec)
        update = idct_2d(delta.transpose(1, 2).reshape(B, -1, gh, gw)).flatten(2).transpose(1, 2)
        x = torch.cat((x[:, :prefix], x[:, prefix:] + tuner.scale * update), dim=1)
        if i in model.feature_layers:
            out.append(backbone.norm(x)[:, prefix:])
    return out


def report(label: str, times: Timings, base: str, others: list[str]) -> dict[str, float]:
    """Print medians and ratios to ``base``; return the CPU-time ratios."""
    med = {k: {kind: statistics.median(v[kind]) for kind in ("wall", "cpu")} for k, v in times.items()}
    print(f"\n{label}")
    for name, value in med.items():
        print(
            f"  {name:<34s} CPU median {value['cpu'] * 1e3:9.1f} ms   "
            f"wall median {value['wall'] * 1e3:9.1f} ms   wall min {min(times[name]['wall']) * 1e3:9.1f} ms"
        )
    ratios = {}
    for name in others:
        paired = statistics.median(a / b for a, b in zip(times[name]["cpu"], times[base]["cpu"], strict=True))
        ratios[name] = med[name]["cpu"] / med[base]["cpu"]
        print(
            f"  ratio {name} / {base}: CPU {ratios[name]:.4f} (paired {paired:.4f}), "
            f"wall {med[name]['wall'] / med[base]['wall']:.4f}"
        )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=518, help="multiple of 14")
    parser.add_argument("--width", type=int, default=1036, help="multiple of 14")
    parser.add_argument("--iters", type=int, default=12, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--no-hf", action="store_true", help="skip the transformers.Dinov2Model comparison")
    parser.add_argument("--no-naive", action="store_true", help="skip the straightforward-layout variant")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    backbone = DinoV2("vits14").eval()
    model = CausalTuneSegmenter(backbone, LightHead(384, 19)).eval()  # all layers, 100 tokens, rank 16
    images = torch.rand(1, 3, args.height, args.width)
    band = torch.tensor([0.2, 0.7])
    normalized = (images - model.pixel_mean) / model.pixel_std
    floor = flop_floor(args.height, args.width)
    layers = list(model.feature_layers)
    print(
        f"ViT-S/14 at {args.height}x{args.width} (grid {floor['grid'][0]}x{floor['grid'][1]}), batch 1, "
        f"float32, {torch.get_num_threads()} thread(s), torch {torch.__version__}; Causal-Tune on "
        f"{len(model.tuner.layers)} layers, {model.tuner.num_tokens} tokens, rank {model.tuner.rank}"
    )

    with torch.inference_mode():
        features = model.features(images, band)
        out_size = (args.height // 4, args.width // 4)
        fns: dict[str, Callable[[], object]] = {
            "backbone (frozen, 4 feature maps)": lambda: backbone.get_intermediate_layers(normalized, layers),
            "causal-tune (backbone + tuning)": lambda: model.features(images, band),
            "head (LightHead alone)": lambda: model.head(features, out_size),
        }
        if not args.no_naive:
            fns["causal-tune, naive layout"] = lambda: naive_features(model, images, band)
        times = interleaved(fns, args.iters, args.warmup)
    names = list(fns)
    ratios = report(
        "Causal-Tune overhead (head excluded from both; timed separately)", times, names[0], names[1:]
    )

    total = floor["backbone"]
    print("\nAnalytic FLOP floor (MACs; FLOPs = 2 x MACs), Causal-Tune on all layers vs the backbone:")
    print(f"  ViT-S/14 backbone                          {total / 1e9:8.2f} GMAC")
    for key, text in (
        ("mlp", "MLP_out on every position N C^2"),
        ("attention", "token attention as written 2 N m C"),
        ("attention_low_rank", "token attention low rank N (2r+1)(C+m)"),
        ("dct", "DCT + IDCT 2 N C (H + W)"),
        ("prepare", "token projections (once per forward)"),
    ):
        print(f"  {text:<43s}{floor[key] / 1e9:8.2f} GMAC  ({floor[key] / total:.2%})")
    measured = ratios[names[1]] - 1
    print(
        f"  floor as written (MLP + 2NmC + DCT pair): +{floor['as_written'] / total:.2%}; "
        f"as computed (low rank): +{floor['as_computed'] / total:.2%}; measured (CPU time): +{measured:.2%}"
    )

    if args.no_hf:
        return
    import transformers

    config = transformers.Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        image_size=518,
        patch_size=14,
        attn_implementation="sdpa",
    )
    hf = transformers.Dinov2Model(config).eval()
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        # offset 0: resample position embeddings exactly as transformers does (see dinov2.py).
        ours = DinoV2.from_pretrained(folder, interpolate_offset=0.0).eval()
    with torch.inference_mode():
        diff = (ours(normalized) - hf(pixel_values=normalized).last_hidden_state).abs().max().item()
        hf_fns: dict[str, Callable[[], object]] = {
            "transformers.Dinov2Model": lambda: hf(pixel_values=normalized).last_hidden_state,
            "ours (DinoV2.forward)": lambda: ours(normalized),
        }
        hf_times = interleaved(hf_fns, max(3, args.iters // 2), 1)
    report(
        f"Backbone vs transformers on the same weights (max |diff| {diff:.2e})",
        hf_times,
        "transformers.Dinov2Model",
        ["ours (DinoV2.forward)"],
    )


if __name__ == "__main__":
    main()
