"""What a batch worker process runs: one job at a time, with the avatars it loaded kept for its next jobs.

`run_job` never raises for a job's own failure (bad audio, no face, a bug): it returns the one-line error,
so one bad job cannot stop the others. Only the death of the process itself is left to the engine, which
gives the job to another worker.
"""
from __future__ import annotations

import collections
import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from avatar.errors import AvatarError

KEPT_AVATARS = 4  # loaded avatars a worker keeps (least recently used goes first)
_loaded: collections.OrderedDict = collections.OrderedDict()


def run_job(spec: dict, avatar_pack: bytes | None = None, audio: bytes | None = None) -> dict:
    """Run one job spec (plain values, see `avatar.batch.run`). With `avatar_pack` / `audio` (shipped through
    Ray's object store) the avatar folder and the audio come from those bytes and the output comes back as
    bytes in the result's "data"."""
    import torch

    from avatar.progress import QUIET_ENV

    os.environ[QUIET_ENV] = "1"  # the batch draws one bar over its jobs; theirs would garble it
    start = time.perf_counter()
    result = {"ok": True, "error": None, "pid": os.getpid(), "audio_seconds": None, "data": None}
    torch.set_num_threads(max(1, int(spec["cpus"])))
    try:
        if spec["kind"] == "fit":
            _fit(spec)
        elif avatar_pack is not None:
            result.update(_render_shipped(spec, avatar_pack, audio))
        else:
            result["audio_seconds"] = _render(spec, Path(spec["avatar"]), Path(spec["output"]),
                                              Path(spec["values"]["audio"]) if spec["values"]["source"] == "audio" else None)
    except AvatarError as exc:
        result.update(ok=False, error=str(exc))
    except Exception as exc:  # a bug in one job is that job's failure, not the batch's
        lines = str(exc).strip().splitlines()
        result.update(ok=False, error=f"{type(exc).__name__}: {lines[0] if lines else 'no message'}")
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def _fit(spec: dict) -> None:
    from avatar.config import load_config
    from avatar.folder import AvatarFolder
    from avatar.model.store import WEIGHTS
    from avatar.train.run import checkpoint_dir, fit_video, run_config_path

    values = spec["values"]
    config = load_config(values["recipe"], {**values["overrides"], "compute.device": spec["device"]})
    folder = AvatarFolder(Path(spec["avatar"]))
    interrupted = run_config_path(folder).is_file() and checkpoint_dir(folder).exists() and not (folder.model / WEIGHTS).exists()
    fit_video(Path(values["video"]), folder.root, config, values["recipe"], resume=interrupted and not values["force"],
              force=values["force"])


def _render(spec: dict, avatar: Path, output: Path, audio: Path | None) -> float | None:
    """Render one job into `output`; the audio seconds rendered (None for a replay)."""
    from avatar.device import resolve_device
    from avatar.folder import open_avatar_folder

    values = spec["values"]
    device = resolve_device(spec["device"])
    folder = open_avatar_folder(avatar)
    if values["source"] == "replay":
        from avatar.render.replay import render_replay

        render_replay(folder, output, device, values["frames"], values["camera"])
        return None
    from avatar.render.audio_render import render_audio

    with tempfile.TemporaryDirectory(prefix="avatar-batch-") as scratch:
        if values["source"] == "text":
            audio = _speak(values, Path(scratch) / "speech.wav")
        done = render_audio(folder, audio, output, device, values["pose"], values["mouth_scale"], values["background"],
                            values["size"], None, values["allow_silence"], values["seed"], values["pauses"],
                            loaded=_avatar(folder, device))
    return done["audio_seconds"]


def _speak(values: dict, path: Path) -> Path:
    from avatar.audio.io import write_wav
    from avatar.speech_synth import synthesize

    samples, rate = synthesize(values["text"], voice=values["voice"], words_per_minute=values["rate"])
    if len(samples) == 0:
        raise AvatarError("espeak-ng produced no sound for that text; give some words to say")
    write_wav(path, samples, rate)
    return path


def _avatar(folder, device):
    """The folder's loaded avatar, from this worker's cache unless its trained model changed on disk."""
    from avatar.model.store import WEIGHTS
    from avatar.render.audio_render import load_avatar

    model = folder.model / WEIGHTS
    key = (str(folder.root.resolve()), model.stat().st_mtime_ns, str(device))
    if key not in _loaded:
        _loaded[key] = load_avatar(folder, device)
        while len(_loaded) > KEPT_AVATARS:
            _loaded.popitem(last=False)
    _loaded.move_to_end(key)
    return _loaded[key]


# --- shipped inputs (Ray, --ship): nodes that do not share the avatar folders and audio files -------------

SHIPPED_EXCLUDED = ("data/frames", "data/masks", "data/mattes", "model/checkpoint", "logs", "eval")


def pack_avatar(root: Path) -> bytes:
    """A tar of what rendering needs from an avatar folder (no frames, masks, checkpoints or logs)."""
    buffer = io.BytesIO()
    root = Path(root)
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if path.is_file() and not path.is_symlink() and not relative.startswith(SHIPPED_EXCLUDED):
                tar.add(path, arcname=relative, recursive=False)
    return buffer.getvalue()


def _render_shipped(spec: dict, avatar_pack: bytes, audio: bytes | None) -> dict:
    import hashlib

    digest = hashlib.sha256(avatar_pack).hexdigest()[:16]
    avatar = Path(tempfile.gettempdir()) / "avatar-batch-shipped" / digest
    if not avatar.is_dir():  # unpacked once per node
        avatar.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=avatar.parent))
        with tarfile.open(fileobj=io.BytesIO(avatar_pack)) as tar:
            tar.extractall(partial, filter="data")  # the "data" filter refuses absolute paths, links out and devices
        try:
            os.replace(partial, avatar)
        except OSError:  # another worker unpacked it first
            shutil.rmtree(partial, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="avatar-batch-") as scratch:
        audio_path = None
        if audio is not None:
            audio_path = Path(scratch) / f"audio{Path(spec['values']['audio']).suffix}"
            audio_path.write_bytes(audio)
        output = Path(scratch) / Path(spec["output"]).name
        seconds = _render(spec, avatar, output, audio_path)
        return {"audio_seconds": seconds, "data": output.read_bytes()}

