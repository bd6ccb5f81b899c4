import json

import pytest

from avatar.cli import build_parser
from avatar.config import (SCHEMA_VERSION, AvatarConfig, available_recipes, leaf_fields, load_config,
                           load_saved_config, save_config)
from avatar.errors import AvatarError


def test_every_field_is_documented():
    undocumented = [f"{s}.{n}" for s, n, _, _, doc in leaf_fields() if not doc]
    assert undocumented == []


def test_overrides_are_parsed_by_field_type():
    cfg = load_config(None, {"decode.size": "256", "pose.fit_template": "false", "pose.smoothness": "2.5"})
    assert cfg.decode.size == 256 and cfg.pose.fit_template is False and cfg.pose.smoothness == 2.5


@pytest.mark.parametrize("key, value", [("decode.size", "big"), ("pose.fit_template", "maybe"), ("decode.nope", "1"), ("nope.size", "1")])
def test_bad_overrides_name_the_setting(key, value):
    with pytest.raises(AvatarError, match=key.split(".")[-1] if "nope" not in key else "unknown"):
        load_config(None, {key: value})


def test_recipe_values_then_overrides(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("decode:\n  size: 384\n  jpeg_quality: 90\npose:\n  smoothness: 3\n")
    cfg = load_config(str(recipe), {"decode.size": "128"})
    assert (cfg.decode.size, cfg.decode.jpeg_quality, cfg.pose.smoothness) == (128, 90, 3.0)
    assert isinstance(cfg.pose.smoothness, float)


@pytest.mark.parametrize("text, match", [
    ("decode:\n  sise: 3\n", "unknown setting decode.sise"),
    ("decoder:\n  size: 3\n", "unknown section"),
    ("decode:\n  size: big\n", "not a valid integer"),
    ("decode: [1, 2]\n", "must be a mapping"),
    ("decode: {size: 3\n", "not valid YAML"),
])
def test_bad_recipes_are_refused(tmp_path, text, match):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    with pytest.raises(AvatarError, match=match):
        load_config(str(recipe))


def test_named_recipes_load():
    assert "gaussian" in available_recipes()
    for name in available_recipes():
        assert isinstance(load_config(name), AvatarConfig)
    with pytest.raises(AvatarError, match="unknown recipe"):
        load_config("no-such-recipe")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, {"decode.size": "300"})
    path = tmp_path / "config.json"
    save_config(cfg, path, "gaussian")
    payload = json.loads(path.read_text())
    assert payload["schema_version"] == SCHEMA_VERSION and payload["recipe"] == "gaussian"
    assert load_saved_config(path)[0] == cfg
    assert load_saved_config(path)[1]["recipe"] == "gaussian"
    payload["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(payload))
    with pytest.raises(AvatarError, match="another version of avatar .config schema"):
        load_saved_config(path)


def test_command_line_flags_come_from_the_config():
    args = build_parser().parse_args(["preprocess", "v.mp4", "--out", "x", "--decode.size", "256", "--pose.smoothness", "1"])
    assert getattr(args, "cfg:decode.size") == "256" and getattr(args, "cfg:pose.smoothness") == "1"
