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
