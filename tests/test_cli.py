from helpers import run_cli


def test_doctor_reports_and_exits_zero(models):
    result = run_cli("doctor")
    assert result.returncode == 0
    for text in ("torch", "CUDA", "face_landmarker.task", "PyAV", "nvcc"):
        assert text in result.stdout


def test_models_list(models):
    result = run_cli("models", "list")
    assert result.returncode == 0 and result.stdout.count(" ok ") == 3


def test_help_lists_config_flags():
    result = run_cli("preprocess", "--help")
    assert result.returncode == 0 and "--decode.size" in result.stdout and "--pose.smoothness" in result.stdout


def test_commands_check_the_avatar_folder_first(tmp_path):
    """A missing folder, a file, a folder that is no avatar: one line each, exit code 2, before any work."""
    from helpers import run_cli

    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    for where, expected in ((tmp_path / "does-not-exist", "does not exist"), (tmp_path / "file.txt", "is a file"),
                            (tmp_path / "empty", "not an avatar folder")):
        for args in (("render", where, "--audio", tmp_path / "a.wav", "--out", tmp_path / "x.mp4"), ("eval", where),
                     ("export", where, "--ply", tmp_path / "x.ply"), ("train", where)):
            result = run_cli(*args)
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], (args, result.stderr)


def test_an_untrained_or_old_avatar_is_refused(sample_avatar, tmp_path):
    import json
    import shutil

    from helpers import run_cli

    result = run_cli("render", sample_avatar.root, "--replay", "--out", tmp_path / "x.mp4")
    assert result.returncode == 2 and "no trained avatar yet" in result.stderr and "avatar fit" in result.stderr
    target = tmp_path / "old"
    shutil.copytree(sample_avatar.root, target)
    (target / "model").mkdir(exist_ok=True)
    (target / "model" / "avatar.safetensors").write_bytes(b"")
    (target / "model" / "config.json").write_text(json.dumps({"schema_version": 1, "format_version": 1, "config": {}}))
    result = run_cli("eval", target)
    assert result.returncode == 2 and "another version of avatar" in result.stderr and "Traceback" not in result.stderr


def test_cuda_asked_for_without_cuda_is_one_line(sample_avatar, tmp_path):
    import torch
    from helpers import run_cli

    if torch.cuda.is_available():
        return
    result = run_cli("train", sample_avatar.root, "--device", "cuda")
    assert result.returncode == 2 and "--device cuda" in result.stderr and "Traceback" not in result.stderr
