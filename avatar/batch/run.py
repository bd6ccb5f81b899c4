"""`avatar batch JOBS --out DIR`: every job of a jobs file, fits first, on a local pool or a Ray cluster.

Idempotent: a render's output is named by its job key (its values and the checksums of its audio and of
the trained avatar), written under a temporary name and renamed when complete, so a file with a final name
is a finished job and the next run skips it. A finished fit leaves `DIR/fits/<key>.json`. Failures stay
local: each is one line in `DIR/report.json` and `DIR/report.csv`; the next run repeats a job that failed
only with `retry_failed`.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import time
from pathlib import Path

from avatar.batch.jobs import Job, fit_order, job_key, output_name, read_jobs
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_path, atomic_write_json, atomic_write_text, ensure_writable_dir, sha256_file

REPORT_FIELDS = ("job", "kind", "name", "status", "output", "error", "seconds", "attempts", "audio_seconds", "key")


@dataclasses.dataclass
class Outcome:
    """One job's line of the report."""

    job: int
    kind: str
    name: str
    status: str  # done | skipped (finished by an earlier run or earlier in this file) | failed | not run (interrupted)
    output: str | None = None
    error: str | None = None
    seconds: float | None = None
    attempts: int | None = None
    audio_seconds: float | None = None
    key: str | None = None


def run_batch(jobs_file: Path, out: Path, engine: str = "local", workers: int | None = None, address: str | None = None,
              retry_failed: bool = False, ship: bool = False) -> dict:
    """Run the jobs of `jobs_file` into `out`; returns the report (also written to out/report.json and .csv)."""
    from tqdm import tqdm

    from avatar.batch.engines import make_engine
    from avatar.progress import bar_disabled

    jobs = read_jobs(Path(jobs_file))
    out = ensure_writable_dir(Path(out))
    failed_before = _failed_before(out / "report.json") if not retry_failed else {}
    start = time.perf_counter()
    pool = make_engine(engine, workers, address, ship)
    outcomes: dict[int, Outcome] = {}
    bar = tqdm(total=len(jobs), desc="   batch", unit="job", dynamic_ncols=True, disable=bar_disabled())
    try:
        fits, renders = fit_order(jobs)
        for phase, prepare in ((fits, _prepare_fit), (renders, _prepare_render)):
            specs: list[dict] = []
            for job in phase:
                spec = prepare(job, out, outcomes, fits)
                queued = next((s for s in specs if not isinstance(spec, Outcome) and s["key"] == spec["key"]), None)
                if isinstance(spec, Outcome):
                    outcomes[job.index] = spec
                elif spec["key"] in failed_before:
                    outcomes[job.index] = Outcome(job.index, job.kind, job.name, "failed", key=spec["key"],
                                                  error=f"{failed_before[spec['key']]} (failed before; --retry-failed runs it again)")
                elif queued is not None:  # the same job twice in the file: it runs once
                    outcomes[job.index] = Outcome(job.index, job.kind, job.name, "skipped", output=spec["output"], key=spec["key"])
                else:
                    specs.append(spec)
                    continue
                _tick(bar, outcomes)
            pool.run(specs, lambda spec, result: _finish(spec, result, outcomes, bar))
    finally:  # interrupted too: the report says what finished (a rerun skips it) and what did not run
        pool.close()
        bar.close()
        report = _report(jobs, outcomes, engine, time.perf_counter() - start)
        _write_report(out, report)
    return report


def _prepare_fit(job: Job, out: Path, outcomes: dict, fits: list[Job]) -> dict | Outcome:
    video = Path(job.values["video"])
    if not video.is_file():
        return Outcome(job.index, job.kind, job.name, "failed", error=f"{video} does not exist; check the video path")
    key = job_key(job, {"video": _checksum(video)})
    marker = out / "fits" / f"{job.name}-{key[:12]}.json"
    if marker.is_file() and _weights(job.avatar).is_file():
        return Outcome(job.index, job.kind, job.name, "skipped", output=str(job.avatar), key=key)
    return _spec(job, key, marker)


def _prepare_render(job: Job, out: Path, outcomes: dict, fits: list[Job]) -> dict | Outcome:
    fit = next((f for f in fits if f.avatar == job.avatar), None)
    if fit is not None and outcomes[fit.index].status == "failed":
        return Outcome(job.index, job.kind, job.name, "failed", error=f"its avatar's fit (job {fit.index}) failed")
    model = _weights(job.avatar)
    if not model.is_file():
        return Outcome(job.index, job.kind, job.name, "failed",
                       error=f"{job.avatar} has no trained avatar; fit it first (a fit job in the same file runs first)")
    identities = {"avatar": _checksum(model)}
    for name in ("audio", "background"):
        value = job.values.get(name)
        if name == "audio" and value is not None and not Path(value).is_file():
            return Outcome(job.index, job.kind, job.name, "failed", error=f"{value} does not exist; check the audio path")
        if value is not None and Path(value).is_file():
            identities[name] = _checksum(Path(value))
    key = job_key(job, identities)
    output = out / output_name(job, key)
    if output.is_file():
        return Outcome(job.index, job.kind, job.name, "skipped", output=str(output), key=key)
    return _spec(job, key, output)


def _weights(avatar: Path) -> Path:
    from avatar.model.store import WEIGHTS

    return AvatarFolder(avatar).model / WEIGHTS


def _checksum(path: Path) -> str:
    stat = path.stat()
    return _cached_checksum(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _cached_checksum(path: str, size: int, mtime_ns: int) -> str:  # many jobs share one avatar or audio file
    return sha256_file(Path(path))


def _spec(job: Job, key: str, output: Path) -> dict:
    """What a worker gets: plain values only (they cross process and machine boundaries)."""
    return {"job": job.index, "kind": job.kind, "name": job.name, "avatar": str(job.avatar), "values": job.values,
            "device": job.device, "cpus": job.cpus, "key": key, "output": str(output)}


def _finish(spec: dict, result: dict, outcomes: dict, bar) -> None:
    output = Path(spec["output"])
    if result["ok"] and result.get("data") is not None:  # shipped back through Ray's object store
        with atomic_path(output) as tmp:
            tmp.write_bytes(result["data"])
    if result["ok"] and spec["kind"] == "fit":
        atomic_write_json(output, {"job": spec["job"], "key": spec["key"], "avatar": spec["avatar"], "values": spec["values"]})
    outcomes[spec["job"]] = Outcome(spec["job"], spec["kind"], spec["name"], "done" if result["ok"] else "failed",
                                    output=(spec["avatar"] if spec["kind"] == "fit" else str(output)) if result["ok"] else None,
                                    error=result["error"], seconds=result["seconds"], attempts=result.get("attempts"),
                                    audio_seconds=result.get("audio_seconds"), key=spec["key"])
    _tick(bar, outcomes)


def _tick(bar, outcomes: dict) -> None:
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("done", "skipped", "failed")}
    bar.set_postfix(counts, refresh=False)
    bar.update(1)


def _report(jobs: list[Job], outcomes: dict, engine: str, seconds: float) -> dict:
    rows = [dataclasses.asdict(outcomes.get(job.index) or Outcome(job.index, job.kind, job.name, "not run")) for job in jobs]
    counts = {s.replace(" ", "_"): sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed", "not run")}
    audio = sum(r["audio_seconds"] or 0.0 for r in rows if r["status"] == "done")
    return {"summary": {"jobs": len(rows), **counts, "engine": engine, "wall_seconds": round(seconds, 2),
                        "audio_seconds_rendered": round(audio, 3)}, "jobs": rows}


def _write_report(out: Path, report: dict) -> None:
    atomic_write_json(out / "report.json", report)
    text = io.StringIO()
    writer = csv.DictWriter(text, REPORT_FIELDS)
    writer.writeheader()
    writer.writerows(report["jobs"])
    atomic_write_text(out / "report.csv", text.getvalue())


def _failed_before(path: Path) -> dict[str, str]:
    """key -> error of the jobs an earlier run's report lists as failed (nothing if there is no report)."""
    if not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text())["jobs"]
        return {r["key"]: r["error"].split(" (failed before;")[0] for r in rows if r["status"] == "failed" and r.get("key")}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AvatarError(f"{path} is not a report this version wrote; move it away to start the batch afresh") from None


def summary_line(report: dict, out: Path) -> str:
    s = report["summary"]
    interrupted = f", {s['not_run']} not run" if s["not_run"] else ""
    return (f"batch: {s['done']} done, {s['skipped']} skipped, {s['failed']} failed{interrupted} of {s['jobs']} jobs in "
            f"{s['wall_seconds']:.0f} s ({s['engine']}); report: {Path(out) / 'report.json'}")
