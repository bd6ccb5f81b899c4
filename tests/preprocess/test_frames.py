"""ordered_map: work ahead on threads, results in input order, errors surface."""
import time

import pytest

from avatar.preprocess.frames import ordered_map


def test_results_come_back_in_order_whatever_finishes_first():
    def slow_for_evens(i: int) -> int:
        time.sleep(0.01 if i % 2 == 0 else 0.0)
        return i * i

    assert list(ordered_map(slow_for_evens, range(40), threads=2, lookahead=5)) == [i * i for i in range(40)]


def test_an_error_in_the_work_reaches_the_caller():
    def fail_at_7(i: int) -> int:
        if i == 7:
            raise ValueError("frame 7 is broken")
        return i

    with pytest.raises(ValueError, match="frame 7"):
        list(ordered_map(fail_at_7, range(20), threads=2))
