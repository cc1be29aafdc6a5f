"""What any ROS peer can send the node: file names through the parameter service, huge strings, NaN K.

The parameter service is open to every node on the network, so ``classes_file`` must never make the node
read something that stalls it (a FIFO), exhausts it (``/dev/zero``) or leaks it (the reason of a
rejection). Strings a peer controls never reach the log or ``/diagnostics`` whole.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
from std_msgs.msg import String

from causal_tune_ros.classes import MAX_CLASS_FILE_BYTES, load_classes
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.diagnostics import TEXT_LIMIT

from .node_support import (
    NS_PREFIX,
    Probe,
    Spinner,
    make_camera_info,
    make_image,
    node_overrides,
    sample_rgb,
)

pytestmark = pytest.mark.ros

SECRET = "hunter2-SECRET-TOKEN"
STAMP = 1_730_000_000 * 10**9


def _hostile_files(tmp_path: Path) -> dict[str, Path]:
    """Files a peer could name: a FIFO, /dev/zero, a secret YAML in several shapes, a huge file."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    bad_value = tmp_path / "bad_value.yaml"
    bad_value.write_text(f"classes: [{{name: road, color: [1, 2, {SECRET}]}}]\n")
    bad_yaml = tmp_path / "bad_yaml.yaml"
    bad_yaml.write_text(f"password: {SECRET}\n  : [\n")
    names = tmp_path / "names.yaml"
    names.write_text(f"classes: [{{name: {SECRET}, color: [1, 2, 3]}}]\n")
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:
        f.truncate(MAX_CLASS_FILE_BYTES + 1)
    return {"fifo": fifo, "dev_zero": Path("/dev/zero"), "bad_value": bad_value, "bad_yaml": bad_yaml,
            "names": names, "huge": huge}  # fmt: skip


def test_load_classes_reads_only_small_regular_files_and_never_echoes_them(tmp_path: Path) -> None:
    files = _hostile_files(tmp_path)
    reasons = {"fifo": "not a regular file", "dev_zero": "not a regular file", "huge": "larger than"}
    for key in ("fifo", "dev_zero", "bad_value", "bad_yaml", "huge"):
        with pytest.raises(ConfigError) as err:
            load_classes(files[key])
        assert SECRET not in str(err.value), key
        assert reasons.get(key, str(files[key])) in str(err.value), key
    assert load_classes(files["names"]).names == (SECRET,)  # a valid file still loads


@pytest.mark.timeout(120)
def test_classes_file_from_a_peer_while_running(make_node, tmp_path: Path) -> None:
    """Configured: a classes_file change is refused as restart-only before the file is even opened (a
    FIFO opened for reading would block the executor until a writer appears)."""
    files = _hostile_files(tmp_path)
    node, probe, _ = make_node("untrusted_running")
    for key in ("fifo", "dev_zero", "bad_value"):
        (result,) = probe.set_parameters(classes_file=str(files[key]))
        assert not result.successful and "cannot change while the model is loaded" in result.reason
        assert SECRET not in result.reason
    probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP))
    assert probe.wait_for_stamp("class_mask", STAMP).width == 64  # still answering frames
    assert node.get_parameter("classes_file").value == ""


@pytest.mark.timeout(120)
def test_classes_file_from_a_peer_while_unconfigured(ros_context, tiny_checkpoint, tmp_path: Path) -> None:
    """Unconfigured managed node: the file is read, safely (regular, capped, non-blocking), never quoted."""
    from rclpy.node import Node

    from causal_tune_ros.node.lifecycle_node import LifecycleSegmentationNode

    files = _hostile_files(tmp_path)
    ns = f"{NS_PREFIX}/untrusted"
    node = LifecycleSegmentationNode(namespace=ns, parameter_overrides=node_overrides(tiny_checkpoint))
    probe_node = Node("probe_untrusted", namespace=ns)
    probe = Probe(probe_node, ns)
    spinner = Spinner(node, probe_node)
    try:
        assert not node.core.configured
        for key in ("fifo", "dev_zero", "bad_value", "bad_yaml", "huge", "names"):
            (result,) = probe.set_parameters(classes_file=str(files[key]))
            assert not result.successful, key
            assert SECRET not in result.reason, (key, result.reason)
        assert node.get_parameter("classes_file").value == ""
        assert node.autostart(), "the node still configures and activates after the refusals"
        probe.wait_connected()
        probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP + 1))
        assert probe.wait_for_stamp("class_mask", STAMP + 1).width == 64
    finally:
        spinner.stop()
        node.destroy_node()
        probe_node.destroy_node()


def test_peer_strings_are_truncated_in_logs_and_diagnostics(make_node, capfd) -> None:
    node, probe, _ = make_node("long_strings", weather__mode="topic")
    weather = probe.node.create_publisher(String, f"{probe.ns}/weather", 10)
    huge = "x" * 1_000_000  # a 1 MB "condition"
    deadline = time.monotonic() + 30.0
    while not node.core.stats.last_error and time.monotonic() < deadline:
        weather.publish(String(data=huge))
        time.sleep(0.3)
    status = probe.wait_diagnostics(lambda v, s: "more characters" in v["last_error"])
    values = {kv.key: kv.value for kv in status.values}
    assert len(values["last_error"]) < TEXT_LIMIT + 100
    assert len(status.message) < TEXT_LIMIT + 200
    # rcutils writes log lines straight to file descriptor 2.
    logged = [line for line in capfd.readouterr().err.splitlines() if "unknown weather condition" in line]
    assert logged and all(len(line) < TEXT_LIMIT + 300 for line in logged), [len(x) for x in logged]


def test_nan_camera_matrix_is_named_as_such(make_node) -> None:
    _, probe, _ = make_node("nan_k")
    info = make_camera_info()
    k = list(info.k)
    k[0] = math.nan
    info.k = k
    probe.info_pub.publish(info)
    for i in range(3):
        probe.info_pub.publish(info)
        probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP + 10 + i))
        probe.wait_for_stamp("class_mask", STAMP + 10 + i)
    status = probe.wait_diagnostics(lambda v, s: "grid" in v["last_error"])
    error = {kv.key: kv.value for kv in status.values}["last_error"]
    assert "NaN" in error and "shape" not in error, error
