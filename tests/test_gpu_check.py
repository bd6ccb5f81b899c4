"""benchmarks/gpu_check.py, the one script a CUDA machine runs: it must work before a GPU is lent."""
import json
import os
import subprocess
import sys

import torch
from helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _run(*args: str) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900,
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout)


def test_without_cuda_it_says_so_and_exits_zero():
    if torch.cuda.is_available():
        return
    _, report = _run()
    assert report["cuda"] is False and ("CPU build" in report["reason"] or "no CUDA" in report["reason"])


def test_dry_run_compares_every_op_and_trains(trained_sample):
    _, report = _run("--dry-run", "--avatar", str(trained_sample.root), "--steps", "4")
    assert report["dry_run"] is True
    for op in ("rasterize_gaussians", "hash_triplane_encode", "deform_gaussians", "volume"):
        assert "error" not in report[op], report[op]
        assert report[op]["forward_ok"] and report[op]["grad_ok"], (op, report[op])
    assert report["all_ops_ok"] is True
    training = report["training"]
    assert "error" not in training, training
    assert training["steps"] == 4 and training["loss_finite"] and training["all_parameters_on_device"]
    assert report["render_512"]["fps"] > 0 and 0 < report["render_512"]["mean_value"] < 1
    nerf = report["nerf"]
    assert "error" not in nerf, nerf
    assert nerf["steps"] == 5 and nerf["loss_finite"] and nerf["all_parameters_on_device"] and nerf["image_finite"]
