"""The compiled kernels of `cuda_ext/`: prebuilt, else built with ninja on first use, else absent.

Nothing here compiles at import. :func:`load` is called by an op the first time it needs the
extension; it tries, in order,

1. a prebuilt module ``avatar._kernels`` (an installer may build one ahead of time);
2. a JIT build with ``torch.utils.cpp_extension.load`` into a cache directory keyed by a hash of
   the sources, the compiler flags, the CPU model and the torch/Python versions, so a cached build
   is reused across runs and never used on a machine or toolchain it was not built for;
3. nothing: the ops fall back to their pure-torch references, after ONE warning saying why.

The cache lives in ``$AVATAR_CACHE_DIR/ext`` or ``~/.cache/avatar/ext``.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import importlib.util
import os
import platform
import shutil
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

CPU_SOURCES = (
    "bindings.cpp",
    "bindings_raster.cpp",
    "bindings_fields.cpp",
    "raster_project.cpp",
    "raster_bin.cpp",
    "raster_blend_fwd.cpp",
    "raster_blend_bwd.cpp",
    "hash_triplane_cpu.cpp",
    "deform_cpu.cpp",
    "bindings_volume.cpp",
    "volume_cpu.cpp",
    "field_mlp_cpu.cpp",
)
CUDA_SOURCES = ("hash_triplane_cuda.cu", "deform_cuda.cu", "volume_cuda.cu", "field_mlp_cuda.cu")
# -march=native is safe because the cache key includes the CPU model and its feature flags.
CXX_FLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-Wno-psabi")
CUDA_FLAGS = ("-O3",)  # no fast-math: GPU results should match the CPU kernels
LD_FLAGS = ("-fopenmp",)
PREBUILT_MODULE = "avatar._kernels"


def source_dir() -> Path:
    """Folder holding csrc/*.h, *.cpp, *.cu (shipped as package data of `avatar.cuda_ext`)."""
    return Path(str(importlib.resources.files("avatar.cuda_ext") / "csrc"))


def cache_root() -> Path:
    base = os.environ.get("AVATAR_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "avatar") / "ext"


def find_compiler() -> str | None:
    candidates = [os.environ.get("CXX"), "c++", "g++", "clang++"]
    for name in candidates:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "flags", "Features", "CPU part") and key not in fields:
            fields[key] = value.strip()
    return f"{platform.machine()} " + " | ".join(f"{k}={v}" for k, v in sorted(fields.items()))


def _with_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.version.cuda)


def build_key(with_cuda: bool) -> str:
    """Hash of everything that makes one build differ from another."""
    import torch

    h = hashlib.sha256()
    folder = source_dir()
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.suffix in (".h", ".cpp", ".cu"):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    for part in (
        CXX_FLAGS,
        CUDA_FLAGS if with_cuda else (),
        LD_FLAGS,
        (_cpu_signature(), torch.__version__, sys.version.split()[0], str(find_compiler()), str(with_cuda)),
    ):
        h.update(repr(part).encode())
    return h.hexdigest()[:20]


def _module_name(key: str) -> str:
    return f"avatar_kernels_{key}"


@dataclass
class _State:
    module: ModuleType | None = None
    attempted: bool = False
    origin: str = ""         # "prebuilt" or "built"
    failure: str = ""        # why there is no module
    warned: bool = False


_state = _State()
_lock = threading.Lock()


def _prebuilt() -> ModuleType | None:
    if importlib.util.find_spec(PREBUILT_MODULE) is None:
        return None
    return importlib.import_module(PREBUILT_MODULE)


def _built_library(key: str) -> Path | None:
    found = sorted((cache_root() / key).glob(_module_name(key) + ".*so"))
    return found[0] if found else None


def _import_library(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(key: str, with_cuda: bool) -> ModuleType:
    # A finished build with this key was made from these exact sources and flags: load it
    # directly, without asking ninja (and the compiler checks around it) again.
    library = _built_library(key)
    if library is not None:
        try:
            return _import_library(_module_name(key), library)
        except ImportError:
            library.unlink()  # e.g. a link step that was killed half-way: build it again

    from torch.utils import cpp_extension

    build_dir = cache_root() / key
    src_copy = build_dir / "src"
    src_copy.mkdir(parents=True, exist_ok=True)
    # Build from a private copy so that an edit to the sources during a build cannot produce a
    # module whose contents differ from its key. Unchanged files keep their timestamps, so an
    # interrupted build resumes instead of starting over.
    for path in source_dir().iterdir():
        target = src_copy / path.name
        if path.suffix in (".h", ".cpp", ".cu") and (not target.exists() or target.read_bytes() != path.read_bytes()):
            shutil.copyfile(path, target)
    sources = [str(src_copy / s) for s in CPU_SOURCES + (CUDA_SOURCES if with_cuda else ())]
    print(f"avatar: compiling the kernels once (about a minute); later runs reuse {build_dir}", file=sys.stderr,
          flush=True)
    previous_env = {k: os.environ.get(k) for k in ("MAX_JOBS", "PATH")}
    if previous_env["MAX_JOBS"] is None:
        os.environ["MAX_JOBS"] = str(max(1, min(os.cpu_count() or 1, 4)))
    # torch runs `ninja` from PATH; a venv used without activation has it beside the interpreter.
    ninja_dir = _ninja_dir()
    if ninja_dir and shutil.which("ninja") is None:
        os.environ["PATH"] = ninja_dir + os.pathsep + os.environ.get("PATH", "")
    try:
        return cpp_extension.load(
            name=_module_name(key),
            sources=sources,
            extra_cflags=list(CXX_FLAGS) + (["-DAVATAR_WITH_CUDA"] if with_cuda else []),
            extra_cuda_cflags=list(CUDA_FLAGS),
            extra_ldflags=list(LD_FLAGS),
            extra_include_paths=[str(src_copy)],
            build_directory=str(build_dir),
            with_cuda=with_cuda,
            verbose=False,
        )
    finally:
        for k, v in previous_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _warn_fallback(reason: str) -> None:
    if _state.warned:
        return
    _state.warned = True
    warnings.warn(
        f"avatar kernels unavailable ({reason}); rasterize_gaussians, hash_triplane_encode and "
        "deform_gaussians use their pure-torch references, which are much slower. Install a C++ "
        "compiler and ninja (e.g. `apt-get install g++` and `pip install ninja`), then rerun.",
        RuntimeWarning,
        stacklevel=4,
    )


def load() -> ModuleType | None:
    """The extension module, building it on first use; None (after one warning) when it cannot be had."""
    if _state.attempted:
        return _state.module
    with _lock:
        if _state.attempted:
            return _state.module
        try:
            module = _prebuilt()
            if module is not None:
                _state.module, _state.origin = module, "prebuilt"
            elif find_compiler() is None:
                _state.failure = "no C++ compiler found (looked for $CXX, c++, g++, clang++)"
            elif _ninja_dir() is None:
                _state.failure = "ninja is not installed"
            else:
                with_cuda = _with_cuda()
                _state.module = _build(build_key(with_cuda), with_cuda)
                _state.origin = "built"
        except Exception as exc:  # a failed build must leave the ops usable
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            _state.failure = "the build failed: " + (" / ".join(lines[-3:]) if lines else type(exc).__name__)
        _state.attempted = True
    if _state.module is None:
        _warn_fallback(_state.failure)
    return _state.module


def _ninja_dir() -> str | None:
    """Folder of the ninja binary: on PATH, or beside the interpreter (a venv not activated)."""
    found = shutil.which("ninja")
    if found:
        return str(Path(found).parent)
    beside = Path(sys.executable).parent / "ninja"
    return str(beside.parent) if beside.exists() else None


def stream_handle(t) -> int:
    """The current CUDA stream of t's device as the integer the bindings take (0 on the CPU)."""
    import torch

    return torch.cuda.current_stream(t.device).cuda_stream if t.is_cuda else 0


def failure_reason() -> str:
    return _state.failure


def status() -> str:
    """One line on the extension, without building anything."""
    if _state.attempted:
        if _state.module is not None:
            return f"{'prebuilt' if _state.origin == 'prebuilt' else 'built'}, loaded"
        return f"unavailable: {_state.failure}"
    try:
        if importlib.util.find_spec(PREBUILT_MODULE) is not None:
            return "prebuilt"
    except (ImportError, ValueError):
        pass
    if find_compiler() is None:
        return "unavailable: no C++ compiler"
    try:
        key = build_key(_with_cuda())
    except OSError as exc:
        return f"unavailable: sources not found ({exc})"
    if _built_library(key) is not None:
        return "built (cached)"
    return "not built yet; builds on first use"
