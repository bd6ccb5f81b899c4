"""The generic training loop: steps, stages, Ctrl-C, resume; everything else is a callback.

What is trained and how is the task's business (`avatar.train.fit.AvatarFit`): the trainer only knows
that a task has named stages, takes a step and saves and loads its state. Progress bars, tensorboard and
checkpoints are callbacks (`avatar.train.callbacks`), so anything else that wants to watch a run (a
viewer, a test) is one more callback.
"""
from __future__ import annotations

import time
from typing import Protocol, Sequence

import numpy as np
import torch

from avatar.errors import AvatarError


class TrainingInterrupted(AvatarError):
    """Ctrl-C during training: the callbacks (the checkpoint among them) had their say first."""

    exit_code = 130


class Task(Protocol):
    stage_names: tuple[str, ...]

    def stage_at(self, step: int) -> int: ...
    def train_step(self, step: int) -> dict[str, float]: ...
    def images(self) -> dict[str, np.ndarray]: ...
    def state(self) -> tuple[dict[str, torch.Tensor], dict]: ...
    def load_state(self, tensors: dict[str, torch.Tensor], values: dict) -> None: ...


class Callback:
    """Hooks of a training run; each does nothing unless overridden."""

    def on_start(self, trainer: "Trainer") -> None: ...
    def on_step(self, trainer: "Trainer", stage: str, scalars: dict[str, float]) -> None: ...
    def on_interrupt(self, trainer: "Trainer") -> None: ...
    def on_end(self, trainer: "Trainer") -> None: ...
    def close(self) -> None:
        """Always called last, finished or not: release files and windows."""


class Trainer:
    def __init__(self, task: Task, total_steps: int, callbacks: Sequence[Callback] = ()):
        self.task = task
        self.total_steps = total_steps
        self.callbacks = list(callbacks)
        self.step = 0
        self.seconds_per_stage: dict[str, float] = {}
        self.steps_per_stage: dict[str, int] = {}

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, plain values) of the whole run: the task's state and the trainer's counters."""
        tensors, values = self.task.state()
        return tensors, dict(values, step=self.step, seconds_per_stage=self.seconds_per_stage,
                             steps_per_stage=self.steps_per_stage)

    def load_state(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        self.task.load_state(tensors, state)
        self.step = int(state["step"])
        self.seconds_per_stage = dict(state.get("seconds_per_stage", {}))
        self.steps_per_stage = dict(state.get("steps_per_stage", {}))

    def _each(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def run(self) -> None:
        try:
            self._each("on_start")
            while self.step < self.total_steps:
                stage = self.task.stage_names[self.task.stage_at(self.step)]
                start = time.perf_counter()
                scalars = self.task.train_step(self.step)
                self.seconds_per_stage[stage] = self.seconds_per_stage.get(stage, 0.0) + time.perf_counter() - start
                self.steps_per_stage[stage] = self.steps_per_stage.get(stage, 0) + 1
                self.step += 1
                self._each("on_step", stage, scalars)
        except KeyboardInterrupt:
            self._each("on_interrupt")
            raise TrainingInterrupted(
                f"interrupted at step {self.step}; the checkpoint is saved, run the same command with --resume to continue"
            ) from None
        finally:
            for callback in self.callbacks:
                callback.close()
        self._each("on_end")
