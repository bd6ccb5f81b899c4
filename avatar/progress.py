"""Progress bars with rate and ETA for every long step, shown only when stderr is a terminal
(so logs, pipes and error messages stay clean) and not in batch workers (`QUIET_ENV` set)."""
from __future__ import annotations

import os
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
QUIET_ENV = "AVATAR_QUIET"  # set in batch workers: their jobs draw no bars and print no progress lines


def quiet() -> bool:
    return bool(os.environ.get(QUIET_ENV))


def bar_disabled() -> bool | None:
    """tqdm's `disable`: None (draw on a terminal only), or True in a batch worker."""
    return True if quiet() else None


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "frame", position: int = 0) -> Iterator[T]:
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=f"{desc:>8s}", unit=unit, position=position, leave=True,
                    dynamic_ncols=True, mininterval=0.5, smoothing=0.1, disable=bar_disabled())
