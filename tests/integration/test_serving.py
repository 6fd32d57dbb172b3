"""The prediction API, served by a real `bentoml serve` process built by `framing package`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.integration.conftest import serve
from tests.servers import stop

pytestmark = pytest.mark.integration

LIMITS = {"FRAMING_MAX_TEXT_CHARS": "2000", "FRAMING_MAX_BATCH": "16", "FRAMING_MAX_BODY_BYTES": "65536"}
API_KEY = "test-key-3f9a1c"  # a throwaway key for the auth server only
UNICODE_TEXTS = [
    "روسيا وكوريا الشمالية توقعان شراكة استراتيجية شاملة",  # Arabic, RTL
    "Kim 🤝 Putin: shells 💣 for oil 🛢️ — a deal?",  # emoji
    "Pyongyang\u0301 se\u0301lls ammunition to Mosco\u0308w",  # combining marks
    "Russia buys\x00 shells\x07 from North\x1b Korea",  # NUL and control characters
    "\u202eevil right-to-left override\u202c and a zero\u200bwidth space",
    "𝕽𝖚𝖘𝖘𝖎𝖆 and 𝕹𝖔𝖗𝖙𝖍 𝕶𝖔𝖗𝖊𝖆 form an alliance",  # mathematical alphanumerics (NFKC folds them)
]


@pytest.fixture(scope="module")
def api(packaged, root):
    base, proc, ready = serve(packaged, root, "serve.log", {**LIMITS, "FRAMING_API_KEY": ""})
    yield {"base": base, "ready_s": ready, **packaged}
    stop(proc)


@pytest.fixture(scope="module")
def secured(packaged, root):
    sink = packaged["work"] / "predictions.jsonl"
    base, proc, _ = serve(packaged, root, "serve_auth.log",
                          {**LIMITS, "FRAMING_API_KEY": API_KEY, "FRAMING_PREDICTION_LOG": str(sink)})
    yield {"base": base, "sink": sink, "log": packaged["work"] / "serve_auth.log"}
    stop(proc)


def post(base: str, path: str, body, **kwargs):
    return requests.post(f"{base}{path}", json=body, timeout=30, **kwargs)


def test_predict_equals_in_process_predict(api, passages):
    texts = [p["text"] for p in passages[:10]] + UNICODE_TEXTS
    resp = post(api["base"], "/predict", {"texts": texts})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["results"] == api["model"].predict(texts)  # exactly: same floats, same order
    assert body["model"]["version"] == api["record"]["mlflow_version"]
    for result in body["results"]:
        assert set(result) == {"frames", "decided_frames", "stance", "stance_scores", "evidence"}
        assert set(result["evidence"]) == set(result["decided_frames"])


def test_metadata_describes_labels_thresholds_version_and_metrics(api, schema):
    meta = post(api["base"], "/metadata", {}).json()
    assert meta["frame_names"] == schema.frame_names and meta["stance_names"] == schema.stance_names
    assert set(meta["thresholds"]) == set(schema.frame_names)
    assert meta["labels"]["frames"]["transactional"]["definition"] == schema.frames[1].definition
    assert meta["model"]["version"] == api["record"]["mlflow_version"]
    assert meta["training_metrics"] and meta["model_created"]


def test_health_metrics_and_docs(api):
    for path in ("/livez", "/readyz", "/metrics", "/docs", "/docs.json"):
        assert requests.get(api["base"] + path, timeout=10).status_code == 200, path
    assert "predict" in requests.get(api["base"] + "/metrics", timeout=10).text


def test_ready_within_budget(api):
    assert api["ready_s"] < 60  # the ≤ 10 s target is measured by bench/serve, not asserted here


BAD_REQUESTS = [
    ({}, 400, "texts"),
    ({"texts": "one text"}, 400, "array"),
    ({"texts": ["ok text", 3]}, 400, "string"),
    ({"texts": []}, 400, "at least 1 item"),
    ({"texts": ["fine", "   \n\t"]}, 400, '"loc":["texts",1],"msg":"Value error, empty or whitespace-only text"'),
    ({"texts": ["x" * 2001]}, 400, '"loc":["texts",0],"msg":"String should have at most 2000 characters"'),
    ({"texts": ["a text"] * 17}, 400, "List should have at most 16 items"),
    ({"text": ["typo in the field name"]}, 400, "texts"),
]


@pytest.mark.parametrize("body, status, message", BAD_REQUESTS)
def test_bad_requests_get_4xx_with_a_message_and_the_server_keeps_serving(api, body, status, message):
    resp = post(api["base"], "/predict", body)
    assert resp.status_code == status and message in resp.text, resp.text
    assert post(api["base"], "/predict", {"texts": ["still serving"]}).status_code == 200


@pytest.mark.parametrize("data, headers, status, message", [
    (b'{"texts": ["unterminated', {"content-type": "application/json"}, 400, "JSON"),
    (b"texts=a", {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    (b'{"texts": ["a"]}', {}, 415, "application/json"),
    (b"\xff\xfe\x00garbage", {"content-type": "application/json"}, 400, ""),
    (b'{"texts": ["' + b"a" * 70000 + b'"]}', {"content-type": "application/json"}, 413, "65536 bytes"),
])
def test_malformed_bodies(api, data, headers, status, message):
    resp = requests.post(api["base"] + "/predict", data=data, headers=headers, timeout=30)
    assert resp.status_code == status and message in resp.text, resp.text


def test_chunked_huge_body_is_refused(api):
    def chunks():
        yield b'{"texts": ["'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"]}'

    resp = requests.post(api["base"] + "/predict", data=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert resp.status_code == 413
    assert post(api["base"], "/predict", {"texts": ["still serving"]}).status_code == 200


def test_concurrent_burst_has_no_errors(api, passages):
    texts = [p["text"] for p in passages]
    expected = api["model"].predict(texts)

    def one(i):
        resp = post(api["base"], "/predict", {"texts": [texts[i % len(texts)]]})
        return resp.status_code, resp.json()["results"][0] if resp.ok else resp.text

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(one, range(300)))
    assert all(code == 200 for code, _ in outcomes)
    assert all(result == expected[i % len(texts)] for i, (_, result) in enumerate(outcomes))  # batching keeps order


def test_api_key_required_except_on_health(secured):
    base = secured["base"]
    assert post(base, "/predict", {"texts": ["a deal"]}).status_code == 401
    assert post(base, "/predict", {"texts": ["a deal"]}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert requests.get(base + "/metrics", timeout=10).status_code == 401
    for path in ("/livez", "/readyz"):
        assert requests.get(base + path, timeout=10).status_code == 200
    ok = post(base, "/predict", {"texts": ["a deal"]}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert ok.status_code == 200
    assert post(base, "/predict", {"texts": ["a deal"]}, headers={"X-API-Key": API_KEY}).status_code == 200
    assert API_KEY not in secured["log"].read_text()


def test_prediction_log_records_each_text(secured):
    before = secured["sink"].read_text().count("\n") if secured["sink"].exists() else 0
    post(secured["base"], "/predict", {"texts": ["one deal", "two alliances"]}, headers={"X-API-Key": API_KEY})
    lines = secured["sink"].read_text().splitlines()
    assert len(lines) == before + 2
    record = json.loads(lines[-1])
    assert {"time", "model", "text_sha256", "chars", "stance", "decided_frames"} <= set(record)
    assert "two alliances" not in secured["sink"].read_text()  # no raw text in the monitoring log


def test_openapi_fuzzing_finds_no_server_errors(api):
    """Property-based requests generated from the service's own OpenAPI schema, valid and invalid ones,
    never get a 5xx (the reliability tier runs schemathesis with every check)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{api['base']}/docs.json")
    failures, calls = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "POST":
            continue

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)))
        def check(case):
            response = case.call(base_url=api["base"])
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append((case.path, case.body, response.status_code, response.text[:200]))

        check()
    assert len(calls) >= 60 and 200 in calls and any(400 <= c < 500 for c in calls)
    assert not failures, failures[:5]


def test_label_studio_ml_backend(api, passages, schema):
    """Label Studio's ML-backend protocol under /labelstudio gives the same pre-annotations as push."""
    from label_studio_sdk.label_interface import LabelInterface

    from pipeline.labels import label_config_xml
    from pipeline.labelstudio.prediction import Labels, prediction

    base = api["base"] + "/labelstudio"
    health = requests.get(base + "/health", timeout=10).json()
    assert health["status"] == "UP"
    version = post(base, "/setup", {"project": "1.1", "schema": label_config_xml(schema)}).json()["model_version"]
    assert version == health["model_version"]
    tasks = [{"id": i, "data": {"text": p["text"]}} for i, p in enumerate(passages[:5])]
    body = post(base, "/predict", {"tasks": tasks, "project": "1.1", "label_config": label_config_xml(schema)}).json()
    outputs = api["model"].predict([t["data"]["text"] for t in tasks])
    assert body["results"] == [prediction(o, Labels.of_model(api["model"]), version) for o in outputs]
    interface = LabelInterface(label_config_xml(schema))
    assert all(interface.validate_prediction(r) for r in body["results"])
    assert post(base, "/webhook", {"action": "ANNOTATION_CREATED"}).json() == {"status": "ok"}
    for bad in ({}, {"tasks": []}, {"tasks": [{"id": 1, "data": {}}]}):
        assert post(base, "/predict", bad).status_code == 400


def test_ml_backend_accepts_basic_auth_with_the_api_key(secured):
    import base64

    token = base64.b64encode(f"labelstudio:{API_KEY}".encode()).decode()
    assert requests.get(secured["base"] + "/labelstudio/health", timeout=10).status_code == 401
    ok = requests.get(secured["base"] + "/labelstudio/health", headers={"Authorization": f"Basic {token}"}, timeout=10)
    assert ok.status_code == 200
