"""Evaluation results as Markdown and CSV tables (per condition, per class), and the files holding them."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from causal_tune_ros.training.eval_result import ALL, MEAN, EvalResult


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100.0 * value:.1f}"


def format_condition_table(results: Sequence[EvalResult]) -> str:
    """Markdown table: one row per condition, ``mean`` (mean of the condition mIoUs) and ``all`` (pooled
    pixels), one column group (mIoU, pixel acc.) per band.

    Args:
        results: Results on the same data set (e.g. from :func:`evaluate_bands`).

    Returns:
        The table, values in percent.
    """
    keys = _condition_keys(results)
    header = ["condition", "images"]
    for r in results:
        header += [f"{r.label} mIoU", f"{r.label} aAcc"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in keys:
        if key == MEAN:
            row = [MEAN, str(results[0].num_images.get(ALL, 0))]
            for r in results:
                row += [_pct(r.mean_miou()), "-"]
            lines.append("| " + " | ".join(row) + " |")
            continue
        row = [key, str(results[0].num_images.get(key, 0))]
        for r in results:
            if key in r.matrices:
                row += [_pct(r.miou(key)), _pct(r.pixel_accuracy(key))]
            else:
                row += ["-", "-"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def format_class_table(results: Sequence[EvalResult], condition: str = ALL) -> str:
    """Markdown table of per-class IoU (percent) for one condition, one column per band setting."""
    header = ["class", *(r.label for r in results)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ious = [r.iou(condition) for r in results]
    for c, name in enumerate(results[0].class_names):
        lines.append("| " + " | ".join([name, *(_pct(iou[c]) for iou in ious)]) + " |")
    lines.append("| **mIoU** | " + " | ".join(_pct(r.miou(condition)) for r in results) + " |")
    return "\n".join(lines)


def _condition_keys(results: Sequence[EvalResult]) -> list[str]:
    return [*results[0].conditions, MEAN, ALL]


def format_markdown(results: Sequence[EvalResult], title: str | None = None) -> str:
    """A Markdown report: the per-condition table and the per-class table over all conditions."""
    name = title or results[0].dataset or "evaluation"
    parts = [
        f"## {name}",
        "",
        "Per condition (percent; aAcc = pixel accuracy):",
        "",
        format_condition_table(results),
        "",
        "Per-class IoU over all conditions (percent):",
        "",
        format_class_table(results),
        "",
    ]
    return "\n".join(parts)


CSV_FIELDS = ("dataset", "band", "r_low", "r_high", "condition", "images", "miou", "pixel_accuracy")


def format_csv(results: Sequence[EvalResult]) -> str:
    """CSV text: one row per (band setting, condition) with mIoU, pixel accuracy and every class IoU.

    Values are fractions in [0, 1] (empty for a class that never occurs). The ``mean`` row holds the mean
    of the condition mIoUs only (its pixel accuracy and class IoUs are empty); ``all`` pools the pixels.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    class_names = results[0].class_names
    writer.writerow([*CSV_FIELDS, *(f"iou_{n.replace(' ', '_')}" for n in class_names)])
    for r in results:
        low, high = ("", "") if r.band is None else r.band.as_tuple()
        for key in _condition_keys([r]):
            if key == MEAN:
                mean = r.mean_miou()
                writer.writerow(
                    [
                        r.dataset,
                        r.label,
                        low,
                        high,
                        MEAN,
                        r.num_images[ALL],
                        "" if math.isnan(mean) else f"{mean:.6f}",
                    ]
                    + [""] * (1 + len(class_names))
                )
                continue
            ious = ["" if math.isnan(v) else f"{v:.6f}" for v in r.iou(key)]
            writer.writerow(
                [
                    r.dataset,
                    r.label,
                    low,
                    high,
                    key,
                    r.num_images[key],
                    f"{r.miou(key):.6f}",
                    f"{r.pixel_accuracy(key):.6f}",
                    *ious,
                ]
            )
    return buf.getvalue()


def write_tables(
    results: Sequence[EvalResult], out_dir: str | Path, stem: str = "results"
) -> dict[str, Path]:
    """Write ``<stem>.md`` and ``<stem>.csv`` into ``out_dir`` (created if needed).

    Returns:
        ``{"markdown": path, "csv": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, cs = out / f"{stem}.md", out / f"{stem}.csv"
    md.write_text(format_markdown(results), encoding="utf-8")
    cs.write_text(format_csv(results), encoding="utf-8")
    return {"markdown": md, "csv": cs}
