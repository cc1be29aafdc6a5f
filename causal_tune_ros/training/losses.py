"""Training losses: per-pixel cross-entropy for dense heads, Mask2Former's set criterion for mask heads.

:func:`segmentation_loss` is the one entry point a train loop needs: it looks at what the model returned
(a logits tensor from :class:`~causal_tune_ros.model.heads.LightHead`, or the training-mode dict of
:class:`~causal_tune_ros.model.mask2former_head.Mask2FormerHead`) and applies the matching loss.

:class:`SetCriterion` follows Mask2Former (Cheng et al., CVPR 2022):

- Targets come from the semantic label map: one binary mask per class present in the image (ignore
  pixels excluded), :func:`semantic_targets`.
- Each prediction layer (the final one and every ``aux_outputs`` entry: deep supervision) is matched to the
  targets one-to-one by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on
  ``2 * (-p(class)) + 5 * BCE + 5 * dice``, the mask terms evaluated on sampled points.
- Losses: class cross-entropy over all queries (unmatched ones -> "no object", weight 0.1), and for the
  matched pairs sigmoid BCE and dice on the points, summed over masks and divided by the number of target
  masks in the batch; weights 2 / 5 / 5.

Point sampling: ``num_points`` points per image, uniform over the image (Mask2Former uses importance
sampling for the loss; uniform points are cheaper and unbiased). Predictions are read bilinearly
(``grid_sample``, ``align_corners=False``), targets at the label pixel containing the point; points that
land on ignore pixels weigh nothing. One set of points per image and call, shared by the matcher and the
loss of every layer. Randomness comes from ``generator`` when given (deterministic), else from the global
torch RNG of the prediction's device (so a trainer that restores RNG states resumes exactly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from causal_tune_ros.errors import ConfigError

__all__ = [
    "SemanticTargets",
    "SetCriterion",
    "cross_entropy_loss",
    "hungarian_match",
    "matching_cost",
    "segmentation_loss",
    "semantic_targets",
]

#: Default point count per image: 112 x 112, Mask2Former's.
DEFAULT_NUM_POINTS = 12544


class SemanticTargets(NamedTuple):
    """The mask targets of one image."""

    classes: torch.Tensor  # (N,) int64 class ids present, ascending
    masks: torch.Tensor  # (N, H, W) bool, one mask per class
    valid: torch.Tensor  # (H, W) bool, False on ignore pixels


def _check_labels(labels: torch.Tensor) -> None:
    if not isinstance(labels, torch.Tensor) or labels.ndim != 3:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a (B, H, W) integer tensor of class ids, got {shape}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")


def semantic_targets(labels: torch.Tensor, ignore_index: int = 255) -> list[SemanticTargets]:
    """Split semantic label maps into per-class binary masks (Mask2Former's semantic targets).

    Args:
        labels: (B, H, W) integer class ids; ``ignore_index`` marks unlabelled pixels.
        ignore_index: The ignore id.

    Returns:
        One :class:`SemanticTargets` per image; an image with no labelled pixel has ``N = 0``.

    Raises:
        ValueError: For a tensor that is not (B, H, W) integer.
    """
    _check_labels(labels)
    targets = []
    for label in labels:
        valid = label != ignore_index
        classes = torch.unique(label[valid])
        targets.append(SemanticTargets(classes.long(), label.unsqueeze(0) == classes.view(-1, 1, 1), valid))
    return targets


def cross_entropy_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Per-pixel cross-entropy of dense logits, resized bilinearly to the label size.

    Args:
        logits: (B, K, h, w) class logits at any resolution.
        labels: (B, H, W) integer class ids.
        ignore_index: Label id that contributes nothing.

    Returns:
        Scalar: the mean over labelled pixels (0, not NaN, for a batch without any).

    Raises:
        ValueError: For badly shaped inputs.
    """
    _check_labels(labels)
    if logits.ndim != 4 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits must be (B, K, h, w) with B = {labels.shape[0]}, got {tuple(logits.shape)}")
    logits = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
    total = F.cross_entropy(logits, labels.long(), ignore_index=ignore_index, reduction="sum")
    return total / (labels != ignore_index).sum().clamp_min(1)


@torch.no_grad()
def matching_cost(
    pred_logits: torch.Tensor,
    point_logits: torch.Tensor,
    target_classes: torch.Tensor,
    target_points: torch.Tensor,
    point_valid: torch.Tensor,
    class_weight: float = 2.0,
    mask_weight: float = 5.0,
    dice_weight: float = 5.0,
) -> torch.Tensor:
    """Mask2Former's matching cost between the queries and the targets of one image.

    Args:
        pred_logits: (Q, K + 1) class logits.
        point_logits: (Q, P) mask logits at the sampled points.
        target_classes: (N,) class ids.
        target_points: (N, P) target mask values (0 / 1) at the points.
        point_valid: (P,) True where the point is labelled.
        class_weight: Weight of ``-p(target class)``.
        mask_weight: Weight of the mean sigmoid BCE over the labelled points.
        dice_weight: Weight of the dice cost ``1 - (2 |p t| + 1) / (|p| + |t| + 1)``.

    Returns:
        (Q, N) float32 cost matrix.
    """
    logits = point_logits.float()
    valid = point_valid.float()
    targets = target_points.float() * valid
    cost_class = -pred_logits.float().softmax(-1)[:, target_classes]
    # BCE(x, t) = t softplus(-x) + (1 - t) softplus(x), as two matrix products over the points.
    pos = F.softplus(-logits) * valid
    neg = F.softplus(logits) * valid
    cost_mask = (pos @ targets.T + neg @ ((1.0 - targets) * valid).T) / valid.sum().clamp_min(1.0)
    probs = logits.sigmoid() * valid
    cost_dice = 1.0 - (2.0 * probs @ targets.T + 1.0) / (probs.sum(-1, keepdim=True) + targets.sum(-1) + 1.0)
    return class_weight * cost_class + mask_weight * cost_mask + dice_weight * cost_dice


def hungarian_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-cost one-to-one assignment of targets (columns) to queries (rows).

    Args:
        cost: (Q, N) cost matrix, Q >= N (every target gets a query).

    Returns:
        ``(query_index, target_index)``, int64 CPU tensors of length N, sorted by query index.

    Raises:
        ConfigError: If there are more targets than queries (``num_queries`` below the class count).
        ValueError: If the costs are not finite.
    """
    if cost.ndim != 2:
        raise ValueError(f"cost must be a (Q, N) matrix, got shape {tuple(cost.shape)}")
    if cost.shape[1] > cost.shape[0]:
        raise ConfigError(
            f"{cost.shape[1]} targets but only {cost.shape[0]} queries: "
            "raise num_queries above the class count"
        )
    matrix = cost.detach().float().cpu().numpy()
    if not np.isfinite(matrix).all():
        raise ValueError("matching cost has NaN or Inf entries (diverged predictions?)")
    rows, cols = linear_sum_assignment(matrix)
    return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)


class SetCriterion(nn.Module):
    """Mask2Former's loss: Hungarian matching, class CE + mask BCE + dice, deep supervision.

    Args:
        num_classes: Semantic classes ``K`` (the predictions have ``K + 1`` class logits).
        class_weight: Weight of the class loss and cost (2.0).
        mask_weight: Weight of the mask BCE loss and cost (5.0).
        dice_weight: Weight of the dice loss and cost (5.0).
        no_object_weight: Cross-entropy weight of the "no object" class (0.1).
        num_points: Points sampled per image for the mask terms.
        ignore_index: Label id of unlabelled pixels.
        generator: Source of the point positions (``None``: the global RNG of the predictions' device).

    Raises:
        ConfigError: For a non-positive ``num_classes`` / ``num_points`` or negative weights.
    """

    def __init__(
        self,
        num_classes: int,
        class_weight: float = 2.0,
        mask_weight: float = 5.0,
        dice_weight: float = 5.0,
        no_object_weight: float = 0.1,
        num_points: int = DEFAULT_NUM_POINTS,
        ignore_index: int = 255,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if num_classes <= 0 or num_points <= 0:
            raise ConfigError(f"num_classes and num_points must be positive, got {num_classes}, {num_points}")
        weights = (class_weight, mask_weight, dice_weight, no_object_weight)
        if min(weights) < 0:
            raise ConfigError(f"loss weights must be >= 0, got {weights}")
        self.num_classes = int(num_classes)
        self.class_weight = float(class_weight)
        self.mask_weight = float(mask_weight)
        self.dice_weight = float(dice_weight)
        self.no_object_weight = float(no_object_weight)
        self.num_points = int(num_points)
        self.ignore_index = int(ignore_index)
        self.generator = generator
        empty_weight = torch.ones(self.num_classes + 1)
        empty_weight[-1] = self.no_object_weight
        self.register_buffer("empty_weight", empty_weight, persistent=False)

    def _points(self, batch: int, device: torch.device) -> torch.Tensor:
        """(B, P, 2) point positions (x, y) in [0, 1)."""
        if self.generator is None:
            return torch.rand(batch, self.num_points, 2, device=device)
        return torch.rand(
            batch, self.num_points, 2, generator=self.generator, device=self.generator.device
        ).to(device)

    def _check_outputs(self, outputs: Mapping[str, Any], batch: int) -> None:
        for key in ("pred_logits", "pred_masks"):
            if not isinstance(outputs.get(key), torch.Tensor):
                raise ValueError(f"outputs need a {key!r} tensor (a Mask2FormerHead in training mode)")
        logits, masks = outputs["pred_logits"], outputs["pred_masks"]
        if logits.ndim != 3 or logits.shape[-1] != self.num_classes + 1:
            raise ValueError(
                f"pred_logits must be (B, Q, {self.num_classes + 1}) for {self.num_classes} classes, got "
                f"{tuple(logits.shape)}"
            )
        if masks.ndim != 4 or masks.shape[:2] != logits.shape[:2] or logits.shape[0] != batch:
            raise ValueError(
                f"pred_masks must be (B, Q, h, w) matching pred_logits {tuple(logits.shape)} and "
                f"{batch} label maps, got {tuple(masks.shape)}"
            )

    def forward(self, outputs: Mapping[str, Any], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Match and score every prediction layer.

        Args:
            outputs: ``{"pred_logits": (B, Q, K + 1), "pred_masks": (B, Q, h, w), "aux_outputs": [...]}``
                (``aux_outputs`` optional), any resolution ``(h, w)``.
            labels: (B, H, W) integer class ids, ``ignore_index`` for unlabelled pixels.

        Returns:
            ``"loss"`` (the weighted total over all layers, the value to back-propagate), and the final
            layer's unweighted ``"loss_ce"``, ``"loss_mask"``, ``"loss_dice"``.

        Raises:
            ValueError: For malformed outputs or labels, class ids >= ``num_classes`` (other than the ignore
                id).
            ConfigError: More classes in an image than queries.
        """
        _check_labels(labels)
        layers = [outputs, *outputs.get("aux_outputs", ())]
        for layer in layers:
            self._check_outputs(layer, labels.shape[0])
        targets = semantic_targets(labels, self.ignore_index)
        for t in targets:
            if t.classes.numel() and int(t.classes.max()) >= self.num_classes:
                raise ValueError(
                    f"label id {int(t.classes.max())} is out of range for {self.num_classes} classes "
                    f"(ignore id {self.ignore_index})"
                )
        device = outputs["pred_masks"].device
        B, (H, W) = labels.shape[0], labels.shape[-2:]
        points = self._points(B, device)
        # Target values at the label pixel containing each point.
        iy = (points[..., 1] * H).long().clamp_(max=H - 1)
        ix = (points[..., 0] * W).long().clamp_(max=W - 1)
        target_points = [t.masks[:, y, x] for t, y, x in zip(targets, iy, ix, strict=True)]
        point_valid = [t.valid[y, x] for t, y, x in zip(targets, iy, ix, strict=True)]
        grid = (2.0 * points - 1.0).unsqueeze(1)  # (B, 1, P, 2) in grid_sample's [-1, 1]
        num_masks = max(sum(int(t.classes.numel()) for t in targets), 1)

        total = torch.zeros((), device=device)
        parts: dict[str, torch.Tensor] = {}
        for k, layer in enumerate(layers):
            terms = self._layer_loss(layer, targets, grid, target_points, point_valid, num_masks)
            total = total + (
                self.class_weight * terms[0] + self.mask_weight * terms[1] + self.dice_weight * terms[2]
            )
            if k == 0:
                parts = {"loss_ce": terms[0], "loss_mask": terms[1], "loss_dice": terms[2]}
        return {"loss": total, **parts}

    def _layer_loss(
        self,
        layer: Mapping[str, Any],
        targets: Sequence[SemanticTargets],
        grid: torch.Tensor,
        target_points: Sequence[torch.Tensor],
        point_valid: Sequence[torch.Tensor],
        num_masks: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = layer["pred_logits"].float()
        masks = layer["pred_masks"].float()
        B, Q = logits.shape[:2]
        point_logits = F.grid_sample(masks, grid, mode="bilinear", align_corners=False).squeeze(
            2
        )  # (B, Q, P)

        classes = torch.full((B, Q), self.num_classes, dtype=torch.int64, device=logits.device)
        matched_logits, matched_targets, matched_valid = [], [], []
        for b, t in enumerate(targets):
            if t.classes.numel() == 0:
                continue
            cost = matching_cost(
                logits[b],
                point_logits[b],
                t.classes,
                target_points[b],
                point_valid[b],
                self.class_weight,
                self.mask_weight,
                self.dice_weight,
            )
            rows, cols = hungarian_match(cost)
            rows, cols = rows.to(logits.device), cols.to(logits.device)
            classes[b, rows] = t.classes[cols]
            matched_logits.append(point_logits[b, rows])
            matched_targets.append(target_points[b][cols])
            matched_valid.append(point_valid[b].expand(len(rows), -1))

        loss_ce = F.cross_entropy(logits.transpose(1, 2), classes, weight=self.empty_weight.to(logits.device))
        if not matched_logits:
            zero = point_logits.sum() * 0.0  # keeps the graph connected (DDP needs every parameter used)
            return loss_ce, zero, zero
        x = torch.cat(matched_logits)
        t = torch.cat(matched_targets).float()
        v = torch.cat(matched_valid).float()
        bce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
        loss_mask = ((bce * v).sum(-1) / v.sum(-1).clamp_min(1.0)).sum() / num_masks
        p = x.sigmoid() * v
        t = t * v
        loss_dice = (1.0 - (2.0 * (p * t).sum(-1) + 1.0) / (p.sum(-1) + t.sum(-1) + 1.0)).sum() / num_masks
        return loss_ce, loss_mask, loss_dice


def segmentation_loss(
    outputs: torch.Tensor | Mapping[str, Any],
    labels: torch.Tensor,
    ignore_index: int = 255,
    criterion: SetCriterion | None = None,
) -> torch.Tensor:
    """The training loss for whatever the segmenter returned.

    Args:
        outputs: Dense logits (B, K, h, w) (``LightHead``) -> :func:`cross_entropy_loss`; or a training-mode
            ``Mask2FormerHead`` dict with ``pred_logits`` / ``pred_masks`` -> :class:`SetCriterion`.
        labels: (B, H, W) integer class ids.
        ignore_index: Label id of unlabelled pixels.
        criterion: The set criterion to use for dict outputs; ``None`` builds one with the paper's weights
            for the number of classes in ``pred_logits`` (points from the global RNG).

    Returns:
        Scalar loss to back-propagate.

    Raises:
        ValueError: For outputs of another type or malformed inputs.
    """
    if isinstance(outputs, torch.Tensor):
        return cross_entropy_loss(outputs, labels, ignore_index)
    if isinstance(outputs, Mapping) and "pred_logits" in outputs:
        if criterion is None:
            logits = outputs["pred_logits"]
            criterion = SetCriterion(int(logits.shape[-1]) - 1, ignore_index=ignore_index)
        return criterion(outputs, labels)["loss"]
    raise ValueError(
        "segmentation_loss takes dense logits (B, K, h, w) or a Mask2FormerHead training dict "
        f"(pred_logits, pred_masks), got {type(outputs).__name__}"
    )
