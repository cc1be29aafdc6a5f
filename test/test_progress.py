"""One progress facility on tqdm: a bar on a terminal, log lines elsewhere, silence when disabled."""

from __future__ import annotations

import io

import pytest

from causal_tune_ros.progress import format_duration, progress_bar


def test_log_lines_off_a_terminal() -> None:
    log = io.StringIO()
    with progress_bar(4, "replay", unit="frame", stream=log, tty=False, log_interval=0.0) as bar:
        for _ in range(4):
            bar.update()
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and text.endswith("\n")
    assert all(line.startswith("replay ") for line in lines)
    assert "4/4 100%" in lines[-1] and "frame/s" in lines[-1] and "ETA 00:00" in lines[-1]
    assert len(lines) >= 4  # one line per update at interval 0


def test_unknown_total_has_no_percentage_and_no_eta() -> None:
    log = io.StringIO()
    with progress_bar(None, "replay", unit="frame", stream=log, tty=False, log_interval=0.0) as bar:
        bar.update(2)
    last = log.getvalue().splitlines()[-1]
    assert last.startswith("replay 2 frames") and "ETA" not in last and "%" not in last


def test_log_lines_are_spaced_by_the_interval() -> None:
    log = io.StringIO()
    with progress_bar(100, "job", stream=log, tty=False, log_interval=3600.0) as bar:
        for _ in range(100):
            bar.update()
    lines = log.getvalue().splitlines()
    # The first line when it starts and the final one when it closes; nothing in between within an hour.
    assert len(lines) == 2 and lines[0].startswith("job 0/100") and lines[1].startswith("job 100/100")


def test_bar_on_a_terminal_is_redrawn_in_place() -> None:
    tty = io.StringIO()
    with progress_bar(4, "replay", unit="frame", stream=tty, tty=True) as bar:
        bar.update(2)
        bar.set_postfix_str("bags 1/2")
    text = tty.getvalue()
    assert text.startswith("\rreplay:") and "2/4" in text and "bags 1/2" in text
    assert text.count("\n") == 1  # one line, redrawn in place, ended when closed


def test_disabled_prints_nothing() -> None:
    out = io.StringIO()
    for tty in (True, False):
        with progress_bar(4, "replay", stream=out, tty=tty, enabled=False) as bar:
            bar.update(4)
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(75.2, "01:15"), (3725, "1:02:05"), (0, "00:00"), (float("inf"), "--:--"), (-1, "--:--")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
