"""Work slots: at most so many queries or uploads per user and in all; a refusal names its limit."""

from __future__ import annotations

import threading

import pytest

from datagrove.errors import TooManyRequests
from datagrove.services.work_slots import SlotLimit, Work, WorkSlots


def slots(per_user: int = 2, total: int = 3) -> WorkSlots:
    return WorkSlots(
        {
            Work.QUERY: SlotLimit(per_user, total, "query_slots_per_user", "query_slots"),
            Work.UPLOAD: SlotLimit(per_user, total, "upload_slots_per_user", "upload_slots"),
        },
        retry_after_seconds=2,
    )


def test_a_user_past_their_own_limit_is_refused_naming_it_and_when_to_retry():
    work = slots()
    work.take(Work.QUERY, 1)
    work.take(Work.QUERY, 1)
    with pytest.raises(TooManyRequests) as refused:
        work.take(Work.QUERY, 1)
    assert refused.value.details == {"limit": "query_slots_per_user", "retryAfterSeconds": 2}
    assert "query_slots_per_user: 2" in refused.value.message
    assert "try again in 2 seconds" in refused.value.message
    work.take(Work.QUERY, 2)  # another user still has room


def test_past_the_total_everyone_is_refused_naming_the_total():
    work = slots()
    work.take(Work.QUERY, 1)
    work.take(Work.QUERY, 2)
    work.take(Work.QUERY, 3)
    with pytest.raises(TooManyRequests) as refused:
        work.take(Work.QUERY, 4)
    assert refused.value.details["limit"] == "query_slots"


def test_a_released_slot_is_free_again_and_releasing_twice_frees_only_one():
    work = slots()
    first = work.take(Work.QUERY, 1)
    work.take(Work.QUERY, 1)
    first.release()
    first.release()
    assert work.in_use(Work.QUERY, 1) == 1
    work.take(Work.QUERY, 1)
    with pytest.raises(TooManyRequests):
        work.take(Work.QUERY, 1)


def test_queries_and_uploads_are_counted_apart():
    work = slots(per_user=1, total=1)
    work.take(Work.QUERY, 1)
    with work.holding(Work.UPLOAD, 1):
        assert work.in_use(Work.UPLOAD) == 1
    assert work.in_use(Work.UPLOAD) == 0
    assert work.in_use(Work.QUERY) == 1


def test_a_slot_held_by_a_block_that_fails_is_released():
    work = slots(per_user=1, total=1)
    with pytest.raises(RuntimeError), work.holding(Work.UPLOAD, 1):
        raise RuntimeError("the upload failed")
    assert work.in_use(Work.UPLOAD) == 0


def test_many_threads_never_hold_more_than_the_limits():
    work = slots(per_user=3, total=5)
    held, most = [0], [0]
    lock = threading.Lock()

    def worker(user_id: int) -> None:
        for _ in range(300):
            try:
                slot = work.take(Work.QUERY, user_id)
            except TooManyRequests:
                continue
            with lock:
                held[0] += 1
                most[0] = max(most[0], held[0])
                assert work.in_use(Work.QUERY, user_id) <= 3
            with lock:
                held[0] -= 1
            slot.release()

    threads = [threading.Thread(target=worker, args=(n % 3,)) for n in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] <= 5
    assert work.in_use(Work.QUERY) == 0
