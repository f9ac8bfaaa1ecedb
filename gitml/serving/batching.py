"""Micro-batching: requests queued by the event loop, merged into one model call in a thread.

The model runs in its own thread, so the event loop keeps reading requests while it works.
The thread takes its next batch itself as soon as
a call ends: whatever queued up during the call, merged (up to `max_batch_size` rows of the
same kind), without waiting for the event loop to hand it over. Requests that arrive in the
same turn of the event loop while the model is busy are handed over together, so a burst
becomes one call. `max_wait_ms` > 0 additionally holds a batch open that long for more rows.
When a merged call fails, each request is retried alone so one bad request fails alone.

A cheap model is called on the event loop instead, once its calls are measured to take
under `INLINE_BELOW_MS`: handing a request to the model thread and back costs about 100 us
of CPU (measured on the iris logistic regression: 230 against 130 us of server CPU a
request with the model call left out), far more than such a call. Calls never overlap: the
loop calls the model only while the model thread is idle with nothing queued.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable
from typing import Any

from gitml.serving.formats import ModelInput, merge_inputs, split_predictions

__all__ = ["INLINE_BELOW_MS", "Batcher", "ModelCall"]

# A model whose calls typically take less than this is called on the event loop. Above
# it, merging requests pays: scikit-learn's own predict (about 160 us, mostly input checks)
# answered 3,300 one-row requests/s merged in the thread against 2,500 called one by one.
INLINE_BELOW_MS = 0.1

# (model data, params or None) -> predictions; runs in the batcher's thread
ModelCall = Callable[[Any, "dict[str, Any] | None"], Any]
# requests of one key -> the model data of one call; runs in the batcher's thread
Merge = Callable[[list[ModelInput]], Any]
# (rows, ok) -> None; called on the event loop after every model call
CallHook = Callable[[int, bool], None]


class _Item:
    __slots__ = ("input", "future", "loop")

    def __init__(
        self, inp: ModelInput, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.input = inp
        self.future = future
        self.loop = loop


class Batcher:
    """Queue requests, merge compatible ones, run the model off the loop, hand back parts."""

    def __init__(
        self,
        call: ModelCall,
        max_batch_size: int = 256,
        max_wait_ms: float = 0.0,
        on_call: CallHook | None = None,
        merge: Merge = merge_inputs,
        inline_below_ms: float = INLINE_BELOW_MS,
    ) -> None:
        self.call = call
        self.merge = merge
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.on_call = on_call
        self.last_call_seconds = 0.0
        # calls on the event loop merge nothing: not where a batch is to be held open
        self.inline_below = 0.0 if self.max_wait else max(0.0, float(inline_below_ms)) / 1000.0
        self._typical = float("inf")  # seconds a call takes; unknown until measured
        self._recent: collections.deque[float] = collections.deque(maxlen=16)
        self._queue: collections.deque[_Item] = collections.deque()  # guarded by _ready
        self._ready = threading.Condition(threading.Lock())
        self._busy = False  # a model call is running (in either thread); guarded by _ready
        self._pending: list[_Item] = []  # this turn's requests, on the event loop
        self._closed = False
        self._thread: threading.Thread | None = None

    async def submit(self, inp: ModelInput) -> Any:
        """Predict for one request; returns its part of the merged call's predictions."""
        if self._typical < self.inline_below and not self._pending and self._claim():
            return self._call_here(inp)  # before get_running_loop: a getpid() system call each
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("the batcher is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="gitml-model", daemon=True)
            self._thread.start()
        future: asyncio.Future[Any] = loop.create_future()
        item = _Item(inp, future, loop)
        if not self._pending:
            loop.call_soon(self._hand_over)  # after the other requests of this turn
        self._pending.append(item)
        return await future

    def _claim(self) -> bool:
        # the model for the calling thread, if no call runs or waits in the model thread
        with self._ready:
            if self._busy or self._queue or self._closed:
                return False
            self._busy = True
            return True

    def _call_here(self, inp: ModelInput) -> Any:
        """A cheap model's call, made on the event loop: handing it to the model thread and
        back would cost more than the call (measured: about 100 us of CPU a request)."""
        try:
            predictions = self._predict([inp])
        except BaseException as e:
            if self.on_call is not None:
                self.on_call(inp.rows, False)
            if not isinstance(e, Exception):  # SystemExit from model code: not ours to obey
                raise RuntimeError(f"the model raised {type(e).__name__}: {e}") from e
            raise
        finally:
            with self._ready:
                self._busy = False
        if self.on_call is not None:
            self.on_call(inp.rows, True)
        return predictions

    def close(self) -> None:
        """Stop the model thread once its current call ends; queued requests are dropped."""
        with self._ready:
            self._closed = True
            dropped = list(self._queue)
            self._queue.clear()
            self._ready.notify()
        for item in dropped:
            stopped = RuntimeError("the server is shutting down")
            _soon(item.loop, _settle, item.future, None, stopped)

    def _hand_over(self) -> None:
        items, self._pending = self._pending, []
        with self._ready:
            if not self._closed:
                self._queue.extend(items)
                self._ready.notify()
                return
        for item in items:
            _settle(item.future, None, RuntimeError("the server is shutting down"))

    # ------------------------------------------------------------- the model thread

    def _work(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            done: list[tuple[Any, ...]] = []
            try:
                self._execute(batch, done)
            finally:
                with self._ready:
                    self._busy = False
            if done:  # one wake-up of the event loop per batch, not per request
                _soon(batch[0].loop, self._deliver, done)

    def _deliver(self, done: list[tuple[Any, ...]]) -> None:
        # on the event loop: ("call", rows, ok) for the hook, ("answer", future, result, exc)
        for entry in done:
            if entry[0] == "call":
                if self.on_call is not None:
                    self.on_call(entry[1], entry[2])
            else:
                _settle(entry[1], entry[2], entry[3])

    def _take(self) -> list[_Item] | None:
        """The next batch: the oldest request and the queued ones that merge with it."""
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            if self._closed:
                return None
            self._busy = True
            first = self._queue.popleft()
            batch = [first]
            key = first.input.key
            if key is None:
                return batch
            rows = first.input.rows
            deadline = time.monotonic() + self.max_wait
            while True:
                kept: list[_Item] = []
                full = False
                while self._queue:
                    item = self._queue.popleft()
                    if full or item.input.key != key:
                        kept.append(item)
                    elif rows + item.input.rows > self.max_batch_size:
                        kept.append(item)
                        full = True  # later requests of this key wait their turn
                    else:
                        batch.append(item)
                        rows += item.input.rows
                self._queue.extendleft(reversed(kept))
                left = deadline - time.monotonic()
                if full or rows >= self.max_batch_size or left <= 0 or self._closed:
                    return batch
                # hold the batch open for more rows; a request that does not fit ends it
                self._ready.wait(left)

    def _execute(self, batch: list[_Item], done: list[tuple[Any, ...]]) -> None:
        batch = [b for b in batch if not b.future.done()]  # clients that went away
        if not batch:
            return
        inputs = [b.input for b in batch]
        rows = sum(i.rows for i in inputs)
        try:
            predictions = self._predict(inputs)
        except BaseException as e:  # this thread must outlive any model
            if not isinstance(e, Exception):  # SystemExit from model code: not ours to obey
                e = RuntimeError(f"the model raised {type(e).__name__}: {e}")
            if len(batch) == 1:
                done.append(("call", rows, False))
                done.append(("answer", batch[0].future, None, e))
                return
            # find the culprit: each request alone, so good requests still succeed
            for b in batch:
                self._execute([b], done)
            return
        parts = (
            split_predictions(predictions, [i.rows for i in inputs])
            if len(batch) > 1
            else [predictions]
        )
        if parts is None:  # output not row-aligned (an aggregate): predict each request alone
            for b in batch:
                self._execute([b], done)
            return
        done.append(("call", rows, True))
        done.extend(("answer", b.future, part, None) for b, part in zip(batch, parts, strict=True))

    def _predict(self, inputs: list[ModelInput]) -> Any:
        started = time.perf_counter()
        data = self.merge(inputs)
        out = self.call(data, inputs[0].params)
        self.last_call_seconds = seconds = time.perf_counter() - started
        # The quickest of the recent calls: a call in the model thread can wait for the GIL
        # while the event loop works, and would look slower than the model is.
        # A call ten times over the limit (a new model after --follow, a huge batch) forgets
        # the quick ones, so the next calls go to the thread rather than block the loop.
        recent = self._recent
        if seconds > 10 * self.inline_below:
            recent.clear()
        recent.append(seconds)
        self._typical = min(recent)
        return out


def _merge_group(items: list[_Item], max_rows: int) -> tuple[list[_Item], list[_Item]]:
    """The first request and those after it that merge with it (same key, up to `max_rows`
    rows), and the rest in order."""
    first = items[0]
    key = first.input.key
    if key is None:
        return [first], items[1:]
    batch, rest, rows = [first], [], first.input.rows
    for item in items[1:]:
        if item.input.key == key and rows + item.input.rows <= max_rows:
            batch.append(item)
            rows += item.input.rows
        else:
            rest.append(item)
    return batch, rest


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
