"""`avatar doctor`: what this machine can run. Reports; never fails."""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shutil
import subprocess


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _line(label: str, value: str) -> None:
    print(f"  {label:26s} {value}")


def _section(title: str) -> None:
    print(f"\n{title}")


def _torch_report() -> None:
    try:
        import torch
    except Exception as exc:  # a broken torch install must not stop the report
        _line("torch", f"not importable ({exc})")
        return
    _line("torch", f"{torch.__version__} ({torch.get_num_threads()} threads)")
    from avatar.device import auto_choice

    if torch.cuda.is_available():
        _line("CUDA", f"yes: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})")
    else:
        _line("CUDA", "no")
    device, why = auto_choice()
    _line("--device auto picks", f"{device}: {why}")


def _media_report() -> None:
    try:
        import av

        codecs = ", ".join(c for c in ("libx264", "h264", "aac", "libvpx-vp9") if c in av.codecs_available)
        _line("PyAV", f"{av.__version__} (FFmpeg {'.'.join(map(str, av.library_versions['libavcodec']))}; codecs: {codecs})")
    except Exception as exc:
        _line("PyAV", f"not importable ({exc})")
    for dist in ("mediapipe", "hama", "librosa", "soundfile", "espeakng-loader", "opencv-contrib-python"):
        _line(dist, _version(dist) or "not installed")


def _models_report() -> None:
    from avatar import model_files

    for key, spec in model_files.MODEL_FILES.items():
        path, state = model_files.status(key)
        if state == "ok":
            value = f"ok, sha256 {spec.sha256[:12]}… ({path})"
        elif state == "user file":
            value = f"user file {path}"
        else:
            value = f"{state}: run `avatar models fetch`"
        _line(spec.filename, value)


def _optional_report() -> None:
    _line("gsplat (CUDA rasteriser)", _version("gsplat") or "not installed")
    _line("nerfacc (CUDA NeRF)", _version("nerfacc") or "not installed")
    _line("dearpygui (viewer)", _version("dearpygui") or "not installed")
    _line("tensorboard", _version("tensorboard") or "not installed")
    _line("display for the viewer", os.environ.get("DISPLAY") or "none (set DISPLAY or use Xvfb)")


def _toolchain_report() -> None:
    for tool in ("ninja", "c++", "nvcc"):
        path = shutil.which(tool)
        if path and tool == "nvcc":
            out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
            _line(tool, f"{path} ({out[-1] if out else 'unknown version'})")
        else:
            _line(tool, path or "not found")


def _kernels_report() -> None:
    try:
        ops = importlib.import_module("avatar.ops")
    except ImportError:
        _line("kernels", "avatar.ops not available")
        return
    report = getattr(ops, "backend_report", None)
    if report is None:
        return
    for op, backend in report().items():
        _line(op, backend)


def run_doctor() -> int:
    from avatar import __version__

    print(f"avatar {__version__} on Python {platform.python_version()} ({platform.system()} {platform.machine()}, {os.cpu_count()} CPUs)")
    _section("compute")
    _torch_report()
    _section("kernels (backend each op uses)")
    _kernels_report()
    _section("media and tracking")
    _media_report()
    _section("model files")
    _models_report()
    _section("optional features")
    _optional_report()
    _section("compilers (kernels build on first use)")
    _toolchain_report()
    return 0
