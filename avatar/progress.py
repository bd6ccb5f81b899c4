"""Progress bars with rate and ETA for every long step, shown only when stderr is a terminal
(so logs, pipes and error messages stay clean)."""
from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "frame", position: int = 0) -> Iterator[T]:
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=f"{desc:>8s}", unit=unit, position=position, leave=True,
                    dynamic_ncols=True, mininterval=0.5, smoothing=0.1, disable=None)
