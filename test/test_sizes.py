"""One size parser (causal_tune_ros.sizes) behind every command, parameter and config that takes H x W."""

from __future__ import annotations

import argparse

import pytest

from causal_tune_ros import backends
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.sizes import PATCH_SIZE, parse_input_size, parse_size


@pytest.mark.parametrize("text", ["240x320", "240X320", "240,320", " 240 x 320 ", (240, 320), [240, 320]])
def test_every_spelling_of_a_size(text) -> None:
    assert parse_size(text) == (240, 320)


def test_square_sizes_only_where_asked() -> None:
    assert parse_size("512", square=True) == (512, 512)
    with pytest.raises(ConfigError, match="'HxW' or \\(H, W\\), got '512'"):
        parse_size("512")
    with pytest.raises(ConfigError, match="got '1x2x3'"):
        parse_size("1x2x3", square=True)


def test_rules_name_the_value_and_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"image size 8x320: each side must be in 16\.\.4096"):
        parse_size("8x320", what="image size", min_side=16, max_side=4096)
    with pytest.raises(ConfigError, match="each side must be at least 1"):
        parse_size("0x5")
    with pytest.raises(ConfigError, match=r"input size 50x112: .*multiples of 14 \(e.g. 56x112\)"):
        parse_input_size("50x112")
    with pytest.raises(ConfigError, match="multiples of 14"):
        parse_input_size((0, 14))
    assert parse_input_size([2 * PATCH_SIZE, 4 * PATCH_SIZE]) == (28, 56)


def test_backends_synthetic_and_eval_use_the_one_parser() -> None:
    from causal_tune_ros.synthetic.bag import parse_image_size
    from causal_tune_ros.training.eval_command import _pair

    assert backends.parse_size is parse_input_size
    # Before, each had its own spelling rules: "H,W" was refused by synth and export.
    assert parse_image_size("240,320") == (240, 320)
    assert backends.parse_size("518,1036") == (518, 1036)
    assert _pair("512x1024") == (512, 1024) and _pair("341") == (341, 341)
    with pytest.raises(argparse.ArgumentTypeError, match="0x5: each side must be at least 1"):
        _pair("0,5")


def test_band_text_has_one_parser_for_replay_and_eval() -> None:
    """``--band`` of replay (and fleet) and of eval both read through band.parse_band."""
    from causal_tune_ros.band import Band, parse_band
    from causal_tune_ros.replay import command as replay_command

    parser = argparse.ArgumentParser()
    replay_command.add_arguments(parser)
    args = parser.parse_args(["in", "-o", "out", "--band", " 0.1 , 0.6 "])
    assert replay_command.options_from_args(args).band == parse_band("0.1,0.6") == Band(0.1, 0.6)
    args = parser.parse_args(["in", "-o", "out", "--band", "0.7,0.2"])
    with pytest.raises(ConfigError, match="0 < low < high"):
        replay_command.options_from_args(args)
