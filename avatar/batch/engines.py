"""Where batch jobs run: a local pool of worker processes (the default, nothing extra to install) or a Ray
cluster. Both take job specs and report each result as it arrives; both give the job of a worker that died
to another worker, at most `MAX_ATTEMPTS` times in all.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from avatar.batch.worker import pack_avatar, run_job
from avatar.errors import AvatarError

MAX_ATTEMPTS = 3
Report = Callable[[dict, dict], None]  # (spec, result)


def died(attempts: int) -> dict:
    return {"ok": False, "error": f"its worker process died {attempts} times (out of memory or killed?)",
            "attempts": attempts, "audio_seconds": None, "data": None, "seconds": None}


class LocalEngine:
    """`workers` processes on this machine (spawned, so a crashed job cannot leave the parent in a bad state)."""

    def __init__(self, workers: int):
        self.workers = workers

    def run(self, specs: list[dict], report: Report) -> None:
        attempts = {id(spec): 0 for spec in specs}
        pending = list(specs)
        while pending:
            with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                running = {pool.submit(run_job, spec): spec for spec in pending}
                pending = []
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        spec = running.pop(future)
                        attempts[id(spec)] += 1
                        try:
                            report(spec, {**future.result(), "attempts": attempts[id(spec)]})
                        except BrokenProcessPool:  # a worker died: every job not finished goes again
                            if attempts[id(spec)] < MAX_ATTEMPTS:
                                pending.append(spec)
                            else:
                                report(spec, died(attempts[id(spec)]))

    def close(self) -> None:
        pass


class RayEngine:
    """Tasks on a Ray cluster: the one at `address` ("auto": the one `ray start` made on this machine), the
    one this process already joined, or a local one of `workers` CPUs started here (and stopped by `close`).
    Each task asks for its job's CPUs; Ray retries a task whose worker died."""

    def __init__(self, workers: int, address: str | None, ship: bool):
        try:
            import ray
        except ImportError:
            raise AvatarError("--engine ray needs Ray: pip install -e \".[ray]\" (or use --engine local)") from None
        self._ray = ray
        self._started = False
        self.ship = ship
        self._packs: dict[str, object] = {}
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise AvatarError(f"could not reach the Ray cluster at {address or 'a new local one'}: "
                                  f"{str(exc).splitlines()[0]}; start it with `ray start --head` or drop --address") from None
            self._started = True
        self._task = ray.remote(run_job)

    def run(self, specs: list[dict], report: Report) -> None:
        ray = self._ray
        running = {self._submit(spec): spec for spec in specs}
        while running:
            finished, _ = ray.wait(list(running), num_returns=1)
            for ref in finished:
                spec = running.pop(ref)
                try:
                    report(spec, ray.get(ref))
                except ray.exceptions.RayError as exc:  # retries used up: the worker (or its node) kept dying
                    report(spec, {**died(MAX_ATTEMPTS), "error": f"Ray gave up on it: {str(exc).splitlines()[0]}"})

    def _submit(self, spec: dict):
        task = self._task.options(num_cpus=spec["cpus"], max_retries=MAX_ATTEMPTS - 1, retry_exceptions=False)
        if not (self.ship and spec["kind"] == "render"):
            return task.remote(spec)
        avatar = spec["avatar"]
        if avatar not in self._packs:  # one copy in the object store per avatar
            self._packs[avatar] = self._ray.put(pack_avatar(avatar))
        audio = None
        if spec["values"]["source"] == "audio":
            with open(spec["values"]["audio"], "rb") as fh:
                audio = self._ray.put(fh.read())
        return task.remote(spec, self._packs[avatar], audio)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def make_engine(name: str, workers: int | None, address: str | None = None, ship: bool = False):
    workers = workers or max(1, (os.cpu_count() or 1) // 2)
    if workers < 1:
        raise AvatarError("--workers must be at least 1")
    if name == "local":
        if address or ship:
            raise AvatarError("--address and --ship are for --engine ray")
        return LocalEngine(workers)
    if name == "ray":
        return RayEngine(workers, address, ship)
    raise AvatarError(f"--engine {name!r}: choose local or ray")
