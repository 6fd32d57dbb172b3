"""Opportunistic micro-batching for a CPU model behind an async HTTP server.

Requests queue up while the model is busy; when it frees up, queued requests join one
``predict`` call until it holds ``max_batch`` texts (requests are never split). There is no timer:
a lone request runs at once, and under load batches grow by themselves, so the
model's fixed per-call cost is paid once per batch instead of once per request.

A batch whose ``predict`` raises is retried one request at a time, so only the request
that caused the failure gets the error; every other request in the batch gets its results.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Sequence


class MicroBatcher:
    def __init__(self, predict: Callable[[list[str]], list[Any]], max_batch: int = 64):
        self.predict = predict
        self.max_batch = max_batch
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self.batches = 0
        self.items = 0
        self.retried_batches = 0  # batches that failed as a whole and were retried per request

    async def submit(self, texts: Sequence[str]) -> list[Any]:
        """Predict ``texts``; resolves when the batch containing them has run."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((list(texts), future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            batch = [await queue.get()]
            size = len(batch[0][0])
            while size < self.max_batch and not queue.empty():
                item = queue.get_nowait()
                batch.append(item)
                size += len(item[0])
            texts = [t for item, _ in batch for t in item]
            try:
                # One executor thread: the model call releases the event loop,
                # which keeps accepting and parsing requests meanwhile.
                results = await loop.run_in_executor(None, self.predict, texts)
            except Exception as failure:  # noqa: BLE001 - find the request that broke it; the others must not suffer
                if len(batch) == 1:
                    _resolve(batch[0][1], exc=failure)
                    continue
                self.retried_batches += 1
                for item, future in batch:
                    try:
                        _resolve(future, await loop.run_in_executor(None, self.predict, item))
                    except Exception as exc:  # noqa: BLE001
                        _resolve(future, exc=exc)
                continue
            self.batches += 1
            self.items += len(texts)
            start = 0
            for item, future in batch:
                _resolve(future, results[start : start + len(item)])
                start += len(item)


def _resolve(future: asyncio.Future, result: Any = None, exc: BaseException | None = None) -> None:
    """Settle a request's future unless its client has gone (the future was cancelled)."""
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
