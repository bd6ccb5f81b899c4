import logging
import threading
import time

import pytest

from avatar.config import AvatarConfig
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.preprocess.stages import Stage, StageContext, run_stages


def _ctx(tmp_path, config=None):
    folder = AvatarFolder(tmp_path)
    folder.data.mkdir(parents=True, exist_ok=True)
    return StageContext(folder, config or AvatarConfig(), tmp_path / "video.mp4", "0" * 64, logging.getLogger("test"))


def _writer(name, calls, fail=False, delay=0.0):
    def run(ctx):
        calls.append(name)
        time.sleep(delay)
        if fail:
            raise RuntimeError(f"{name} failed")
        (ctx.folder.data / f"{name}.out").write_text(name)
    return run


def _stages(calls, fail=()):
    return [
        Stage("a", _writer("a", calls, "a" in fail), (), ("decode",), ("a.out",)),
        Stage("b", _writer("b", calls, "b" in fail), ("a",), ("track",), ("b.out",)),
        Stage("c", _writer("c", calls, "c" in fail), ("a",), ("pose",), ("c.out",)),
    ]


def test_stages_are_cached_and_rerun_when_their_config_changes(tmp_path):
    calls = []
    run_stages(_stages(calls), _ctx(tmp_path))
    assert sorted(calls) == ["a", "b", "c"]
    calls.clear()
    run_stages(_stages(calls), _ctx(tmp_path))
    assert calls == []
    cfg = AvatarConfig()
    cfg.pose.smoothness = 1.0
    run_stages(_stages(calls), _ctx(tmp_path, cfg))
    assert calls == ["c"]


def test_upstream_change_reruns_downstream(tmp_path):
    calls = []
    run_stages(_stages(calls), _ctx(tmp_path))
    calls.clear()
    cfg = AvatarConfig()
    cfg.decode.jpeg_quality = 80
    run_stages(_stages(calls), _ctx(tmp_path, cfg))
    assert sorted(calls) == ["a", "b", "c"]


def test_a_failed_stage_leaves_no_record_and_reruns(tmp_path):
    calls = []
    with pytest.raises(RuntimeError):
        run_stages(_stages(calls, fail=("b",)), _ctx(tmp_path), workers=1)
    assert not (tmp_path / "data" / "stages" / "b.json").exists()
    calls.clear()
    run_stages(_stages(calls), _ctx(tmp_path))
    assert "b" in calls and "a" not in calls


def test_missing_output_invalidates_a_stage(tmp_path):
    calls = []
    run_stages(_stages(calls), _ctx(tmp_path))
    (tmp_path / "data" / "c.out").unlink()
    calls.clear()
    run_stages(_stages(calls), _ctx(tmp_path))
    assert calls == ["c"]


def test_only_and_redo(tmp_path):
    calls = []
    with pytest.raises(AvatarError, match="needs stage a"):
        run_stages(_stages(calls), _ctx(tmp_path), only=["b"])
    run_stages(_stages(calls), _ctx(tmp_path))
    calls.clear()
    run_stages(_stages(calls), _ctx(tmp_path), only=["b"], redo=["b"])
    assert calls == ["b"]
    with pytest.raises(AvatarError, match="unknown stage"):
        run_stages(_stages(calls), _ctx(tmp_path), only=["zzz"])


def test_independent_stages_run_at_the_same_time(tmp_path):
    running, peak = set(), []
    lock = threading.Lock()

    def run(name):
        def inner(ctx):
            with lock:
                running.add(name)
                peak.append(len(running))
            time.sleep(0.3)
            with lock:
                running.discard(name)
            (ctx.folder.data / f"{name}.out").write_text(name)
        return inner

    stages = [Stage("a", run("a"), (), ("decode",), ("a.out",)),
              Stage("b", run("b"), ("a",), ("track",), ("b.out",)),
              Stage("c", run("c"), ("a",), ("pose",), ("c.out",))]
    run_stages(stages, _ctx(tmp_path), workers=2)
    assert max(peak) == 2
