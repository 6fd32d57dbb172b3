"""Opportunistic micro-batching for a CPU model behind an async HTTP server.

Requests queue up while the model is busy; when it frees up, everything queued
(up to ``max_batch`` texts) goes through one ``predict`` call. There is no timer:
a lone request runs at once, and under load batches grow by themselves, so the
model's fixed per-call cost is paid once per batch instead of once per request.
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
            except Exception as exc:  # hand the failure to every waiting request
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(texts)
            start = 0
            for item, future in batch:
                if not future.done():
                    future.set_result(results[start : start + len(item)])
                start += len(item)
