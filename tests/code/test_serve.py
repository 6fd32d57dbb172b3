"""`framing serve`: the command line and environment built from the package stage's Bento record."""

import json

import pytest

from pipeline.errors import InputError
from pipeline.serve import command


def test_command_serves_the_recorded_bento_with_server_settings_as_overrides(tmp_path, monkeypatch):
    record = tmp_path / "bento.json"
    record.write_text(json.dumps({"bento": "framing_classifier:abc", "model": "framing-classifier:def"}))
    monkeypatch.setenv("FRAMING_WORKERS", "2")
    monkeypatch.setenv("FRAMING_ACCESS_LOG", "on")
    monkeypatch.delenv("BENTOML_CONFIG_OPTIONS", raising=False)
    cmd, env = command(record, "127.0.0.1", 3123)
    assert cmd[1:] == ["serve", "framing_classifier:abc", "--host", "127.0.0.1", "--port", "3123"]
    # The model is the Bento's own (by alias): nothing about it is passed; server settings are.
    assert env == {"BENTOML_CONFIG_OPTIONS": "services.framing_classifier.workers=2 "
                                             "services.framing_classifier.logging.access.enabled=true"}
    monkeypatch.setenv("FRAMING_WORKERS", "two")
    with pytest.raises(InputError, match="FRAMING_WORKERS"):
        command(record, "127.0.0.1", 3123)


@pytest.mark.parametrize("content, message", [(None, "not found"), ("{", "not a Bento record"),
                                              ('{"model": "m:1"}', "not a Bento record")])
def test_a_missing_or_broken_record_names_the_file_and_the_stage(tmp_path, content, message):
    record = tmp_path / "bento.json"
    if content is not None:
        record.write_text(content)
    with pytest.raises(InputError, match=rf"bento.json: {message}.*stage package"):
        command(record, "127.0.0.1", 3000)
