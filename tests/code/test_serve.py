"""`framing serve`: the command line and environment built from the package stage's Bento record."""

import json

import pytest

from pipeline.errors import InputError
from pipeline.serve import command


def test_command_serves_the_recorded_bento_with_its_own_model(tmp_path):
    record = tmp_path / "bento.json"
    record.write_text(json.dumps({"bento": "framing_classifier:abc", "model": "framing-classifier:def"}))
    cmd, env = command(record, "127.0.0.1", 3123)
    assert cmd[1:] == ["serve", "framing_classifier:abc", "--host", "127.0.0.1", "--port", "3123"]
    # Pinned: outside a container BentoML ignores the Bento's envs and would load the newest model.
    assert env == {"FRAMING_MODEL_TAG": "framing-classifier:def"}


@pytest.mark.parametrize("content, message", [(None, "not found"), ("{", "not a Bento record"),
                                              ('{"model": "m:1"}', "not a Bento record")])
def test_a_missing_or_broken_record_names_the_file_and_the_stage(tmp_path, content, message):
    record = tmp_path / "bento.json"
    if content is not None:
        record.write_text(content)
    with pytest.raises(InputError, match=rf"bento.json: {message}.*stage package"):
        command(record, "127.0.0.1", 3000)
