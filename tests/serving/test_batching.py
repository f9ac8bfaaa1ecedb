"""The batcher: concurrent requests merged into few model calls, failures kept to their owner."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from gitml.serving.batching import Batcher
from gitml.serving.formats import parse_json


class Recorder:
    """Row sums, recording the rows of each call and the thread it ran in."""

    def __init__(self, delay: float = 0.005) -> None:
        self.calls: list[int] = []
        self.threads: set[str] = set()
        self.delay = delay

    def __call__(self, data: Any, params: Any) -> Any:
        self.calls.append(len(data))
        self.threads.add(threading.current_thread().name)
        if (np.asarray(data) < 0).any():
            raise ValueError("negative input")
        time.sleep(self.delay)
        return np.asarray(data).sum(axis=1)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_requests_are_merged_and_answered_in_order() -> None:
    model = Recorder()
    hooks: list[tuple[int, bool]] = []
    batcher = Batcher(model, max_batch_size=64, on_call=lambda r, ok: hooks.append((r, ok)))

    async def main() -> list[Any]:
        tasks = [batcher.submit(parse_json({"inputs": [[i, i]]}, None)) for i in range(40)]
        return await asyncio.gather(*tasks)

    results = run(main())
    batcher.close()
    assert [r.tolist() for r in results] == [[2 * i] for i in range(40)]
    assert sum(model.calls) == 40
    assert len(model.calls) < 40, "concurrent requests were not batched"
    assert max(model.calls) <= 64
    assert model.threads and threading.main_thread().name not in model.threads
    assert sum(r for r, _ in hooks) == 40 and all(ok for _, ok in hooks)


@pytest.mark.parametrize("max_batch", [1, 3, 8])
def test_max_batch_size_is_respected(max_batch: int) -> None:
    model = Recorder()
    batcher = Batcher(model, max_batch_size=max_batch)

    async def main() -> None:
        await asyncio.gather(
            *(batcher.submit(parse_json({"inputs": [[1, 2]]}, None)) for _ in range(20))
        )

    run(main())
    batcher.close()
    assert max(model.calls) <= max_batch and sum(model.calls) == 20


def test_a_bad_request_fails_alone() -> None:
    model = Recorder()
    hooks: list[tuple[int, bool]] = []
    batcher = Batcher(model, on_call=lambda r, ok: hooks.append((r, ok)))

    async def main() -> list[Any]:
        bodies = [{"inputs": [[-1, 0]]} if i == 5 else {"inputs": [[i, 0]]} for i in range(12)]
        tasks = [batcher.submit(parse_json(b, None)) for b in bodies]
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = run(main())
    batcher.close()
    assert isinstance(results[5], ValueError)
    assert all(r.tolist() == [i] for i, r in enumerate(results) if i != 5)
    assert (1, False) in hooks


def test_incompatible_requests_are_not_merged() -> None:
    model = Recorder(delay=0.02)
    batcher = Batcher(model)

    async def main() -> list[Any]:
        bodies = [{"inputs": [[1, 2]]}, {"inputs": [[1, 2, 3]]}, {"inputs": [[4, 5]]}]
        return await asyncio.gather(*(batcher.submit(parse_json(b, None)) for b in bodies))

    results = run(main())
    batcher.close()
    assert [r.tolist() for r in results] == [[3], [6], [9]]
    assert sorted(model.calls) == [1, 2]


def test_max_wait_holds_a_batch_open() -> None:
    model = Recorder(delay=0.0)
    batcher = Batcher(model, max_wait_ms=100)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(parse_json({"inputs": [[1, 1]]}, None)))
        await asyncio.sleep(0.02)
        second = batcher.submit(parse_json({"inputs": [[2, 2]]}, None))
        await asyncio.gather(first, second)

    run(main())
    batcher.close()
    assert model.calls == [2]


def test_aggregate_outputs_fall_back_to_one_call_per_request() -> None:
    calls: list[int] = []

    def total(data: Any, params: Any) -> float:
        calls.append(len(data))
        time.sleep(0.01)
        return float(np.asarray(data).sum())

    batcher = Batcher(total)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(batcher.submit(parse_json({"inputs": [[i, 1]]}, None)) for i in range(4))
        )

    results = run(main())
    batcher.close()
    assert results == [1.0, 2.0, 3.0, 4.0]


def test_a_model_that_exits_fails_its_request_and_the_thread_lives_on() -> None:
    def model(data: Any, params: Any) -> Any:
        if (np.asarray(data) == 13).any():
            raise SystemExit("model code called sys.exit")
        return np.asarray(data).sum(axis=1)

    batcher = Batcher(model)

    async def main() -> list[Any]:
        first = await asyncio.gather(
            *(batcher.submit(parse_json({"inputs": [[i, 0]]}, None)) for i in (12, 13, 14)),
            return_exceptions=True,
        )
        later = await batcher.submit(parse_json({"inputs": [[1, 1]]}, None))
        return [*first, later]

    results = run(main())
    batcher.close()
    assert isinstance(results[1], RuntimeError) and "SystemExit" in str(results[1])
    assert [results[0].tolist(), results[2].tolist(), results[3].tolist()] == [[12], [14], [2]]


def test_requests_after_close_are_refused_not_left_waiting() -> None:
    batcher = Batcher(Recorder(delay=0.0))

    async def main() -> Any:
        await batcher.submit(parse_json({"inputs": [[1, 1]]}, None))
        batcher.close()
        return await asyncio.wait_for(
            asyncio.gather(
                batcher.submit(parse_json({"inputs": [[1, 1]]}, None)), return_exceptions=True
            ),
            timeout=5,
        )

    (result,) = run(main())
    assert isinstance(result, RuntimeError)


class Quick(Recorder):
    """Row sums at once (no sleep)."""

    def __call__(self, data: Any, params: Any) -> Any:
        self.calls.append(len(data))
        self.threads.add(threading.current_thread().name)
        if (np.asarray(data) < 0).any():
            raise ValueError("negative input")
        return np.asarray(data).sum(axis=1)


def test_a_cheap_model_is_called_on_the_event_loop_and_counted() -> None:
    model = Quick()
    hooks: list[tuple[int, bool]] = []
    batcher = Batcher(model, on_call=lambda r, ok: hooks.append((r, ok)))

    async def main() -> list[Any]:
        out = [await batcher.submit(parse_json({"inputs": [[i, 1]]}, None)) for i in range(30)]
        failed = await asyncio.gather(
            batcher.submit(parse_json({"inputs": [[-1, 1]]}, None)), return_exceptions=True
        )
        return out + failed

    results = run(main())
    batcher.close()
    assert [r.tolist() for r in results[:30]] == [[i + 1] for i in range(30)]
    assert isinstance(results[30], ValueError)  # the model's own error, raised to its request
    assert threading.main_thread().name in model.threads  # after the first, measured call
    assert hooks.count((1, True)) == 30 and hooks[-1] == (1, False)


def test_a_slow_model_and_a_held_batch_stay_in_the_model_thread() -> None:
    for batcher, model in (
        (Batcher(slow := Recorder(delay=0.002)), slow),
        (Batcher(quick := Recorder(delay=0.0), max_wait_ms=1), quick),
    ):

        async def main(b: Batcher = batcher) -> None:
            for i in range(5):
                await b.submit(parse_json({"inputs": [[i, 1]]}, None))

        run(main())
        batcher.close()
        assert model.threads == {"gitml-model"}


def test_calls_on_the_loop_never_overlap_a_call_in_the_thread() -> None:
    active = 0
    most = 0
    lock = threading.Lock()
    durations = iter([0.05] + [0.0] * 1000)  # the first call is slow, the rest cheap

    def model(data: Any, params: Any) -> Any:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(next(durations))
        with lock:
            active -= 1
        return np.asarray(data).sum(axis=1)

    batcher = Batcher(model)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(parse_json({"inputs": [[1, 1]]}, None)))
        await asyncio.sleep(0.01)
        batcher._typical = 0.0  # measured cheap while the first call still runs
        rest = [batcher.submit(parse_json({"inputs": [[i, 1]]}, None)) for i in range(20)]
        await asyncio.gather(first, *rest)
        await asyncio.gather(
            *(batcher.submit(parse_json({"inputs": [[i, 1]]}, None)) for i in range(20))
        )

    run(main())
    batcher.close()
    assert most == 1


def test_a_model_exiting_on_the_event_loop_fails_its_request_only() -> None:
    def model(data: Any, params: Any) -> Any:
        if (np.asarray(data) < 0).any():
            raise SystemExit(3)
        return np.asarray(data).sum(axis=1)

    batcher = Batcher(model)

    async def main() -> list[Any]:
        await batcher.submit(parse_json({"inputs": [[1, 1]]}, None))  # measured: cheap
        bad = await asyncio.gather(
            batcher.submit(parse_json({"inputs": [[-1, 1]]}, None)), return_exceptions=True
        )
        good = await batcher.submit(parse_json({"inputs": [[2, 2]]}, None))
        return [*bad, good]

    bad, good = run(main())
    batcher.close()
    assert isinstance(bad, RuntimeError) and "SystemExit" in str(bad)
    assert good.tolist() == [4]


def test_a_slow_call_sends_the_next_ones_back_to_the_thread() -> None:
    threads: list[str] = []
    delays = iter([0.0] * 5 + [0.06] + [0.0] * 5)

    def model(data: Any, params: Any) -> Any:
        threads.append(threading.current_thread().name)
        time.sleep(next(delays))  # sleep(0): cheap
        return np.asarray(data).sum(axis=1)

    batcher = Batcher(model)
    batcher.inline_below = 0.005  # sleep(0) is well under 5 ms, 60 ms is over 10x of it

    async def main() -> None:
        for i in range(7):
            await batcher.submit(parse_json({"inputs": [[i, 1]]}, None))

    run(main())
    batcher.close()
    # measured in the thread, then cheap on the loop, then the 60 ms call, then the thread again
    assert threads[0] == "gitml-model" and threads[1:6] == ["MainThread"] * 5
    assert threads[6] == "gitml-model"
