"""Micro-batching: requests queued on the event loop, merged into one model call in a thread.

The model runs in one worker thread, so the event loop keeps reading requests while it works;
whatever queued up during one call is merged into the next (up to `max_batch_size` rows of
the same kind). `max_wait_ms` > 0 additionally holds a batch open that long for more rows.
When a merged call fails, each request is retried alone so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitml.serving.formats import ModelInput, merge_inputs, split_predictions

__all__ = ["Batcher", "ModelCall"]

# (model data, params or None) -> predictions; runs in the batcher's thread
ModelCall = Callable[[Any, "dict[str, Any] | None"], Any]
# requests of one key -> the model data of one call; runs in the batcher's thread
Merge = Callable[[list[ModelInput]], Any]
# (rows, ok) -> None; called on the event loop after every model call
CallHook = Callable[[int, bool], None]


class _Item:
    __slots__ = ("input", "future")

    def __init__(self, inp: ModelInput, future: asyncio.Future[Any]) -> None:
        self.input = inp
        self.future = future


class Batcher:
    """Queue requests, merge compatible ones, run the model off the loop, hand back parts."""

    def __init__(
        self,
        call: ModelCall,
        max_batch_size: int = 256,
        max_wait_ms: float = 0.0,
        on_call: CallHook | None = None,
        merge: Merge = merge_inputs,
    ) -> None:
        self.call = call
        self.merge = merge
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.on_call = on_call
        self._queue: asyncio.Queue[_Item] | None = None
        self._held: collections.deque[_Item] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitml-model")

    async def submit(self, inp: ModelInput) -> Any:
        """Predict for one request; returns its part of the merged call's predictions."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run())
        assert self._queue is not None
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put_nowait(_Item(inp, future))
        return await future

    def close(self) -> None:
        """Stop the batching task and the model thread."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _next(self, timeout: float | None) -> _Item | None:
        assert self._queue is not None
        if self._held:
            return self._held.popleft()
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            if timeout is None:
                return await self._queue.get()
            if timeout <= 0:
                return None
            try:
                return await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            assert first is not None
            batch = [first]
            rows = first.input.rows
            key = first.input.key
            if key is not None:
                deadline = loop.time() + self.max_wait
                held: list[_Item] = []
                yielded = False
                while rows < self.max_batch_size:
                    item = await self._next(0 if self.max_wait == 0 else deadline - loop.time())
                    if item is None:
                        if yielded or self.max_wait > 0:
                            break
                        # one turn of the loop lets requests already on the wire join
                        yielded = True
                        await asyncio.sleep(0)
                        continue
                    if item.input.key != key or rows + item.input.rows > self.max_batch_size:
                        held.append(item)
                        if item.input.key == key:
                            break
                        continue
                    batch.append(item)
                    rows += item.input.rows
                self._held.extendleft(reversed(held))
            await self._execute(loop, batch)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        batch = [b for b in batch if not b.future.done()]  # clients that went away
        if not batch:
            return
        inputs = [b.input for b in batch]
        rows = sum(i.rows for i in inputs)
        try:
            predictions = await loop.run_in_executor(self._executor, self._predict, inputs)
        except Exception as e:
            if len(batch) == 1:
                self._hook(rows, False)
                _settle(batch[0].future, exc=e)
                return
            # find the culprit: each request alone, so good requests still succeed
            for b in batch:
                await self._execute(loop, [b])
            return
        parts = (
            split_predictions(predictions, [i.rows for i in inputs])
            if len(batch) > 1
            else [predictions]
        )
        if parts is None:  # output not row-aligned (an aggregate): predict each request alone
            for b in batch:
                await self._execute(loop, [b])
            return
        self._hook(rows, True)
        for b, part in zip(batch, parts, strict=True):
            _settle(b.future, result=part)

    def _predict(self, inputs: list[ModelInput]) -> Any:
        started = time.perf_counter()
        data = self.merge(inputs)
        out = self.call(data, inputs[0].params)
        self.last_call_seconds = time.perf_counter() - started
        return out

    def _hook(self, rows: int, ok: bool) -> None:
        if self.on_call is not None:
            self.on_call(rows, ok)


def _settle(
    future: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
