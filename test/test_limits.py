"""The shared resource limits: one pixel cap for node and replay, grid size refused when it is set."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from causal_tune_ros.errors import ConfigError, ImageConversionError
from causal_tune_ros.limits import DEFAULT_MAX_IMAGE_PIXELS, MAX_GRID_CELLS


def test_node_replay_and_imaging_share_one_default_pixel_cap() -> None:
    from causal_tune_ros import imaging
    from causal_tune_ros.node.parameters import spec_by_name

    assert spec_by_name()["max_image_pixels"].default == DEFAULT_MAX_IMAGE_PIXELS
    for function in (imaging.image_to_array, imaging.image_to_rgb, imaging.compressed_to_rgb):
        assert inspect.signature(function).parameters["max_pixels"].default == DEFAULT_MAX_IMAGE_PIXELS


def test_replay_refuses_images_above_the_shared_cap() -> None:
    """A bag frame one row above the cap is refused on its header (the data is never looked at)."""
    import numpy as np

    from causal_tune_ros.bags import BagMessage, serialize, typestore
    from causal_tune_ros.replay.reading import decode_image

    types = typestore().types
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="cam"
    )
    width = 4096
    height = DEFAULT_MAX_IMAGE_PIXELS // width + 1
    image = types["sensor_msgs/msg/Image"](
        header=header,
        height=height,
        width=width,
        encoding="mono8",
        is_bigendian=0,
        step=width,
        data=np.zeros(16, np.uint8),
    )
    msgtype = "sensor_msgs/msg/Image"
    message = BagMessage("/cam/image_raw", msgtype, 1, serialize(image, msgtype), None)
    with pytest.raises(ImageConversionError, match=f"exceeds max_pixels={DEFAULT_MAX_IMAGE_PIXELS}"):
        decode_image(message)


@pytest.mark.parametrize(
    ("values", "cells"),
    [
        ({"drivable.grid.resolution": 0.01}, 2000 * 3000),  # the lowest resolution the range allows
        (
            {"drivable.grid.resolution": 0.05, "drivable.grid.width": 500.0, "drivable.grid.length": 500.0},
            10_000 * 10_000,
        ),
    ],
)
def test_grid_above_the_cell_cap_is_refused_when_set(values: dict, cells: int) -> None:
    from causal_tune_ros.node.parameters import settings_from_values

    with pytest.raises(ConfigError, match=f"= {cells} cells.*at most {MAX_GRID_CELLS} cells") as err:
        settings_from_values(values)
    assert "drivable.grid" in str(err.value)


def test_grid_at_the_cell_cap_is_accepted() -> None:
    from causal_tune_ros.node.parameters import settings_from_values

    side = {"drivable.grid.width": 100.0, "drivable.grid.length": 100.0}
    settings = settings_from_values({"drivable.grid.resolution": 0.1, **side})  # 1000 x 1000 cells
    assert settings.grid_resolution == 0.1


def test_documented_cache_folder_is_the_one_the_code_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    from causal_tune_ros.backends.cache import CACHE_ENV, default_cache_dir
    from causal_tune_ros.node.parameters import spec_by_name

    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    text = spec_by_name()["engine.cache_dir"].description
    assert default_cache_dir() == Path.home() / ".cache" / "causal_tune_ros"
    assert "(~/.cache/causal_tune_ros)" in text
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert default_cache_dir() == Path("/xdg/causal_tune_ros") and "$XDG_CACHE_HOME/causal_tune_ros" in text
    monkeypatch.setenv(CACHE_ENV, "/somewhere")
    assert default_cache_dir() == Path("/somewhere") and f"${CACHE_ENV}" in text
