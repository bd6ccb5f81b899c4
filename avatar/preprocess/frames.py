"""Reading the stored frames back, with decoding (and other per-frame work) overlapped on helper threads."""
from __future__ import annotations

import concurrent.futures
from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from avatar.data.images import read_rgb
from avatar.folder import AvatarFolder

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], threads: int = 1, lookahead: int = 6) -> Iterator[R]:
    """fn(item) for each item, in order, computed ahead of use on `threads` helper threads.

    Worth it for work that releases the GIL (OpenCV decoding, encoding and drawing).
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ahead") as pool:
        queue: deque = deque()
        for item in items:
            queue.append(pool.submit(fn, item))
            if len(queue) > lookahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def iter_frames(folder: AvatarFolder, indices: Iterable[int], lookahead: int = 6,
                half: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB uint8 [H, W, 3]) for each index, decoded ahead of use (at half size if `half`)."""
    return ordered_map(lambda i: (i, read_rgb(folder.frame_path(i), half=half)), indices, lookahead=lookahead)
