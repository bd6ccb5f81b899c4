"""Helpers shared by tests: running the CLI as a user would, and finding the real recordings."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A real recording from ../shared/data, or skip when this checkout has none (a user's clone)."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} is not available (real sample data lives outside the repository)")
    return path


def run_cli(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `avatar ARGS...` in a fresh interpreter, as a user would (`env`: variables to change)."""
    environment = None if env is None else {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "avatar", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=environment)
