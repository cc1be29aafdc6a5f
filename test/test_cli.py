"""``causal-tune`` itself: help that describes every command, ``--version``, and no heavy imports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from causal_tune_ros import __version__, cli


def test_help_describes_the_tool_and_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "Weather-robust road segmentation for ROS 2" in text
    assert "``causal-tune``" not in text and "see causal-tune" not in text  # no docstring, no placeholders
    assert "--version" in text
    for name, module_name in cli.SUBCOMMANDS.items():
        help_line = importlib.import_module(module_name).HELP
        assert cli.command_help(module_name) == help_line
        # argparse wraps long help lines: compare word by word.
        assert " ".join(help_line.split()[:4]) in " ".join(text.split()), name


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"causal-tune {__version__}"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert "commands:" in capsys.readouterr().out


def test_listing_the_commands_imports_none_of_them() -> None:
    code = (
        "import sys\n"
        "from causal_tune_ros import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'rclpy', 'rosbags', 'cv2', *cli.SUBCOMMANDS.values())\n"
        "               if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def test_command_help_rejects_a_module_without_help() -> None:
    with pytest.raises(LookupError, match="no HELP"):
        cli.command_help("causal_tune_ros.errors")
    with pytest.raises(LookupError, match="not a module file"):
        cli.command_help("causal_tune_ros.nowhere")
