"""avatar batch: outputs identical to `avatar render`, failures kept to their job, reruns that skip finished
work, fit jobs before the renders that need them, and the same on a local Ray cluster with a worker killed."""
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from media import read_audio, read_frames

from avatar.audio.io import write_wav
from avatar.batch.jobs import read_jobs
from avatar.batch.run import run_batch
from avatar.errors import AvatarError


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    """Three short espeak clips in two languages."""
    from avatar.speech_synth import synthesize

    folder = tmp_path_factory.mktemp("voices")
    for name, text, voice in (("one", "Maybe the big apple pie.", "en-us"), ("two", "Bonjour, comment allez-vous?", "fr"),
                              ("long", "We will be back with more news on the hour, every hour, right here.", "en-us")):
        samples, rate = synthesize(text, voice=voice)
        write_wav(folder / f"{name}.wav", samples, rate)
    return folder


def _jobs(tmp_path, avatar, voices, extra=()) -> Path:
    jobs = [{"avatar": str(avatar), "audio": str(voices / "one.wav")},
            {"avatar": str(avatar), "audio": str(voices / "two.wav"), "pose": "still", "seed": 3, "name": "french"},
            {"avatar": str(avatar), "audio": str(voices / "nowhere.wav")},
            {"avatar": str(avatar), "audio": str(voices / "one.wav"), "background": "#102030", "size": 128}, *extra]
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump({"jobs": jobs}))
    return path


def _by_job(report) -> dict:
    return {row["job"]: row for row in report["jobs"]}


def _render(avatar: Path, flags: list[str], out: Path) -> None:
    from avatar.cli import main

    assert main(["render", str(avatar), *flags, "--out", str(out)]) == 0


def _assert_same_video(output: Path, reference: Path, what: str) -> None:
    """`output` holds what `reference` holds: the same bytes, or (where two processes' float arithmetic differs in
    its last bits, as CI saw for a Ray worker) the same number of frames a fraction of a level apart on average and
    the same sound. Another seed alone puts frames up to 16 levels apart."""
    if output.read_bytes() == reference.read_bytes():
        return
    ours, theirs = read_frames(output), read_frames(reference)
    assert len(ours) == len(theirs) and ours[0].shape == theirs[0].shape, what
    worst = max(float(np.abs(a.astype(np.float32) - b).mean()) for a, b in zip(ours, theirs))
    assert worst < 0.5, f"{what}: frames differ by {worst:.2f} levels on average"
    (sound, rate), (their_sound, their_rate) = read_audio(output), read_audio(reference)
    assert rate == their_rate and np.array_equal(sound, their_sound), what


def _check_against_render(trained_sample, voices, tmp_path, rows) -> None:
    """The three good jobs wrote what `avatar render` writes for the same options."""
    options = {1: ["--audio", str(voices / "one.wav")],
               2: ["--audio", str(voices / "two.wav"), "--pose", "still", "--seed", "3"],
               4: ["--audio", str(voices / "one.wav"), "--background", "#102030", "--size", "128"]}
    for job, flags in options.items():
        reference = tmp_path / f"reference-{job}.mp4"
        _render(trained_sample.root, flags, reference)
        assert rows[job]["status"] in ("done", "skipped")
        _assert_same_video(Path(rows[job]["output"]), reference, f"job {job}")


def test_local_batch_renders_what_render_writes_and_reruns_skip(trained_sample, voices, tmp_path):
    out = tmp_path / "out"
    report = run_batch(_jobs(tmp_path, trained_sample.root, voices), out, "local", workers=2)
    rows = _by_job(report)
    assert report["summary"] | {"wall_seconds": 0} == {"jobs": 4, "done": 3, "skipped": 0, "failed": 1, "not_run": 0, "engine": "local",
                                                      "wall_seconds": 0, "audio_seconds_rendered": report["summary"]["audio_seconds_rendered"]}
    assert rows[3]["status"] == "failed" and "nowhere.wav does not exist" in rows[3]["error"]
    assert rows[2]["output"].endswith(".mp4") and Path(rows[2]["output"]).name.startswith("french-")
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(Path(rows[j]["output"]).name for j in (1, 2, 4))
    assert json.loads((out / "report.json").read_text()) == report
    assert (out / "report.csv").read_text().splitlines()[0].startswith("job,kind,name,status,output,error")
    _check_against_render(trained_sample, voices, tmp_path, rows)

    again = run_batch(_jobs(tmp_path, trained_sample.root, voices), out, "local", workers=1)
    assert [r["status"] for r in again["jobs"]] == ["skipped", "skipped", "failed", "skipped"]
    assert all(again_row["output"] == rows[i]["output"] for i, again_row in _by_job(again).items() if i != 3)


def test_a_job_that_fails_in_its_worker_is_retried_only_when_asked(trained_sample, tmp_path):
    silent = tmp_path / "silence.wav"
    write_wav(silent, [0.0] * 16000, 16000)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"avatar,audio,name\n{trained_sample.root},{silent},quiet\n")
    first = run_batch(jobs, tmp_path / "out", "local", workers=1)["jobs"][0]
    assert first["status"] == "failed" and "silent" in first["error"] and first["attempts"] == 1
    second = run_batch(jobs, tmp_path / "out", "local", workers=1)["jobs"][0]
    assert second["status"] == "failed" and "--retry-failed" in second["error"] and second["attempts"] is None
    third = run_batch(jobs, tmp_path / "out", "local", workers=1, retry_failed=True)["jobs"][0]
    assert third["status"] == "failed" and third["attempts"] == 1


def test_fit_jobs_run_before_the_renders_that_need_them(sample_avatar, sample_video, voices, tmp_path):
    target = tmp_path / "fitted"
    shutil.copytree(sample_avatar.root, target, ignore=shutil.ignore_patterns("model", "eval", "logs"))  # preprocessing cached
    tiny = {"train.iterations": 30, "train.resolution": 128, "model.head_gaussians": 3000, "model.torso_gaussians": 1200,
            "model.max_gaussians": 6000, "model.hash_levels": 8, "model.hash_log2_table": 12, "train.adapter_steps": 50}
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump([{"avatar": "fitted", "audio": str(voices / "one.wav")},  # listed first, runs second
                                    {"video": str(sample_video), "avatar": "fitted", "recipe": "preview", "overrides": tiny}]))
    report = run_batch(jobs, tmp_path / "out", "local", workers=1)
    rows = _by_job(report)
    assert rows[2]["status"] == "done" and rows[2]["kind"] == "fit", rows[2]["error"]
    assert rows[1]["status"] == "done", rows[1]["error"]
    assert (target / "model" / "avatar.safetensors").is_file() and len(list((tmp_path / "out" / "fits").glob("*.json"))) == 1
    again = run_batch(jobs, tmp_path / "out", "local", workers=1)
    assert [r["status"] for r in again["jobs"]] == ["skipped", "skipped"]


def test_render_of_a_failed_fit_fails_with_the_reason(tmp_path):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump([{"video": "missing.mp4", "avatar": "new"}, {"avatar": "new", "text": "Hello."}]))
    rows = _by_job(run_batch(jobs, tmp_path / "out", "local", workers=1))
    assert "missing.mp4 does not exist" in rows[1]["error"] and rows[2]["error"] == "its avatar's fit (job 1) failed"


@pytest.mark.parametrize("jobs, message", [
    ([{"avatar": "a"}], "takes one of audio"),
    ([{"avatar": "a", "audio": "x.wav", "text": "hi"}], "takes one of audio"),
    ([{"avatar": "a", "audio": "x.wav", "loudness": 2}], "unknown key 'loudness'"),
    ([{"audio": "x.wav"}], "say which avatar folder"),
    ([{"avatar": "a", "audio": "x.wav", "seed": "many"}], "seed must be a int"),
    ([{"avatar": "a", "replay": "perhaps"}], "replay must be true or false"),
    ([{"avatar": "a", "audio": "x.wav", "name": "../up"}], "may hold only letters"),
    ([{"avatar": "a", "audio": "x.wav", "frames": "0:10"}], "options of replay"),
    ([{"avatar": "a", "audio": "x.wav", "format": "avi"}], "format is mp4 or webm"),
    ([{"video": "v.mp4", "avatar": "a"}, {"video": "w.mp4", "avatar": "a"}], "same avatar folder"),
    ({"render": []}, "must be a list of jobs"),
    ([], "lists no jobs"),
])
def test_bad_jobs_files_are_one_line_errors(tmp_path, jobs, message):
    from avatar.batch.jobs import fit_order

    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump(jobs))
    with pytest.raises(AvatarError, match=message) as caught:
        fit_order(read_jobs(path))
    assert "\n" not in str(caught.value)


def test_csv_jobs_and_relative_paths(tmp_path):
    path = tmp_path / "sub" / "jobs.csv"
    path.parent.mkdir()
    path.write_text("kind,avatar,audio,video,recipe,overrides,pose\n"
                    "render,av,speech.wav,,,,still\n"
                    "fit,av,,clip.mp4,preview,train.iterations=50;model.hash_levels=8,\n")
    render, fit = read_jobs(path)
    assert render.avatar == path.parent / "av" and render.values["audio"] == str(path.parent / "speech.wav")
    assert render.values["pose"] == "still" and render.values["seed"] == 0 and render.values["format"] == "mp4"
    assert fit.values["overrides"] == {"model.hash_levels": "8", "train.iterations": "50"} and fit.cpus == 2


def test_ray_engine_without_ray_says_how_to_install(monkeypatch):
    import sys

    from avatar.batch.engines import make_engine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(AvatarError, match=r'pip install -e "\.\[ray\]"'):
        make_engine("ray", 2)


def test_batch_cli_exit_code_and_summary(trained_sample, voices, tmp_path, capsys):
    from avatar.cli import main

    assert main(["batch", str(_jobs(tmp_path, trained_sample.root, voices)), "--out", str(tmp_path / "out"), "--workers", "1"]) == 1
    assert "batch: 3 done, 0 skipped, 1 failed of 4 jobs" in capsys.readouterr().out


# --- Ray ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the Ray extra is not installed (make test installs it)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _ray_workers_running_a_job() -> list[int]:
    """Pids of Ray worker processes that are executing a batch job now (Ray titles them `ray::run_job`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::run_job"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_ray_gives_the_same_outputs_and_survives_a_killed_worker(local_ray, trained_sample, voices, tmp_path):
    long_job = {"avatar": str(trained_sample.root), "audio": str(voices / "long.wav"), "name": "long"}
    path = _jobs(tmp_path, trained_sample.root, voices, [long_job])
    result = {}
    batch = threading.Thread(target=lambda: result.update(run_batch(path, tmp_path / "out", "ray")))
    batch.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and batch.is_alive() and time.monotonic() < deadline:
        running = _ray_workers_running_a_job()
        if running:
            killed = running[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    batch.join(timeout=600)
    assert killed is not None, "no Ray worker was seen running a job"
    rows = _by_job(result)
    assert [rows[j]["status"] for j in (1, 2, 3, 4, 5)] == ["done", "done", "failed", "done", "done"]
    assert result["summary"]["engine"] == "ray"
    _check_against_render(trained_sample, voices, tmp_path, rows)


def test_ray_ship_sends_inputs_and_outputs_through_the_object_store(local_ray, trained_sample, voices, tmp_path):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump([{"avatar": str(trained_sample.root), "audio": str(voices / "one.wav")}]))
    row = run_batch(jobs, tmp_path / "out", "ray", ship=True)["jobs"][0]
    assert row["status"] == "done", row["error"]
    reference = tmp_path / "reference.mp4"
    _render(trained_sample.root, ["--audio", str(voices / "one.wav")], reference)
    _assert_same_video(Path(row["output"]), reference, "the shipped job")
