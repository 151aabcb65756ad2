"""results.json schema, atomic writes, and finished-run detection."""

import json
import os

import pytest

from xstilts.files import atomic_write_json
from xstilts.provenance import provenance
from xstilts.run import results as R


def _valid():
    return {
        "schema_version": R.SCHEMA_VERSION, "kind": "target", "model": {"name": "m", "path_or_id": "m", "n_params": 1},
        "target_task": "xnli", "intermediate_task": None, "seed": 1, "metric": "accuracy",
        "per_language": {"en": {"accuracy": 0.5}}, "average": {"accuracy": 0.5}, "hyperparameters": {},
        "provenance": provenance(), "timing": {"wall_seconds": 1.0},
    }


def test_schema_accepts_valid_and_names_bad_field(tmp_path):
    R.validate(_valid())
    bad = _valid()
    del bad["per_language"]["en"]["accuracy"]
    with pytest.raises(R.ResultsSchemaError, match=r"x.json: per_language\['en'\] lacks 'accuracy'"):
        R.validate(bad, "x.json")
    bad = _valid()
    bad.pop("seed")
    with pytest.raises(R.ResultsSchemaError, match="missing field 'seed'"):
        R.write_results(tmp_path / "results.json", bad)
    assert not (tmp_path / "results.json").exists()


def test_provenance_records_versions_and_commit():
    p = provenance()
    for k in ("torch", "transformers", "datasets", "python", "xstilts"):
        assert k in p["versions"]
    assert "git_commit" in p and "device" in p


def test_atomic_write_leaves_no_partial_file_on_crash(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"old": True})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left


def test_is_finished_requires_a_valid_file(tmp_path):
    assert not R.is_finished(tmp_path)
    (tmp_path / R.RUN_FILE).write_text(json.dumps({"seed": 1}))
    (tmp_path / "results.json").write_text("{ half written")
    assert not R.is_finished(tmp_path)
    R.write_results(tmp_path / "results.json", _valid())
    assert not R.is_finished(tmp_path)  # records no run settings: not shown to be this directory's run
    R.write_results(tmp_path / "results.json", dict(_valid(), run_settings={"seed": 1}))
    assert R.is_finished(tmp_path)
