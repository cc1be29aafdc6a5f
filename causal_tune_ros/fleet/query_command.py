"""``causal-tune fleet query``: the frames of a fleet index that match a condition.

    causal-tune fleet query OUT --where "condition == 'snow' and drivable < 0.3"
    causal-tune fleet query OUT --where "share_person > 0.05" --columns bag topic stamp share_person --csv

``--where`` is a pandas ``DataFrame.query`` expression over the index columns (see
:mod:`causal_tune_ros.fleet.index`): ``==``, ``!=``, ``<``, ``and``, ``or``, ``not``, ``in [...]``,
backquoted names. The same index reads as well in pandas, pyarrow or DuckDB (docs/FLEET.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from causal_tune_ros.errors import FleetError
from causal_tune_ros.fleet.extra import require

HELP = "print the frames of a fleet index (OUT/index.parquet) that match a --where expression"

#: Columns printed unless ``--columns`` says otherwise.
DEFAULT_COLUMNS = ("bag", "topic", "stamp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``causal-tune fleet query``."""
    parser.add_argument("out", metavar="OUT", help="a fleet output folder, or its index.parquet")
    parser.add_argument(
        "--where",
        metavar="EXPR",
        help="pandas query expression over the index columns, e.g. "
        "\"condition == 'snow' and drivable < 0.3\" (default: every frame)",
    )
    parser.add_argument(
        "--columns",
        nargs="+",
        metavar="COLUMN",
        help=f"columns to print (default: {' '.join(DEFAULT_COLUMNS)}); 'all' prints every column",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="print at most N rows")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="print CSV")
    out.add_argument("--json", action="store_true", help="print one JSON object per line")


def index_path(out: str | Path) -> Path:
    """The index file of a fleet output folder (or the file itself).

    Raises:
        FleetError: If there is no index there.
    """
    path = Path(out)
    found = path / "index.parquet" if path.is_dir() else path
    if not found.is_file():
        raise FleetError(f"no fleet index at {found} (run causal-tune fleet ... -o {out} first)")
    return found


def query(out: str | Path, where: str | None = None, columns: list[str] | None = None) -> Any:
    """The index rows matching ``where``, as a pandas ``DataFrame``.

    Args:
        out: Fleet output folder or index file.
        where: A ``DataFrame.query`` expression (``None``: every row).
        columns: Columns to keep (``None``: :data:`DEFAULT_COLUMNS`; ``["all"]``: every column).

    Raises:
        FleetError: No index, the fleet extra is missing, an unknown column, or a bad expression.
    """
    pq = require("pyarrow.parquet")
    require("pandas")
    frame = pq.read_table(index_path(out)).to_pandas()
    names = list(frame.columns)
    wanted = list(DEFAULT_COLUMNS) if not columns else names if columns == ["all"] else list(columns)
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise FleetError(f"unknown column {', '.join(unknown)}; the index has: {', '.join(names)}")
    if where:
        try:
            frame = frame.query(where)
        except Exception as exc:  # UndefinedVariableError, SyntaxError, TypeError ... from pandas
            raise FleetError(
                f"cannot evaluate --where {where!r}: {exc}; the index has: {', '.join(names)}"
            ) from None
    return frame[wanted]


def run(args: argparse.Namespace) -> int:
    """Print the matching rows (and their count on stderr).

    Returns:
        0 (also when nothing matches).
    """
    if args.limit is not None and args.limit < 0:
        raise FleetError(f"--limit must be 0 or more, got {args.limit}")
    frame = query(args.out, args.where, args.columns)
    total = len(frame)
    if args.limit is not None:
        frame = frame.head(args.limit)
    if args.csv:
        frame.to_csv(sys.stdout, index=False)
    elif args.json:
        if len(frame):
            sys.stdout.write(frame.to_json(orient="records", lines=True).rstrip("\n") + "\n")
    elif len(frame):
        print(frame.to_string(index=False))
    sys.stdout.flush()  # the rows before the count when both streams go to one terminal
    print(f"{total} frames match", file=sys.stderr)
    return 0
