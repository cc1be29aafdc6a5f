"""A corrupt JPEG is a failed frame (no mask), and a grid too large for its cell cap is refused when set."""

from __future__ import annotations

import pytest

from .node_support import make_compressed, sample_rgb, stamp_of

pytestmark = pytest.mark.ros

STAMP = 1_700_000_000 * 10**9
WARN = b"\x01"


def _cut_mid_scan(data: bytes) -> bytes:
    """The JPEG cut a third into its scan data with an end-of-image marker appended."""
    sos = data.find(b"\xff\xda")
    start = sos + 2 + (data[sos + 2] << 8 | data[sos + 3])
    return data[: start + (len(data) - start) // 3] + b"\xff\xd9"


def test_corrupt_jpeg_is_a_failed_frame_and_grid_cap_is_checked_when_set(make_node) -> None:
    from causal_tune_ros.limits import MAX_GRID_CELLS

    node, probe, _ = make_node("frame_limits", input_transport="compressed")
    corrupt = make_compressed(sample_rgb(), "jpeg", STAMP)
    corrupt.data = _cut_mid_scan(bytes(corrupt.data))
    probe.compressed_pub.publish(corrupt)
    status = probe.wait_diagnostics(
        lambda v, s: "corrupt JPEG" in v["last_error"] and int(v["frames_failed"]) >= 1
    )
    assert status.level == WARN
    sec, nsec = divmod(STAMP, 10**9)
    assert f"{sec}.{nsec:09d}" in status.message  # names the frame
    # The next, intact frame is published; the corrupt one never was.
    probe.compressed_pub.publish(make_compressed(sample_rgb(), "jpeg", STAMP + 1))
    probe.wait_for_stamp("class_mask", STAMP + 1)
    assert STAMP not in {stamp_of(m) for m in probe.messages["class_mask"]}
    assert STAMP not in {stamp_of(m) for m in probe.messages["drivable_mask"]}

    # resolution 0.01 m over the default 30 x 20 m grid: 6 million cells, refused with the reason.
    (result,) = probe.set_parameters(drivable__grid__resolution=0.01)
    assert not result.successful
    assert "2000 x 3000 = 6000000 cells" in result.reason and str(MAX_GRID_CELLS) in result.reason
    assert node.get_parameter("drivable.grid.resolution").value == 0.1
    (result,) = probe.set_parameters(drivable__grid__resolution=0.05)  # 400 x 600: fine
    assert result.successful and node.core.settings.grid_resolution == 0.05
