"""Model kinds: the registry, saving and loading through it, and clear errors for unknown kinds."""
import json

import pytest
import torch

from avatar.errors import AvatarError
from avatar.model.registry import KINDS, model_class

CPU = torch.device("cpu")


def test_known_and_unknown_kinds():
    from avatar.model.gaussian_avatar import GaussianAvatar

    assert model_class("gaussian") is GaussianAvatar and GaussianAvatar.kind == "gaussian"
    assert set(KINDS) == {"gaussian", "nerf"}
    with pytest.raises(AvatarError, match="'splat9', an avatar kind this version does not know; it knows: gaussian, nerf"):
        model_class("splat9")
    with pytest.raises(AvatarError, match="names no avatar kind; this version knows: gaussian, nerf"):
        model_class(None)


def test_save_and_load_round_trip_through_the_kind(trained_sample, tmp_path):
    import shutil

    from avatar.folder import AvatarFolder
    from avatar.model.store import load_trained, save_trained

    trained = load_trained(trained_sample, CPU)
    copy = AvatarFolder(tmp_path / "copy")
    shutil.copytree(trained_sample.root, copy.root)
    save_trained(copy, trained.model, trained.basis, trained.config, "preview", trained.info)
    again = load_trained(copy, CPU)
    assert type(again.model) is type(trained.model)
    assert again.model.tensors().keys() == trained.model.tensors().keys()
    for key, value in trained.model.tensors().items():
        assert torch.equal(value, again.model.tensors()[key]), key
    saved = json.loads((copy.model / "config.json").read_text())
    assert saved["kind"] == "gaussian" and saved["config"]["model"]["kind"] == "gaussian"


@pytest.mark.parametrize("kind", [None, "splat9"])
def test_a_model_of_an_unknown_kind_is_a_one_line_error(trained_sample, tmp_path, kind):
    import shutil

    from helpers import run_cli

    target = tmp_path / "avatar"
    shutil.copytree(trained_sample.root, target)
    path = target / "model" / "config.json"
    saved = json.loads(path.read_text())
    saved.pop("kind")
    if kind:
        saved["kind"] = kind
    path.write_text(json.dumps(saved))
    result = run_cli("export", target, "--ply", tmp_path / "x.ply")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "this version knows: gaussian" in result.stderr or "it knows: gaussian" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
