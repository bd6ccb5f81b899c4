"""One writer per avatar folder: a second one is refused with the first one's name; a dead one's lock is taken over."""
import os
import signal
import subprocess
import sys
import time

import pytest

from avatar.errors import AvatarError
from avatar.folder_lock import folder_lock

HOLD = """
import sys, time
from avatar.folder_lock import folder_lock
with folder_lock(sys.argv[1], "avatar fit clip.mp4"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(root):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_and_named(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(AvatarError, match=rf"in use by `avatar fit clip.mp4` \(process {proc.pid} "):
            with folder_lock(tmp_path, "avatar preprocess"):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_writers_lock_is_taken_over(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / ".lock").exists()  # left behind by the dead process
    with folder_lock(tmp_path, "avatar preprocess"):
        pass


def test_nested_use_in_one_process_and_release(tmp_path):
    with folder_lock(tmp_path, "avatar fit"):
        with folder_lock(tmp_path, "avatar train"):
            pass
    proc = _holder(tmp_path)  # released: another process can take it
    proc.kill()
    proc.wait()


def test_two_preprocess_runs_into_one_folder(sample_video, tmp_path):
    """The second `avatar preprocess` into a folder that one is writing stops at once, naming the first."""
    from helpers import run_cli

    out = tmp_path / "avatar"
    first = subprocess.Popen([sys.executable, "-m", "avatar", "preprocess", str(sample_video), "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / ".lock").exists() or not (out / ".lock").read_text():
            assert time.monotonic() < deadline and first.poll() is None, "the first run never took the lock"
            time.sleep(0.05)
        second = run_cli("preprocess", sample_video, "--out", out)
        assert second.returncode == 2 and "in use by `avatar preprocess" in second.stderr and f"process {first.pid}" in second.stderr
    finally:
        first.terminate()
        first.wait()
