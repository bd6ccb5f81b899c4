"""The jobs file of `avatar batch`: plain values in YAML or CSV, checked and normalised into `Job`s.

A job is a render (an avatar folder driven by an audio file, by typed text, or by its own video) or a fit
(a video into an avatar folder). Every option has its `avatar render` / `avatar fit` default filled in, so
two jobs that mean the same thing have the same key (`job_key`), and the key names the output.
Relative paths are taken from the jobs file's folder.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from avatar.errors import AvatarError

# Render options and their `avatar render` defaults (option names with `_` where the flag has `-`).
RENDER_OPTIONS: dict[str, Any] = {
    "pose": "generated", "pauses": "closed", "mouth_scale": 1.0, "background": "plate", "size": None, "seed": 0,
    "allow_silence": False, "frames": None, "camera": None,
}
RENDER_SOURCES = ("audio", "text", "replay")
TEXT_OPTIONS: dict[str, Any] = {"voice": "en-us", "rate": 160}
FORMATS = ("mp4", "webm")
COMMON_KEYS = ("kind", "name", "avatar", "device", "cpus")
FIT_KEYS = ("video", "recipe", "overrides", "force")
RENDER_CPUS = 1
FIT_CPUS = 2
_OPTION_TYPES = {"mouth_scale": float, "size": int, "seed": int, "rate": int, "cpus": int}
_BOOLEANS = ("allow_silence", "replay", "force")


@dataclasses.dataclass(frozen=True)
class Job:
    """One line of the jobs file, resolved. `index` is its 1-based position in the file."""

    index: int
    kind: str  # "render" | "fit"
    name: str
    avatar: Path  # the avatar folder rendered from, or fitted into
    values: dict  # render: source and options; fit: video, recipe, overrides, force
    device: str = "auto"
    cpus: int = RENDER_CPUS

    def describe(self) -> str:
        return f"job {self.index} ({self.kind} {self.name})"


def read_jobs(path: Path) -> list[Job]:
    """The jobs of a .yaml/.yml or .csv file, in file order; any mistake is a one-line `AvatarError`."""
    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"jobs file {path} does not exist; give a .yaml or .csv file of jobs (see README, `avatar batch`)")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        rows = _yaml_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise AvatarError(f"jobs file {path} must end in .yaml, .yml or .csv")
    if not rows:
        raise AvatarError(f"jobs file {path} lists no jobs")
    return [_job(i + 1, row, path.parent) for i, row in enumerate(rows)]


def fit_order(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """(fit jobs, render jobs): fits come first, so a render of an avatar fitted in the same file finds it."""
    fits = [job for job in jobs if job.kind == "fit"]
    targets = [job.avatar for job in fits]
    for job in fits:
        if targets.count(job.avatar) > 1:
            raise AvatarError(f"{job.describe()}: another fit job in the file writes the same avatar folder {job.avatar}")
    return fits, [job for job in jobs if job.kind == "render"]


def job_key(job: Job, identities: dict) -> str:
    """sha256 of what the job's output depends on: its values and the content of its inputs (`identities`:
    e.g. the audio file's and the trained avatar's checksums)."""
    payload = {"kind": job.kind, "avatar": str(job.avatar), "device": job.device, "values": _plain(job.values), **identities}
    if job.kind == "render":
        payload.pop("avatar")  # a render depends on the avatar's content (in identities), not where it lies
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def output_name(job: Job, key: str) -> str:
    """File name of a render job's output: its name and the first 12 hex digits of its key."""
    return f"{job.name}-{key[:12]}.{job.values['format']}"


def _yaml_rows(path: Path) -> list[dict]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AvatarError(f"jobs file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict) and set(data) == {"jobs"}:
        data = data["jobs"]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise AvatarError(f"jobs file {path} must be a list of jobs (or `jobs:` and a list), each a mapping of plain values")
    return data


def _csv_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise AvatarError(f"jobs file {path} is not readable CSV: {exc}") from None
    cleaned = []
    for row in rows:
        if None in row:
            raise AvatarError(f"jobs file {path}: a row has more cells than the header has columns")
        values = {k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip() != ""}
        if "overrides" in values:  # `section.field=value;section.field=value`
            pairs = [p for p in values["overrides"].split(";") if p.strip()]
            if not all("=" in p for p in pairs):
                raise AvatarError(f"jobs file {path}: overrides are written `train.iterations=500;model.x=y`")
            values["overrides"] = dict(p.strip().split("=", 1) for p in pairs)
        cleaned.append(values)
    return cleaned


def _job(index: int, row: dict, base: Path) -> Job:
    where = f"job {index}"
    kind = row.get("kind") or ("fit" if "video" in row else "render")
    if kind not in ("render", "fit"):
        raise AvatarError(f"{where}: kind is render or fit, not {kind!r}")
    allowed = set(COMMON_KEYS) | (set(FIT_KEYS) if kind == "fit" else {*RENDER_OPTIONS, *RENDER_SOURCES, *TEXT_OPTIONS, "format"})
    unknown = sorted(set(row) - allowed)
    if unknown:
        raise AvatarError(f"{where}: unknown key {unknown[0]!r} for a {kind} job; allowed: {', '.join(sorted(allowed))}")
    if not row.get("avatar"):
        raise AvatarError(f"{where}: say which avatar folder it {'renders' if kind == 'render' else 'fits into'} (`avatar: PATH`)")
    avatar = _path(row["avatar"], base)
    device = str(row.get("device", "auto"))
    if device not in ("auto", "cpu", "cuda"):
        raise AvatarError(f"{where}: device is auto, cpu or cuda, not {device!r}")
    values = _fit_values(row, base, where) if kind == "fit" else _render_values(row, base, where)
    cpus = _coerce(row.get("cpus", FIT_CPUS if kind == "fit" else RENDER_CPUS), int, "cpus", where)
    if cpus < 1:
        raise AvatarError(f"{where}: cpus must be at least 1")
    name = str(row.get("name") or _default_name(kind, avatar, values))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise AvatarError(f"{where}: name {name!r} may hold only letters, digits, '.', '_' and '-' (it names the output file)")
    return Job(index, kind, name, avatar, values, device, cpus)


def _render_values(row: dict, base: Path, where: str) -> dict:
    replay = _coerce(row.get("replay", False), bool, "replay", where)
    sources = [s for s in ("audio", "text") if row.get(s)] + (["replay"] if replay else [])
    if len(sources) != 1:
        raise AvatarError(f"{where}: a render job takes one of audio: FILE, text: \"...\" or replay: true")
    values: dict[str, Any] = {"source": sources[0]}
    if sources[0] == "audio":
        values["audio"] = str(_path(row["audio"], base))
    if sources[0] == "text":
        values["text"] = str(row["text"])
        for key, default in TEXT_OPTIONS.items():
            values[key] = _coerce(row.get(key, default), type(default), key, where)
    elif any(key in row for key in TEXT_OPTIONS):
        raise AvatarError(f"{where}: voice and rate go with text:, not with {sources[0]}")
    for key, default in RENDER_OPTIONS.items():
        value = row.get(key, default)
        values[key] = None if value is None else _coerce(value, _OPTION_TYPES.get(key, bool if key in _BOOLEANS else str), key, where)
    if sources[0] != "replay" and (values["frames"] or values["camera"]):
        raise AvatarError(f"{where}: frames and camera are options of replay: true renders")
    if values["background"] not in ("plate", "transparent") and not values["background"].startswith("#"):
        values["background"] = str(_path(values["background"], base))  # an image file
    values["format"] = str(row.get("format", "webm" if values["background"] == "transparent" else "mp4"))
    if values["format"] not in FORMATS:
        raise AvatarError(f"{where}: format is mp4 or webm, not {values['format']!r}")
    return values


def _fit_values(row: dict, base: Path, where: str) -> dict:
    if not row.get("video"):
        raise AvatarError(f"{where}: a fit job needs video: FILE")
    overrides = row.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise AvatarError(f"{where}: overrides is a mapping of settings, e.g. {{train.iterations: 500}}")
    from avatar.config import DEFAULT_RECIPE

    return {"video": str(_path(row["video"], base)), "recipe": str(row.get("recipe") or DEFAULT_RECIPE),
            "overrides": {str(k): str(v) for k, v in sorted(overrides.items())},
            "force": _coerce(row.get("force", False), bool, "force", where)}


def _default_name(kind: str, avatar: Path, values: dict) -> str:
    if kind == "fit":
        return f"fit-{avatar.name}"
    source = values["source"]
    detail = Path(values["audio"]).stem if source == "audio" else source
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{avatar.name}-{detail}").strip("_.-") or "render"


def _path(value, base: Path) -> Path:
    path = Path(str(value)).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _coerce(value, tp: type, key: str, where: str):
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    text = str(value).strip().lower()
    try:
        if tp is bool:
            if text in ("true", "yes", "1"):
                return True
            if text in ("false", "no", "0"):
                return False
            raise ValueError
        return tp(str(value).strip()) if tp is not str else str(value)
    except ValueError:
        raise AvatarError(f"{where}: {key} must be {'true or false' if tp is bool else f'a {tp.__name__}'}, not {value!r}") from None


def _plain(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}
