"""Named, cached preprocessing stages and the scheduler that runs them.

A stage declares what it needs (earlier stages), which config sections it reads and what it writes.
Its cache key hashes its code version, those config values, the keys of the stages it needs and (for
the first stage) the source video's checksum. A stage is skipped when its record in `data/stages/`
holds the same key and its outputs exist. The record is deleted before a stage runs and written only
after all its outputs are in place, so an interrupted run never leaves a result a later run trusts.
Stages that do not depend on each other run at the same time (their work is mostly native code that
releases the GIL).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from avatar.config import AvatarConfig
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_write_json

T = TypeVar("T")


@dataclass
class StageContext:
    folder: AvatarFolder
    config: AvatarConfig
    source: Path
    source_sha256: str
    log: logging.Logger
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    """Set when another stage failed or the user pressed Ctrl-C: running stages stop at the next item."""
    bar_position: int = 0

    def progress(self, items: Iterable[T], total: int | None, desc: str, unit: str = "frame") -> Iterator[T]:
        """Iterate with a progress bar (rate and ETA) on a terminal's stderr; stops early when the run is cancelled."""
        from avatar.progress import progress

        for item in progress(items, total=total, desc=desc, unit=unit, position=self.bar_position):
            if self.cancel.is_set():
                raise StageCancelled(desc)
            yield item


class StageCancelled(Exception):
    """Raised inside a stage when the run was cancelled; its partial output is discarded."""


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[StageContext], None]
    needs: tuple[str, ...]
    sections: tuple[str, ...]
    outputs: tuple[str, ...]
    """Paths relative to data/ that must exist for the stage to count as done."""
    version: int = 1
    """Bump when the stage's code changes what it writes."""


def _record_path(folder: AvatarFolder, stage: Stage) -> Path:
    return folder.stage_records / f"{stage.name}.json"


def stage_key(stage: Stage, ctx: StageContext, upstream: dict[str, str]) -> str:
    payload = {
        "stage": stage.name,
        "version": stage.version,
        "config": {s: dataclasses.asdict(getattr(ctx.config, s)) for s in stage.sections},
        "needs": {n: upstream[n] for n in stage.needs},
    }
    if not stage.needs:
        payload["source_sha256"] = ctx.source_sha256
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def is_done(stage: Stage, folder: AvatarFolder, key: str) -> bool:
    record = _record_path(folder, stage)
    if not record.is_file():
        return False
    try:
        stored = json.loads(record.read_text()).get("key")
    except (OSError, json.JSONDecodeError):
        return False
    return stored == key and all((folder.data / out).exists() for out in stage.outputs)


def _run_one(stage: Stage, ctx: StageContext, key: str) -> float:
    record = _record_path(ctx.folder, stage)
    record.unlink(missing_ok=True)
    start = time.perf_counter()
    ctx.log.info("stage %s: running", stage.name)
    stage.run(ctx)
    seconds = time.perf_counter() - start
    missing = [out for out in stage.outputs if not (ctx.folder.data / out).exists()]
    if missing:
        raise RuntimeError(f"stage {stage.name} finished without writing {missing}")
    atomic_write_json(record, {"key": key, "seconds": round(seconds, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
    ctx.log.info("stage %s: done in %.1f s", stage.name, seconds)
    return seconds


def run_stages(
    stages: list[Stage],
    ctx: StageContext,
    only: list[str] | None = None,
    redo: list[str] | None = None,
    workers: int = 2,
) -> dict[str, float]:
    """Run the stages that are not up to date, independent ones concurrently.

    Returns the seconds each stage took (0.0 for stages skipped as up to date).
    """
    by_name = {s.name: s for s in stages}
    for name in (only or []) + (redo or []):
        if name not in by_name:
            raise AvatarError(f"unknown stage {name!r}; stages are: {', '.join(by_name)}")
    keys: dict[str, str] = {}
    for stage in stages:  # stages are listed in dependency order
        keys[stage.name] = stage_key(stage, ctx, keys)
    todo = {
        s.name for s in stages
        if (only is None or s.name in only) and (s.name in (redo or []) or not is_done(s, ctx.folder, keys[s.name]))
    }
    if only is not None:
        for name in todo:
            for need in by_name[name].needs:
                if need not in todo and not is_done(by_name[need], ctx.folder, keys[need]):
                    raise AvatarError(f"stage {name} needs stage {need}, which is not done; run without --only first")
    seconds = {s.name: 0.0 for s in stages}
    for s in stages:
        if s.name not in todo and (only is None or s.name in only):
            ctx.log.info("stage %s: up to date", s.name)
    done: set[str] = {s.name for s in stages if s.name not in todo}
    running: dict[concurrent.futures.Future, str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="stage") as pool:
        try:
            while todo or running:
                free_slots = max(1, workers) - len(running)
                ready = [s for s in stages if s.name in todo and all(n in done for n in s.needs)]
                for stage in ready[:free_slots]:
                    todo.discard(stage.name)
                    stage_ctx = dataclasses.replace(ctx, bar_position=len(running))
                    running[pool.submit(_run_one, stage, stage_ctx, keys[stage.name])] = stage.name
                if not running:
                    raise RuntimeError(f"stages {sorted(todo)} can never run: their inputs are missing")
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    seconds[name] = future.result()
                    done.add(name)
        except BaseException:
            ctx.cancel.set()
            for future in running:
                future.cancel()
            raise
    return seconds
