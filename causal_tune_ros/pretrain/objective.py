"""Pretext objectives of the pocket backbone: dense geometry, de-weathering and cross-weather consistency.

One training example is a scene seen twice, through its clear view and through one weather view (snow,
rain, fog or night, drawn at random), with the same crop and flip. Both views go through the backbone;
small linear heads on the patch tokens (discarded after pretraining) predict, per patch:

* ``geometry``: the patch's log depth and surface normals on a coarse sub-grid (``geometry_targets``);
* ``clear_pixels``: the clear view's pixels on that sub-grid (de-weathering: from a night view, say);
* ``masked_pixels``: the view's own pixels at masked patches (masked image modelling, SimMIM-style:
  masked patches are replaced by the backbone's ``mask_token``), used only when ``mask_ratio > 0``;
* ``consistency``: the weather view's token features at the layers a segmentation head reads match the
  clear view's (stop-gradient on the clear side), per patch: the same geometry, so the same place.

None of the targets reads a label map. The loss is the weighted sum of the enabled terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros.model import DinoV2, evenly_spaced_layers

#: ImageNet statistics (the backbone's input normalisation, as in the segmenter).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ObjectiveWeights:
    """Weights of the pretext terms (0 disables a term).

    Attributes:
        geometry: Log depth + normals regression.
        clear_pixels: Clear-view pixel regression from either view.
        masked_pixels: Own-view pixel regression at masked patches.
        consistency: Weather-view features -> clear-view features (stop-gradient).
        mask_ratio: Fraction of patches masked in every view (0: no masking).
        sub_grid: Side of the per-patch target grid (patch 14 -> ``sub_grid`` x ``sub_grid`` cells).
    """

    geometry: float = 1.0
    clear_pixels: float = 1.0
    masked_pixels: float = 0.0
    consistency: float = 1.0
    mask_ratio: float = 0.0
    sub_grid: int = 7


def _to_cells(x: torch.Tensor, patch: int, sub: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C * sub * sub): each patch averaged onto a sub x sub grid, row-major patches."""
    b, c, h, w = x.shape
    x = F.adaptive_avg_pool2d(x, (h // patch * sub, w // patch * sub))
    gh, gw = h // patch, w // patch
    x = x.reshape(b, c, gh, sub, gw, sub).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, gh * gw, c * sub * sub)


class PretrainNet(nn.Module):
    """A :class:`DinoV2` backbone with the pretext heads.

    Args:
        backbone: The backbone being pretrained (its weights are the product).
        weights: The objective (:class:`ObjectiveWeights`).
    """

    def __init__(self, backbone: DinoV2, weights: ObjectiveWeights) -> None:
        super().__init__()
        self.backbone = backbone
        self.weights = weights
        dim = backbone.embed_dim
        cells = weights.sub_grid**2
        # The blocks the default light head reads (each once, even for shallow models).
        self.layers = sorted(set(evenly_spaced_layers(backbone.depth)))
        self.geometry_head = nn.Linear(dim, 4 * cells)
        self.pixel_head = nn.Linear(dim, 3 * cells)
        self.masked_head = nn.Linear(dim, 3 * cells)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def features(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Patch tokens after each block in ``self.layers``; the last one after the final norm.

        Args:
            images: (B, 3, H, W) RGB in [0, 1].
            mask: Optional (B, N) bool, True where the patch embedding is replaced by ``mask_token``.

        Returns:
            One (B, N, C) tensor per layer in ``self.layers``.
        """
        bb = self.backbone
        x = (images - self.mean) / self.std
        b, _, h, w = x.shape
        gh, gw = bb.feature_grid(h, w)
        pos = bb.interpolate_pos_encoding(gh, gw)
        patches = bb.patch_embed(x)
        if mask is not None:
            patches = torch.where(mask[..., None], bb.mask_token.to(patches.dtype)[None], patches)
        tokens = torch.cat([(bb.cls_token + pos[:, :1]).expand(b, -1, -1), patches + pos[:, 1:]], dim=1)
        if bb.num_register_tokens:
            tokens = torch.cat([tokens[:, :1], bb.register_tokens.expand(b, -1, -1), tokens[:, 1:]], dim=1)
        out = []
        for i, block in enumerate(bb.blocks):
            tokens = block(tokens)
            if i in self.layers:
                t = bb.norm(tokens) if i == bb.depth - 1 else tokens
                out.append(t[:, bb.num_prefix_tokens :])
        return out

    def loss(
        self, clear: torch.Tensor, weather: torch.Tensor, geometry: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The pretext loss of a batch of (clear view, weather view) pairs of the same scenes.

        Args:
            clear: (B, 3, H, W) clear views in [0, 1].
            weather: (B, 3, H, W) weather views of the same scenes, same crop; may equal ``clear``.
            geometry: (B, 4, H, W) geometry targets of those scenes.
            generator: Random source of the masks.

        Returns:
            ``(loss, {term: value})``.
        """
        w = self.weights
        p, sub = self.backbone.patch_size, w.sub_grid
        b = clear.shape[0]
        images = torch.cat([clear, weather], dim=0)
        n = (images.shape[2] // p) * (images.shape[3] // p)
        mask = None
        if w.mask_ratio > 0:
            scores = torch.rand(2 * b, n, generator=generator)
            k = max(1, round(w.mask_ratio * n))
            mask = scores.argsort(dim=1).argsort(dim=1) < k
        feats = self.features(images, mask)
        last = feats[-1]
        terms: dict[str, torch.Tensor] = {}
        if w.geometry > 0:
            target = _to_cells(geometry, p, sub).repeat(2, 1, 1)
            terms["geometry"] = F.smooth_l1_loss(self.geometry_head(last), target)
        if w.clear_pixels > 0:
            target = _to_cells((clear - self.mean) / self.std, p, sub).repeat(2, 1, 1)
            terms["clear_pixels"] = F.smooth_l1_loss(self.pixel_head(last), target)
        if w.masked_pixels > 0 and mask is not None:
            target = _to_cells((images - self.mean) / self.std, p, sub)
            err = F.smooth_l1_loss(self.masked_head(last), target, reduction="none").mean(-1)
            terms["masked_pixels"] = (err * mask).sum() / mask.sum().clamp(min=1)
        if w.consistency > 0:
            cons = []
            for f in feats:
                ref = F.layer_norm(f[:b].detach(), f.shape[-1:])
                cur = F.layer_norm(f[b:], f.shape[-1:])
                cons.append(1.0 - F.cosine_similarity(cur, ref, dim=-1).mean())
            terms["consistency"] = torch.stack(cons).mean()
        scale = {
            "geometry": w.geometry,
            "clear_pixels": w.clear_pixels,
            "masked_pixels": w.masked_pixels,
            "consistency": w.consistency,
        }
        total = sum(scale[k] * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}
