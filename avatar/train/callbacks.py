"""What a training run reports and keeps, as trainer callbacks: a progress bar with plain log lines,
tensorboard scalars and images, and checkpoints (every few minutes, on Ctrl-C and at the end)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from avatar.progress import bar_disabled, quiet
from avatar.train.checkpoint import save_checkpoint
from avatar.train.trainer import Callback, Trainer


class ProgressBar(Callback):
    """A tqdm bar on a terminal, and plain progress lines (step, rate, ETA, loss) about once a minute to
    `log_dir/train.log` and, when no bar can be drawn (stderr is not a terminal), to stderr."""

    def __init__(self, log_dir: Path | None, every_s: float = 60.0):
        self.log_dir, self.every_s = log_dir, every_s
        self.bar = self.file = None

    def on_start(self, trainer: Trainer) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step", dynamic_ncols=True, mininterval=1.0,
                        disable=bar_disabled(), smoothing=0.05)
        if self.log_dir is not None:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            self.file = open(Path(self.log_dir) / "train.log", "a")
        self.last_time, self.last_step = time.monotonic(), trainer.step

    def on_step(self, trainer: Trainer, stage: str, scalars: dict[str, float]) -> None:
        self.bar.set_description(f"{stage:>11s}", refresh=False)
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in scalars.items() if k in ("loss", "psnr", "size")}, refresh=False)
        self.bar.update(1)
        now, step, total = time.monotonic(), trainer.step, trainer.total_steps
        if now - self.last_time < self.every_s and step < total:
            return
        rate = (now - self.last_time) / max(step - self.last_step, 1)
        eta = rate * (total - step)
        line = (f"{stage}: step {step}/{total} ({100 * step / total:.0f} %), {rate:.3f} s/step, "
                f"ETA {int(eta // 60)}m{int(eta % 60):02d}s, loss {scalars.get('loss', 0):.4f}, psnr {scalars.get('psnr', 0):.2f}")
        if self.file is not None:
            self.file.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")
            self.file.flush()
        if self.bar.disable and not quiet():
            print(f"avatar: {line}", file=sys.stderr, flush=True)
        self.last_time, self.last_step = now, step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.file is not None:
            self.file.close()


class Tensorboard(Callback):
    """Scalars every `scalars_every` steps and the task's images every `images_every` steps."""

    def __init__(self, log_dir: Path, scalars_every: int = 100, images_every: int = 1000):
        self.log_dir, self.scalars_every, self.images_every = log_dir, scalars_every, images_every
        self.writer = None

    def on_start(self, trainer: Trainer) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir))

    def on_step(self, trainer: Trainer, stage: str, scalars: dict[str, float]) -> None:
        if trainer.step % self.scalars_every == 0:
            for key, value in scalars.items():
                self.writer.add_scalar(f"train/{key}", value, trainer.step)
        if trainer.step % self.images_every == 0:
            for key, image in trainer.task.images().items():
                self.writer.add_image(key, image, trainer.step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Checkpoints(Callback):
    """The run's state in `folder` every `minutes`, on Ctrl-C and at the end (atomically replaced)."""

    def __init__(self, folder: Path, minutes: float = 5.0):
        self.folder, self.seconds = Path(folder), minutes * 60

    def save(self, trainer: Trainer) -> None:
        save_checkpoint(self.folder, *trainer.state())
        self.last = time.monotonic()

    def on_start(self, trainer: Trainer) -> None:
        self.last = time.monotonic()

    def on_step(self, trainer: Trainer, stage: str, scalars: dict[str, float]) -> None:
        if time.monotonic() - self.last > self.seconds:
            self.save(trainer)

    on_interrupt = save
    on_end = save
