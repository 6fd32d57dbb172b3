"""`framing predict` and `framing models`: JSON lines out, clear errors, registry listing."""

from __future__ import annotations

import json

import pytest

from pipeline import predict, registry
from pipeline.errors import InputError
from tests.fixtures_train import trained_workspace


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_workspace(tmp_path_factory.getbasetemp() / "train-shared")


def test_predict_args_and_file(trained, tmp_path, capsys):
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps({"text": "A deal: munitions for grain and oil."}) + "\n\n"
                 + json.dumps({"text": "An isolated pariah.", "id": 7}) + "\n")
    predict.main(["--model", str(trained["model"]), "--file", str(f), "Strategic partnership treaty."])
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [l["text"] for l in lines] == ["Strategic partnership treaty.", "A deal: munitions for grain and oil.",
                                          "An isolated pariah."]
    assert "transactional" in lines[1]["decided_frames"]
    assert set(lines[0]) == {"text", "frames", "decided_frames", "stance", "stance_scores", "evidence"}


def test_predict_bad_line_names_file_and_line(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"text": "fine"}\n{"text": ""}\n')
    with pytest.raises(InputError, match=r"in\.jsonl:2: field 'text'"):
        list(predict.read_texts(f))
    f.write_text('{"text": "fine"}\n{oops\n')
    with pytest.raises(InputError, match=r"in\.jsonl:2: malformed JSON"):
        list(predict.read_texts(f))


def test_predict_from_registry_and_models_listing(trained, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    predict.main(["--from-registry", "Munitions in exchange for oil."])
    rec = json.loads(capsys.readouterr().out)
    assert "transactional" in rec["decided_frames"]
    versions = registry.list_versions(trained["uri"], "framing-classifier")
    champ = [v for v in versions if "champion" in v["aliases"]]
    assert len(champ) == 1 and champ[0]["tags"]["candidate"] == trained["summary"]["best_candidate"]
    assert "test.score" in champ[0]["metrics"]
    registry.main([])
    assert "champion" in capsys.readouterr().out
    with pytest.raises(InputError, match="no registered model 'nope'"):
        registry.list_versions(trained["uri"], "nope")
    with pytest.raises(InputError, match="alias 'gold'"):
        predict.load_model(from_registry=True, alias="gold")


def test_a_lone_surrogate_line_exits_2_naming_file_and_line_and_writes_nothing(trained, tmp_path):
    """The model would answer it (its text normalisation repairs the surrogate), but the output echoes the
    text and cannot hold it as UTF-8: the file is refused before the first prediction, like any bad line."""
    import subprocess
    import sys

    f = tmp_path / "in.jsonl"
    f.write_text('{"text": "A deal: munitions for oil."}\n{"text": "broken \\ud800 here"}\n{"text": "Allies."}\n')
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "predict", "--model", str(trained["model"]),
                           "--file", str(f)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"{f}:2: field 'text' holds a lone surrogate escape (\\ud800)" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    with pytest.raises(InputError, match=r"argument 1: not valid UTF-8"):
        predict.main(["--model", str(trained["model"]), "bad \udcff bytes"])


def test_predict_loads_only_the_models_own_dependencies(trained):
    """`framing predict` with a model file starts without MLflow, datasets, BentoML, scikit-learn or pandas (start-up time)."""
    import subprocess
    import sys

    code = ("import sys; from pipeline import cli; sys.argv = ['framing', 'predict', '--model', sys.argv[1], 'A deal.'];"
            "\ntry: cli.main()\nexcept SystemExit: pass\n"
            "print('LOADED', sorted(m for m in ('mlflow', 'datasets', 'bentoml', 'sklearn', 'pandas', 'joblib', 'model2vec')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(trained["model"])], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"decided_frames"' in done.stdout
    assert "LOADED []" in done.stdout, done.stdout
