"""One writer per avatar folder: an advisory lock on `ROOT/.lock`, which also records the command holding it.

A second command that would write the same folder (two fits, a fit while preprocessing runs, a batch job
and a user) stops with a one-line error naming the one that is running. The operating system drops the
lock when its process ends however it ends (killed, crashed), so a lock left by a dead process is simply
taken over. Nested use in one process (fit = preprocess + train) is allowed. The file is never deleted:
deleting a lock file while another process waits on it would let two writers in.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from avatar.errors import AvatarError

LOCK_NAME = ".lock"
_held: dict[Path, int] = {}  # lock path -> nesting depth, in this process


def _holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def folder_lock(root: Path | str, command: str) -> Iterator[None]:
    """Hold the write lock of the avatar folder `root` while the block runs."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = (root / LOCK_NAME).resolve()
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder(fd)
            raise AvatarError(f"{root} is in use by `{info.get('command', 'another avatar command')}` (process "
                              f"{info.get('pid', '?')} on {info.get('host', '?')}, since {info.get('since', '?')}); "
                              "wait for it to finish or stop it") from None
        record = {"command": command, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the lock
