"""synthetic/ reports bad arguments with the package's errors (ConfigError), and shares CONDITIONS."""

from __future__ import annotations

import numpy as np
import pytest

import causal_tune_ros.synthetic as synthetic
import causal_tune_ros.weather as weather
from causal_tune_ros.errors import CausalTuneError, ConfigError
from causal_tune_ros.synthetic import render_conditions, render_scene
from causal_tune_ros.synthetic.noise import noise_window
from causal_tune_ros.synthetic.scene import build_geometry
from causal_tune_ros.synthetic.weather import condition_rng, render_weather


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: render_scene(0, "hail", 32, 32), "unknown condition 'hail'"),
        (lambda: render_scene(1.5, "clear", 32, 32), "seed must be an integer"),
        (lambda: render_scene(True, "clear", 32, 32), "seed must be an integer"),
        (lambda: render_scene(0, "clear", 8, 32), "at least 16x16"),
        (lambda: render_conditions(0, ("clear", "hail"), 32, 32), r"unknown condition\(s\) \['hail'\]"),
        (lambda: render_conditions(0, ("clear",), 32, 15), "at least 16x16"),
        (lambda: build_geometry(0, 15, 64), "at least 16x16"),
        (lambda: condition_rng(0, "sandstorm"), "unknown condition 'sandstorm'"),
        (lambda: noise_window("medium", 16, 16, np.random.default_rng(0)), "unknown noise kind"),
    ],
)
def test_bad_arguments_raise_config_error(call, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        call()
    assert isinstance(info.value, CausalTuneError)


def test_render_weather_with_own_generator_checks_the_condition() -> None:
    geom = build_geometry(0, 16, 16)
    with pytest.raises(ConfigError, match="unknown condition 'hail'"):
        render_weather(geom, "hail", np.random.default_rng(0))


def test_conditions_have_one_definition() -> None:
    assert synthetic.CONDITIONS is weather.CONDITIONS
    from causal_tune_ros.synthetic import weather as synthetic_weather
    from causal_tune_ros.weather import classifier, presets

    assert synthetic_weather.CONDITIONS is presets.CONDITIONS is classifier.CONDITIONS is weather.CONDITIONS
