"""serving/batching.py in-process: batches form under load, results stay with their request, and one
request whose texts make the model raise fails alone."""

from __future__ import annotations

import asyncio
import threading

import pytest

from serving.batching import MicroBatcher


class Recorder:
    """A predict function that records its calls, can be held (to let requests queue up) and
    raises for any batch containing the text "poison"."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, texts: list[str]) -> list[str]:
        self.gate.wait(5)
        self.calls.append(list(texts))
        if "poison" in texts:
            raise ValueError("cannot encode 'poison'")
        return [t.upper() for t in texts]


async def _burst(batcher: MicroBatcher, requests: list[list[str]], predict: Recorder):
    predict.gate.clear()  # the first request occupies the model; the rest queue behind it
    first = asyncio.ensure_future(batcher.submit(requests[0]))
    await asyncio.sleep(0.05)
    rest = [asyncio.ensure_future(batcher.submit(r)) for r in requests[1:]]
    await asyncio.sleep(0.05)
    predict.gate.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_lone_request_runs_at_once_and_queued_requests_share_a_batch():
    predict = Recorder()
    batcher = MicroBatcher(predict, max_batch=64)
    results = asyncio.run(_burst(batcher, [["a"], ["b", "c"], ["d"]], predict))
    assert results == [["A"], ["B", "C"], ["D"]]
    assert predict.calls == [["a"], ["b", "c", "d"]]  # queued requests went through one call
    assert batcher.batches == 2 and batcher.items == 4


def test_a_batch_stops_growing_once_it_reaches_max_batch():
    predict = Recorder()
    batcher = MicroBatcher(predict, max_batch=3)
    results = asyncio.run(_burst(batcher, [["x"], ["a", "b"], ["c", "d"], ["e"], ["f", "g", "h", "i"]], predict))
    assert results[1:] == [["A", "B"], ["C", "D"], ["E"], ["F", "G", "H", "I"]]
    # requests are never split: [a, b] + [c, d] reaches 3 and closes the batch; [e] + [f..i] likewise
    assert predict.calls[1:] == [["a", "b", "c", "d"], ["e", "f", "g", "h", "i"]]


def test_a_poisoned_request_fails_alone_and_its_batch_mates_get_results():
    predict = Recorder()
    batcher = MicroBatcher(predict, max_batch=64)
    results = asyncio.run(_burst(batcher, [["a"], ["b"], ["poison"], ["c", "d"]], predict))
    assert results[0] == ["A"] and results[1] == ["B"] and results[3] == ["C", "D"]
    assert isinstance(results[2], ValueError) and "poison" in str(results[2])
    assert batcher.retried_batches == 1
    # the failed batch was retried request by request; nothing was predicted twice successfully
    assert predict.calls[1] == ["b", "poison", "c", "d"] and predict.calls[2:] == [["b"], ["poison"], ["c", "d"]]


def test_a_lone_failing_request_gets_its_error_and_the_batcher_keeps_serving():
    predict = Recorder()
    batcher = MicroBatcher(predict)

    async def go():
        with pytest.raises(ValueError):
            await batcher.submit(["poison"])
        return await batcher.submit(["ok"])

    assert asyncio.run(go()) == ["OK"]


def test_under_load_a_poisoned_request_fails_alone_with_the_real_model(tmp_path_factory):
    """2,000 concurrent requests through the batcher to a trained FramingModel, one in ten poisoned (its
    predict raises, as a tokenizer did on lone surrogates): every clean request gets exactly the model's
    own result, every poisoned one its error."""
    from tests.fixtures_train import trained_workspace
    from pipeline.model import FramingModel

    model = FramingModel.load(trained_workspace(tmp_path_factory.getbasetemp() / "train-shared")["model"])

    sizes = []

    def predict(texts):  # the fault, injected: a text the model cannot take makes the whole call raise
        sizes.append(len(texts))
        if any(t.startswith("POISON") for t in texts):
            raise ValueError("cannot encode this text")
        return model.predict(texts)

    texts = [f"Kim and Putin signed a treaty, number {i}." for i in range(2000)]
    batcher = MicroBatcher(predict, max_batch=64)

    async def go():
        async def one(i):
            await asyncio.sleep(0)
            return await batcher.submit(["POISON " + texts[i]] if i % 10 == 3 else [texts[i]])

        return await asyncio.gather(*(one(i) for i in range(2000)), return_exceptions=True)

    results = asyncio.run(go())
    expected = model.predict(texts)
    for i, result in enumerate(results):
        if i % 10 == 3:
            assert isinstance(result, ValueError)
        else:
            assert result == [expected[i]], i
    assert batcher.retried_batches > 0 and max(sizes) > 1  # batches formed, and the failed ones were retried
