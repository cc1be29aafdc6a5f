"""Training losses: Hungarian matching against brute force, the matching cost term by term, semantic
targets, SetCriterion behaviour (perfect predictions, ignore pixels, deep supervision, determinism) and the
segmentation_loss dispatcher."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.training.losses import (
    SetCriterion,
    cross_entropy_loss,
    hungarian_match,
    matching_cost,
    segmentation_loss,
    semantic_targets,
)

K, IGNORE = 4, 255


def _labels() -> torch.Tensor:
    """Two 8 x 12 label maps: image 0 has classes 0, 2, 3 and an ignore band; image 1 only ignore pixels."""
    first = torch.zeros(8, 12, dtype=torch.long)
    first[:, 4:8] = 2
    first[5:, :] = 3
    first[:, 10:] = IGNORE
    second = torch.full((8, 12), IGNORE, dtype=torch.long)
    return torch.stack([first, second])


def _random_outputs(seed: int, queries: int = 6, size: tuple[int, int] = (4, 6)) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "pred_logits": torch.randn(2, queries, K + 1, generator=gen),
        "pred_masks": torch.randn(2, queries, *size, generator=gen),
    }


@pytest.mark.parametrize(("queries", "targets", "seed"), [(3, 3, 0), (5, 3, 1), (6, 4, 2), (4, 1, 3)])
def test_hungarian_match_equals_brute_force(queries: int, targets: int, seed: int) -> None:
    cost = torch.rand(queries, targets, generator=torch.Generator().manual_seed(seed))
    rows, cols = hungarian_match(cost)
    # Every injective assignment of targets to queries.
    best = min(
        itertools.permutations(range(queries), targets),
        key=lambda chosen: sum(float(cost[q, t]) for t, q in enumerate(chosen)),
    )
    assert sorted(zip(cols.tolist(), rows.tolist(), strict=True)) == list(enumerate(best))
    assert len(set(rows.tolist())) == targets


def test_hungarian_match_rejects_more_targets_than_queries_and_nan() -> None:
    with pytest.raises(ConfigError, match="num_queries"):
        hungarian_match(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        hungarian_match(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))


def test_semantic_targets_one_mask_per_present_class_without_ignore() -> None:
    labels = _labels()
    first, second = semantic_targets(labels, IGNORE)
    assert first.classes.tolist() == [0, 2, 3]
    for cls, mask in zip(first.classes, first.masks, strict=True):
        assert torch.equal(mask, labels[0] == cls)
    assert torch.equal(first.valid, labels[0] != IGNORE)
    assert not first.masks[:, :, 10:].any()  # the ignore band belongs to no mask
    assert second.classes.numel() == 0 and second.masks.shape == (0, 8, 12) and not second.valid.any()
    with pytest.raises(ValueError, match="integer"):
        semantic_targets(labels.float(), IGNORE)


def test_matching_cost_matches_its_definition_pair_by_pair() -> None:
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(5, K + 1, generator=gen)
    points = 3.0 * torch.randn(5, 40, generator=gen)
    classes = torch.tensor([1, 3])
    targets = (torch.rand(2, 40, generator=gen) > 0.5).float()
    valid = torch.rand(40, generator=gen) > 0.3
    cost = matching_cost(logits, points, classes, targets, valid, 2.0, 5.0, 5.0)
    probs = logits.softmax(-1)
    for q in range(5):
        for n in range(2):
            x, t = points[q, valid], targets[n, valid]
            bce = F.binary_cross_entropy_with_logits(x, t)
            p = x.sigmoid()
            dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
            expected = -2.0 * probs[q, classes[n]] + 5.0 * bce + 5.0 * dice
            torch.testing.assert_close(cost[q, n], expected, rtol=1e-5, atol=1e-5)


def _perfect_outputs(labels: torch.Tensor, order: list[int], queries: int = 6) -> dict[str, torch.Tensor]:
    """Queries ``order[i]`` predict the i-th present class of image 0 exactly; the rest say no object."""
    target = semantic_targets(labels, IGNORE)[0]
    logits = torch.full((2, queries, K + 1), -20.0)
    logits[:, :, K] = 20.0
    masks = torch.full((2, queries, *labels.shape[-2:]), -20.0)
    for i, q in enumerate(order):
        logits[0, q] = -20.0
        logits[0, q, target.classes[i]] = 20.0
        masks[0, q] = torch.where(target.masks[i], 20.0, -20.0)
    return {"pred_logits": logits, "pred_masks": masks}


def test_perfect_predictions_in_any_query_order_give_a_small_equal_loss() -> None:
    labels = _labels()
    criterion = SetCriterion(K, num_points=500, generator=torch.Generator().manual_seed(0))
    perfect = criterion(_perfect_outputs(labels, order=[4, 0, 2]), labels)
    # Swapping which queries hold which class must not matter: the matcher finds them.
    criterion.generator = torch.Generator().manual_seed(0)
    swapped = criterion(_perfect_outputs(labels, order=[1, 5, 3]), labels)
    assert torch.equal(perfect["loss"], swapped["loss"])
    assert float(perfect["loss_ce"]) < 1e-6
    # The mask terms are not exactly 0: points near a class boundary read a bilinear blend of +20 and -20.
    assert float(perfect["loss_mask"]) < 0.05 and float(perfect["loss_dice"]) < 0.05
    random_loss = SetCriterion(K, num_points=500, generator=torch.Generator().manual_seed(0))(
        _random_outputs(1, size=(8, 12)), labels
    )
    assert float(random_loss["loss"]) > 20 * float(perfect["loss"])


def test_ignore_pixels_do_not_affect_the_loss() -> None:
    labels = _labels()
    outputs = _random_outputs(12, size=(8, 12))

    def loss(out: dict[str, torch.Tensor]) -> torch.Tensor:
        return SetCriterion(K, num_points=400, generator=torch.Generator().manual_seed(3))(out, labels)[
            "loss"
        ]

    # Column 11 is only ever read (bilinearly) by points inside the ignore band (columns 10-11); image 1
    # is all ignore. Changing the mask predictions there must not change the loss at all.
    changed = {k: v.clone() for k, v in outputs.items()}
    changed["pred_masks"][0, :, :, 11] = 20.0
    changed["pred_masks"][1] = torch.randn(6, 8, 12)
    assert torch.equal(loss(changed), loss(outputs))
    labelled = {k: v.clone() for k, v in outputs.items()}
    labelled["pred_masks"][0, :, :, 2] = 20.0
    assert not torch.equal(loss(labelled), loss(outputs))


def test_deep_supervision_sums_the_layers_and_all_ignore_images_stay_finite() -> None:
    labels = _labels()
    final, aux = _random_outputs(5), _random_outputs(6)

    def loss(out: dict) -> torch.Tensor:
        return SetCriterion(K, num_points=300, generator=torch.Generator().manual_seed(1))(out, labels)[
            "loss"
        ]

    torch.testing.assert_close(loss({**final, "aux_outputs": [aux]}), loss(final) + loss(aux))

    only_ignore = torch.full_like(labels, IGNORE)
    outputs = {k: v.requires_grad_() for k, v in _random_outputs(7).items()}
    result = SetCriterion(K, num_points=100)(outputs, only_ignore)
    assert torch.isfinite(result["loss"]) and float(result["loss_mask"].detach()) == 0.0
    result["loss"].backward()
    # Every query was pushed towards "no object"; the masks are connected to the graph with zero gradient.
    assert outputs["pred_logits"].grad[..., K].lt(0).all()
    assert torch.equal(outputs["pred_masks"].grad, torch.zeros_like(outputs["pred_masks"]))


def test_points_are_deterministic_with_a_generator_and_the_global_rng() -> None:
    labels, outputs = _labels(), _random_outputs(8)

    def with_seed(seed: int) -> torch.Tensor:
        return SetCriterion(K, num_points=64, generator=torch.Generator().manual_seed(seed))(outputs, labels)[
            "loss"
        ]

    assert torch.equal(with_seed(0), with_seed(0))
    assert not torch.equal(with_seed(0), with_seed(1))
    torch.manual_seed(11)
    first = segmentation_loss(outputs, labels, IGNORE)
    torch.manual_seed(11)
    assert torch.equal(segmentation_loss(outputs, labels, IGNORE), first)


def test_criterion_rejects_malformed_inputs() -> None:
    labels, outputs = _labels(), _random_outputs(9)
    criterion = SetCriterion(K)
    with pytest.raises(ValueError, match="pred_logits must be"):
        SetCriterion(K + 1)(outputs, labels)
    with pytest.raises(ValueError, match="pred_masks"):
        criterion({"pred_logits": outputs["pred_logits"]}, labels)
    with pytest.raises(ValueError, match="out of range"):
        criterion(outputs, torch.full_like(labels, K))
    with pytest.raises(ConfigError, match="num_queries"):
        SetCriterion(K)(_random_outputs(9, queries=2), labels)
    with pytest.raises(ConfigError):
        SetCriterion(K, num_points=0)


def test_segmentation_loss_dispatches_on_the_output_type() -> None:
    labels = _labels()
    logits = torch.randn(2, K, 4, 6, generator=torch.Generator().manual_seed(10))
    dense = segmentation_loss(logits, labels, IGNORE)
    upsampled = F.interpolate(logits, size=(8, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(dense, F.cross_entropy(upsampled, labels, ignore_index=IGNORE))
    assert float(cross_entropy_loss(logits, torch.full_like(labels, IGNORE))) == 0.0  # no NaN

    outputs = _random_outputs(11)
    criterion = SetCriterion(K, num_points=128, generator=torch.Generator().manual_seed(2))
    expected = SetCriterion(K, num_points=128, generator=torch.Generator().manual_seed(2))(outputs, labels)
    assert torch.equal(segmentation_loss(outputs, labels, IGNORE, criterion=criterion), expected["loss"])
    with pytest.raises(ValueError, match="segmentation_loss takes"):
        segmentation_loss([logits], labels)  # type: ignore[arg-type]
