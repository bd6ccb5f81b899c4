"""The generic training loop: steps, stages shown in the progress bar, logs, checkpoints, Ctrl-C, resume.

What is trained and how is the task's business (see `avatar.train.fit.AvatarFit`); the trainer only
knows that a task can take a step, report its stage, give images to log, and save and load its state.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from avatar.errors import AvatarError
from avatar.train.checkpoint import load_checkpoint, save_checkpoint


class TrainingInterrupted(AvatarError):
    """Ctrl-C during training: the checkpoint was saved first."""

    exit_code = 130


class Task(Protocol):
    stage_names: tuple[str, ...]

    def stage_at(self, step: int) -> int: ...
    def train_step(self, step: int) -> dict[str, float]: ...
    def images(self) -> dict[str, np.ndarray]: ...
    def state(self) -> tuple[dict[str, torch.Tensor], dict]: ...
    def load_state(self, tensors: dict[str, torch.Tensor], state: dict) -> None: ...


class _ProgressLines:
    """Plain progress lines (step, rate, ETA, loss) about once a minute, to logs/train.log and, when no
    progress bar can be drawn (stderr is not a terminal), to stderr."""

    def __init__(self, log_dir: Path | None, total: int, start: int, to_stderr: bool, every_s: float = 60.0):
        self.total, self.every_s, self.to_stderr = total, every_s, to_stderr
        self.file = None
        if log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            self.file = open(Path(log_dir) / "train.log", "a")
        self.last_time, self.last_step = time.monotonic(), start

    def update(self, step: int, stage: str, scalars: dict[str, float]) -> None:
        now = time.monotonic()
        if now - self.last_time < self.every_s and step < self.total:
            return
        rate = (now - self.last_time) / max(step - self.last_step, 1)
        eta = rate * (self.total - step)
        line = (f"{stage}: step {step}/{self.total} ({100 * step / self.total:.0f} %), {rate:.3f} s/step, "
                f"ETA {int(eta // 60)}m{int(eta % 60):02d}s, loss {scalars.get('loss', 0):.4f}, psnr {scalars.get('psnr', 0):.2f}")
        if self.file is not None:
            self.file.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")
            self.file.flush()
        if self.to_stderr:
            print(f"avatar: {line}", file=sys.stderr, flush=True)
        self.last_time, self.last_step = now, step

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class Trainer:
    def __init__(self, task: Task, total_steps: int, checkpoint_dir: Path, log_dir: Path | None,
                 checkpoint_minutes: float = 5.0, log_every: int = 100, image_every: int = 1000):
        self.task = task
        self.total_steps = total_steps
        self.checkpoint_dir = Path(checkpoint_dir)
        self.log_dir = log_dir
        self.checkpoint_seconds = checkpoint_minutes * 60
        self.log_every = log_every
        self.image_every = image_every
        self.step = 0
        self.seconds_per_stage: dict[str, float] = {}
        self.steps_per_stage: dict[str, int] = {}

    def save(self) -> None:
        tensors, state = self.task.state()
        state = dict(state, step=self.step, seconds_per_stage=self.seconds_per_stage, steps_per_stage=self.steps_per_stage)
        save_checkpoint(self.checkpoint_dir, tensors, state)

    def resume(self) -> None:
        tensors, state = load_checkpoint(self.checkpoint_dir)
        self.task.load_state(tensors, state)
        self.step = int(state["step"])
        self.seconds_per_stage = dict(state.get("seconds_per_stage", {}))
        self.steps_per_stage = dict(state.get("steps_per_stage", {}))

    def run(self) -> None:
        from tqdm import tqdm

        writer = None
        if self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.log_dir))
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True, mininterval=1.0,
                   disable=None, smoothing=0.05)
        report = _ProgressLines(self.log_dir, self.total_steps, self.step, to_stderr=bar.disable)
        last_save = time.monotonic()
        try:
            while self.step < self.total_steps:
                stage = self.task.stage_names[self.task.stage_at(self.step)]
                start = time.perf_counter()
                scalars = self.task.train_step(self.step)
                elapsed = time.perf_counter() - start
                self.seconds_per_stage[stage] = self.seconds_per_stage.get(stage, 0.0) + elapsed
                self.steps_per_stage[stage] = self.steps_per_stage.get(stage, 0) + 1
                self.step += 1
                bar.set_description(f"{stage:>11s}", refresh=False)
                bar.set_postfix({k: f"{v:.4g}" for k, v in scalars.items() if k in ("loss", "psnr", "gaussians")}, refresh=False)
                bar.update(1)
                report.update(self.step, stage, scalars)
                if writer is not None and self.step % self.log_every == 0:
                    for key, value in scalars.items():
                        writer.add_scalar(f"train/{key}", value, self.step)
                if writer is not None and self.step % self.image_every == 0:
                    for key, image in self.task.images().items():
                        writer.add_image(key, image, self.step, dataformats="HWC")
                if time.monotonic() - last_save > self.checkpoint_seconds:
                    self.save()
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            bar.close()
            self.save()
            raise TrainingInterrupted(
                f"interrupted at step {self.step}; the checkpoint is saved, run the same command with --resume to continue"
            ) from None
        finally:
            bar.close()
            report.close()
            if writer is not None:
                writer.close()
        self.save()
