"""Reading the stored frames back, with decoding overlapped on a helper thread."""
from __future__ import annotations

import concurrent.futures
from collections import deque
from typing import Iterable, Iterator

import numpy as np

from avatar.folder import AvatarFolder


def read_rgb(path, half: bool = False) -> np.ndarray:
    """RGB uint8 [H, W, 3]; `half` decodes at half size, which JPEG does much faster than full size."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2 if half else cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read frame {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_frames(folder: AvatarFolder, indices: Iterable[int], lookahead: int = 6,
                half: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB uint8 [H, W, 3]) for each index, decoded ahead of use (at half size if `half`)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="frames") as pool:
        queue: deque = deque()
        for index in indices:
            queue.append((index, pool.submit(read_rgb, folder.frame_path(index), half)))
            if len(queue) > lookahead:
                i, future = queue.popleft()
                yield i, future.result()
        while queue:
            i, future = queue.popleft()
            yield i, future.result()
