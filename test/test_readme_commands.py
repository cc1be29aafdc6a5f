"""Every shell command in README.md's ```bash blocks runs as written, so the README cannot drift.

The commands run in README order in one scratch folder laid out like the repository root (``.venv``,
``config/``, ``models/``), so later commands use what earlier ones wrote (``drive.mcap``,
``runs/synthetic_small``). ``PATH`` holds no virtual environment, as for a new user who never activated
one: a bare ``causal-tune`` fails here as it would for them.

A command is skipped, with the reason, when it installs the environment this test runs in, is the test
suite itself, needs the ``ros2`` command line, GPUs, TensorRT, or an input that is not here (a data set,
downloaded weights, a recorded bag), or is an example with a ``...`` placeholder. Commands that the README
says how to make small run small (:data:`SHRINK`); with ``README_FULL_SIZE=1`` they run exactly as
written, which is how the times in the README are measured. Nodes run until they report that they are up,
then get Ctrl-C.

Each command's wall time and CPU time are printed (``pytest -s``) and written as JSON to
``$README_TIMES_JSON``, or to ``readme_times.json`` in pytest's base temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: How the README says to make a command small: (program, subcommand) -> arguments appended to it.
#: Each must be written in README.md (``test_shrink_options_are_documented``).
SHRINK: dict[tuple[str, str], list[str]] = {
    ("causal-tune", "train"): ["--set", "optim.iterations=30", "--set", "data.train.num_samples=40"],
    ("causal-tune", "eval"): ["--max-samples", "10"],
}

#: Programs that run until stopped, and what they print once they are up.
NODES: dict[tuple[str, str], tuple[str, ...]] = {
    ("segmentation_node", ""): ("listening on",),
    ("lifecycle_segmentation_node", ""): ("listening on", "waiting for configure"),
    ("causal-tune", "node"): ("listening on", "waiting for configure"),
}
NODE_START_LIMIT_S = 120.0  # a node that is not up by then has hung
FULL_SIZE = os.environ.get("README_FULL_SIZE", "") not in ("", "0")
#: Below pytest's own timeout, so that a command that hangs is killed here rather than left running.
COMMAND_LIMIT_S = 3000.0 if FULL_SIZE else 500.0

#: Options whose value is something the command writes (never a missing input).
OUTPUT_OPTIONS = {"-o", "--out", "--output-dir", "--video", "--package-to"}
#: Options whose value is a ROS name, not a path.
NAME_OPTIONS = {"--topics", "--weather-topic", "-r", "--remap", "-p", "--param"}
#: Folders of this repository: a missing path under one is a README error, never "data not here".
REPO_FOLDERS = ("config", "launch", "docs", "test", "causal_tune_ros", "bench", "resource")
SHELL_OPERATORS = {"|", "||", ";", "&", ">", ">>", "<", "2>", "2>&1"}


@dataclass(frozen=True)
class Command:
    """One command of a README ```bash block (``a && b`` gives two, run in order)."""

    block: int  # 1-based number of the ```bash block in README.md
    line: int  # README line where the command starts
    argv: tuple[str, ...]  # shell words, comments removed

    @property
    def id(self) -> str:
        return f"block{self.block}-line{self.line}-{program(self.argv)}-{subcommand(self.argv) or 'run'}"

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def readme_commands(text: str) -> list[Command]:
    """The commands of every ```bash block, continuation lines joined and comments dropped."""
    commands: list[Command] = []
    block = 0
    in_bash = False
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            in_bash = not in_bash and stripped[3:].strip() in ("bash", "sh", "shell")
            block += int(in_bash)
            pending = []
            continue
        if not in_bash:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        words = shlex.split(" ".join(pending), comments=True)
        pending = []
        step: list[str] = []
        for word in [*words, "&&"]:
            if word != "&&":
                step.append(word)
            elif step:
                commands.append(Command(block, start, tuple(step)))
                step = []
    return commands


def program(argv: tuple[str, ...] | list[str]) -> str:
    """``.venv/bin/causal-tune`` -> ``causal-tune``."""
    return Path(argv[0]).name if argv else ""


def subcommand(argv: tuple[str, ...] | list[str]) -> str:
    """``train`` in ``causal-tune train ...`` and in ``torchrun ... -m causal_tune_ros.cli train ...``."""
    words = list(argv[1:])
    if "-m" in words and words[words.index("-m") + 1 :][:1] == ["causal_tune_ros.cli"]:
        words = words[words.index("-m") + 2 :]
    elif program(argv) != "causal-tune":
        return ""
    return next((w for w in words if not w.startswith("-")), "")


# ------------------------------------------------------------------------------------------------ skips


def _option_value(argv: tuple[str, ...], option: str) -> str | None:
    for i, word in enumerate(argv):
        if word == option and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None


def _cuda_devices() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def _looks_like_path(text: str) -> bool:
    return "/" in text or bool(re.search(r"\.(pth|safetensors|mcap|db3|onnx|ep|yaml|yml|json)$", text))


def missing_inputs(argv: tuple[str, ...], cwd: Path) -> list[str]:
    """Paths a command reads that do not exist in ``cwd`` (outputs and ROS names are not inputs)."""
    missing = []
    previous = ""
    for word in argv[1:]:
        after = previous
        previous = word
        if word.startswith("-") or after in OUTPUT_OPTIONS or after in NAME_OPTIONS or ":=" in word:
            continue
        candidates = [word]
        if "=" in word:  # --set key=value: only values of input keys
            key, value = word.split("=", 1)
            candidates = [value] if not key.endswith(("output_dir", "out")) else []
        elif ":" in word:  # --data name:root:split
            candidates = word.split(":")
        for path in candidates:
            if path and _looks_like_path(path) and not (cwd / Path(path).expanduser()).exists():
                missing.append(path)
    return missing


def skip_reason(cmd: Command, cwd: Path) -> str | None:
    """Why ``cmd`` cannot run on this machine, or ``None`` if it can.

    Raises:
        AssertionError: For a README command that is wrong (a missing repository file, shell syntax
            this test cannot run).
    """
    argv, prog = cmd.argv, program(cmd.argv)
    if prog in ("pip", "pip3") or argv[1:3] in (("-m", "venv"), ("-m", "pip")):
        return "installs the environment this test already runs in"
    if argv[1:3] == ("-m", "pytest") or prog == "pytest":
        return "the test suite itself (this test is part of it: running it would recurse)"
    if prog == "ros2":
        if shutil.which("ros2") is None:
            return "needs the `ros2` command line of a ROS 2 install from apt (absent here)"
        return "`ros2` commands drive a running ROS graph (launch, bag play, services): not run by tests"
    if prog in ("rosdep", "colcon", "apt", "apt-get", "sudo", "git"):
        return f"`{prog}` changes the system or a ROS workspace"
    if argv[1:3] == ("-m", "colcon"):
        return "`colcon` builds a ROS workspace (a vehicle install, not this checkout)"
    if prog in ("source", ".", "cd", "mkdir"):
        return f"`{prog}` is a shell step of the vehicle install (a ROS workspace in the home folder)"
    if "..." in argv:
        return "an example with a `...` placeholder, not a runnable line"
    if prog == "torchrun":
        nproc = int(_option_value(argv, "--nproc_per_node") or 1) * int(_option_value(argv, "--nnodes") or 1)
        if _cuda_devices() < nproc:
            return (
                f"needs {nproc} CUDA GPUs ({_cuda_devices()} here); "
                "test_readme_torchrun_configs_fit_their_process_count checks its config"
            )
    if "tensorrt" in argv:
        try:
            import torch_tensorrt  # noqa: F401
        except ImportError:
            return "needs torch_tensorrt and CUDA (absent here)"
    if prog in ("segmentation_node", "lifecycle_segmentation_node") or subcommand(argv) == "node":
        try:
            import rclpy  # noqa: F401
        except ImportError:
            return "needs rclpy (pip install '.[ros]')"
    operators = SHELL_OPERATORS.intersection(argv)
    assert not operators, f"{cmd.text}: shell syntax {sorted(operators)}; keep README commands simple"
    missing = missing_inputs(argv, cwd)
    wrong = [p for p in missing if Path(p).parts[0] in REPO_FOLDERS]
    assert not wrong, f"{cmd.text}: {wrong} not in the repository"
    if missing:
        return f"needs {', '.join(missing)}: a data set, weights or bag that is not on this machine"
    return None


# ------------------------------------------------------------------------------------------------ runs


@dataclass
class Outcome:
    """What running one command gave."""

    skipped: str | None = None
    returncode: int | None = None
    output: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    ran: list[str] = field(default_factory=list)


def _clean_env() -> dict[str, str]:
    """This process's environment without any virtual environment on ``PATH`` (as for a new user)."""
    env = dict(os.environ)
    venv_bins = {str(Path(sys.prefix) / "bin"), str(ROOT / ".venv" / "bin")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p.rstrip("/") not in venv_bins]
    env["PATH"] = os.pathsep.join(path) or "/usr/bin:/bin"
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONHOME", None)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_node(argv: list[str], cwd: Path, env: dict[str, str], ready: tuple[str, ...]) -> tuple[int, str]:
    """Start a node, wait until it prints one of ``ready``, then Ctrl-C it.

    Returns:
        ``(0, output)`` when it came up and stopped cleanly on Ctrl-C, else ``(code, output)``.
    """
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: list[str] = []
    up = False
    deadline = time.monotonic() + NODE_START_LIMIT_S
    try:
        assert proc.stdout is not None
        # Reading blocks until a line arrives; the deadline is checked per line (nodes log at start-up).
        for line in proc.stdout:
            lines.append(line)
            if any(marker in line for marker in ready):
                up = True
                break
            if time.monotonic() > deadline:
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        lines.append(rest or "")
    output = "".join(lines)
    if not up:
        return (proc.returncode if proc.returncode not in (None, 0) else 1), output
    # rclpy may exit 0 or with the SIGINT status after Ctrl-C; anything else is a crash on shutdown.
    return (0 if proc.returncode in (0, -signal.SIGINT, 130) else proc.returncode), output


class ReadmeRunner:
    """Runs README commands in README order, once each, in a scratch copy of the repository root."""

    def __init__(self, commands: list[Command], workdir: Path, times_path: Path) -> None:
        self.commands = commands
        self.workdir = workdir
        self.times_path = times_path
        self.full_size = FULL_SIZE
        self.outcomes: dict[int, Outcome] = {}
        self._prepare()

    def _prepare(self) -> None:
        w = self.workdir
        venv = Path(sys.prefix)
        if (venv / "bin" / "causal-tune").exists():
            (w / ".venv").symlink_to(venv, target_is_directory=True)
        shutil.copytree(ROOT / "config", w / "config")
        (w / "models").mkdir()
        for entry in (ROOT / "models").iterdir():
            (w / "models" / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())

    def result(self, index: int) -> Outcome:
        """The outcome of command ``index``, running every command before it first."""
        for i in range(index + 1):
            if i not in self.outcomes:
                self.outcomes[i] = self._run(self.commands[i])
                self._write_times()
        return self.outcomes[index]

    def _run(self, cmd: Command) -> Outcome:
        if not (self.workdir / ".venv").exists():
            return Outcome(skipped=f"the tests do not run from a venv holding causal-tune ({sys.prefix})")
        reason = skip_reason(cmd, self.workdir)
        failed = [self.commands[i].line for i, o in self.outcomes.items() if o.returncode not in (None, 0)]
        if reason is not None and failed and missing_inputs(cmd.argv, self.workdir):
            # Most likely the output of a README command that failed: not a reason to skip.
            why = f"{reason}; README line(s) {failed} failed before it, and may be what writes it"
            return Outcome(returncode=1, output=why, ran=list(cmd.argv))
        if reason is not None:
            return Outcome(skipped=reason)
        argv = list(cmd.argv)
        if not self.full_size:
            argv += SHRINK.get((program(argv), subcommand(argv)), [])
        env = _clean_env()
        cpu0, t0 = _children_cpu(), time.perf_counter()
        # `--help` prints usage and exits: an ordinary command, not a node to wait for.
        node = None if "--help" in argv else NODES.get((program(argv), subcommand(argv)))
        # bash runs the words as the README shows them (builtins, ~, env assignments behave as typed).
        if node is not None:
            # exec: Ctrl-C goes to the node itself, not to a shell around it.
            shell = ["bash", "-c", "exec " + shlex.join(argv)]
            code, output = _run_node(shell, self.workdir, env, node)
        else:
            proc = subprocess.run(
                ["bash", "-c", shlex.join(argv)],
                cwd=self.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_LIMIT_S,
                stdin=subprocess.DEVNULL,
            )
            code, output = proc.returncode, proc.stdout + proc.stderr
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        print(f"\nREADME line {cmd.line}: {wall:.1f} s wall, {cpu:.1f} s CPU: {shlex.join(argv)}")
        return Outcome(returncode=code, output=output, wall_s=wall, cpu_s=cpu, ran=argv)

    def _write_times(self) -> None:
        rows = []
        for i, outcome in sorted(self.outcomes.items()):
            cmd = self.commands[i]
            rows.append(
                {
                    "readme_line": cmd.line,
                    "block": cmd.block,
                    "command": cmd.text,
                    "ran": shlex.join(outcome.ran) if outcome.ran else None,
                    "reduced": bool(outcome.ran) and list(outcome.ran) != list(cmd.argv),
                    "skipped": outcome.skipped,
                    "returncode": outcome.returncode,
                    "wall_s": round(outcome.wall_s, 2),
                    "cpu_s": round(outcome.cpu_s, 2),
                }
            )
        tmp = self.times_path.with_name(f".{self.times_path.name}.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(rows, indent=2), encoding="utf-8")
        tmp.replace(self.times_path)


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadmeRunner]:
    times = os.environ.get("README_TIMES_JSON")
    times_path = Path(times) if times else tmp_path_factory.getbasetemp() / "readme_times.json"
    r = ReadmeRunner(COMMANDS, tmp_path_factory.mktemp("readme_root"), times_path)
    yield r
    print(f"\nREADME command times: {times_path}")


@pytest.mark.timeout(3600)  # one item may run the commands before it too; each has COMMAND_LIMIT_S
@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[c.id for c in COMMANDS])
def test_readme_command_runs(runner: ReadmeRunner, index: int) -> None:
    outcome = runner.result(index)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.returncode == 0, (
        f"README line {COMMANDS[index].line} failed ({outcome.returncode}): {shlex.join(outcome.ran)}\n"
        f"{outcome.output[-4000:]}"
    )


def test_readme_has_commands_and_opens_with_setup() -> None:
    """The README starts with the set-up line (install + demo) and the test command."""
    assert len(COMMANDS) >= 10
    first = [c for c in COMMANDS if c.block == 1]
    assert first[0].argv[:3] == ("python3", "-m", "venv")
    assert first[1].argv[:3] == (".venv/bin/pip", "install", "torch==2.13.0")
    assert first[3].argv == (".venv/bin/causal-tune", "demo")
    assert first[4].argv == (".venv/bin/python", "-m", "pytest")


def test_shrink_options_are_documented() -> None:
    """The test only makes commands small in ways the README tells users about."""
    text = README.read_text(encoding="utf-8")
    for (prog, sub), extra in SHRINK.items():
        assert shlex.join(extra) in text, f"README does not say that `{prog} {sub}` takes {shlex.join(extra)}"
        assert any(program(c.argv) == prog and subcommand(c.argv) == sub for c in COMMANDS), (prog, sub)


def test_readme_torchrun_configs_fit_their_process_count() -> None:
    """Each documented torchrun command's config splits its batch over the processes it starts."""
    from causal_tune_ros.training.config import load_train_config, micro_batch_size

    sources = [(f"README.md line {c.line}", c.argv) for c in COMMANDS if program(c.argv) == "torchrun"]
    for path in sorted((ROOT / "config" / "train").glob("*.yaml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "torchrun" in line and line.lstrip().startswith("#"):
                argv = tuple(shlex.split(line.lstrip()[1:].strip(), comments=True))
                sources.append((path.name, argv))
    assert any(s.startswith("README") for s, _ in sources), "the README documents a torchrun command"
    for source, argv in sources:
        if subcommand(argv) != "train":
            continue
        nproc = int(_option_value(argv, "--nproc_per_node") or 1) * int(_option_value(argv, "--nnodes") or 1)
        config = _option_value(argv, "--config")
        assert config is not None, f"{source}: {shlex.join(argv)} names no --config"
        overrides = [argv[i + 1] for i, w in enumerate(argv) if w == "--set" and i + 1 < len(argv)]
        cfg = load_train_config(ROOT / config, overrides)
        micro = micro_batch_size(cfg.optim, nproc)  # raises ConfigError if the batch does not split
        assert micro * nproc * cfg.optim.grad_accum == cfg.optim.batch_size, source


def test_parsing_and_skip_rules(tmp_path: Path) -> None:
    """The parser and the skip rules on a README-like snippet (nothing is run)."""
    text = (
        "```bash\n"
        "python3 -m venv .venv && .venv/bin/causal-tune demo   # comment\n"
        ".venv/bin/causal-tune eval --checkpoint runs/x \\\n"
        "    --data acdc:/nowhere/acdc:val -o out/\n"
        "```\n"
        "```python\nprint('not shell')\n```\n"
        "```bash\n"
        "ros2 launch causal_tune_ros segmentation.launch.py camera:=/front/image_raw\n"
        ".venv/bin/causal-tune replay bag.mcap -o out.mcap --topics /front/image_raw\n"
        ".venv/bin/causal-tune train --config config/train/nowhere.yaml --set run.output_dir=runs/new\n"
        "causal-tune export ... --format onnx\n"
        "```\n"
    )
    cmds = readme_commands(text)
    assert [(c.block, c.line) for c in cmds] == [(1, 2), (1, 2), (1, 3), (2, 10), (2, 11), (2, 12), (2, 13)]
    assert cmds[1].argv == (".venv/bin/causal-tune", "demo")
    assert cmds[2].argv[-4:] == ("--data", "acdc:/nowhere/acdc:val", "-o", "out/")
    assert [subcommand(c.argv) for c in cmds] == ["", "demo", "eval", "", "replay", "train", "export"]
    assert "installs" in (skip_reason(cmds[0], tmp_path) or "")
    assert skip_reason(cmds[1], tmp_path) is None
    (tmp_path / "runs" / "x").mkdir(parents=True)
    assert skip_reason(cmds[2], tmp_path) == (
        "needs /nowhere/acdc: a data set, weights or bag that is not on this machine"
    )
    assert "ros2" in (skip_reason(cmds[3], tmp_path) or "")
    # Topics are names, outputs are written: only the input bag counts.
    assert missing_inputs(cmds[4].argv, tmp_path) == ["bag.mcap"]
    # A missing file of the repository itself is a README error, not "data not here".
    with pytest.raises(AssertionError, match="not in the repository"):
        skip_reason(cmds[5], tmp_path)
    assert "placeholder" in (skip_reason(cmds[6], tmp_path) or "")
