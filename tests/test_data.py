"""Dataset resolution: Hub ids redirected to a local mirror, canonical rows, loud errors."""

import pytest

from conftest import HUB
from xstilts.formats import pair_classification as PCF
from xstilts.data import sources as data_sources
from xstilts.data import hub as data_hub
from xstilts.retrieval import tatoeba as tatoeba_lib
from xstilts.errors import UsageError
from xstilts.run.args import get_task, parse_languages
from xstilts.tasks.classification import NLI_LABELS
from xstilts.tasks.languages import XNLI as XNLI_LANGS
from xstilts.tasks.types import Source


def test_data_root_from_flag_and_env(monkeypatch, tmp_path):
    assert data_hub.resolve_data_root(None) is None
    assert data_hub.resolve_data_root(str(HUB)) == HUB
    monkeypatch.setenv("XSTILTS_DATA_ROOT", str(HUB))
    assert data_hub.resolve_data_root(None) == HUB
    with pytest.raises(UsageError, match="is not a directory"):
        data_hub.resolve_data_root(str(tmp_path / "nope"))


def test_mnli_train_is_canonical_with_classlabel_order():
    task = get_task("mnli")
    ds = PCF.load(task, task.train, HUB)
    assert sorted(ds.column_names) == ["label", "lang", "text_a", "text_b"]
    assert len(ds) == 600
    assert set(ds["label"]) == {0, 1, 2}
    assert set(ds["lang"]) == {"en"}


def test_xnli_string_labels_mapped_and_languages_filtered():
    task = get_task("xnli")
    ds = PCF.load(task, task.test, HUB, ["de", "zh"])
    assert sorted(set(ds["lang"])) == ["de", "zh"]
    assert len(ds) == 60
    raw = data_sources.load_source(task.test, HUB).filter(lambda r: r["language"] == "de")
    expected = [NLI_LABELS.index(v) for v in raw["gold_label"]]
    assert [l for l, g in zip(ds["label"], ds["lang"]) if g == "de"] == expected


def test_check_source_names_missing_config_and_split():
    bad = Source("google/xtreme", "PAWS-X.xx", "test", {})
    with pytest.raises(UsageError, match=r"no config 'PAWS-X.xx'.*available configs: .*XNLI"):
        data_sources.check_source(bad, HUB)
    bad_split = Source("google/xtreme", "XNLI", "train", {})
    with pytest.raises(UsageError, match=r"no split 'train'.*available splits: validation, test"):
        data_sources.check_source(bad_split, HUB)
    with pytest.raises(UsageError, match="has no dataset 'org/missing'"):
        data_sources.check_source(Source("org/missing", "x", "train", {}), HUB)


def test_label_names_mismatch_is_named():
    task = get_task("mnli")
    ds = data_sources.load_source(task.train, HUB)
    with pytest.raises(UsageError, match=r"label names of field 'label' are \['entailment', 'neutral', "
                                         r"'contradiction'\], but the registry expects \['yes', 'no', 'maybe'\]"):
        data_sources.label_mapper(ds, "label", ("yes", "no", "maybe"), "mnli")


def test_missing_column_is_named():
    task = get_task("mnli")
    ds = data_sources.load_source(task.train, HUB)
    src = Source("nyu-mll/glue", "mnli", "train", {"text_a": "sentence1", "text_b": "hypothesis", "label": "label"})
    with pytest.raises(UsageError, match=r"lacks field\(s\) sentence1.*its fields are: premise, hypothesis, label, idx"):
        data_sources.check_columns(ds, src)


def test_languages_and_tasks_validated():
    task = get_task("xnli")
    assert parse_languages(task, "all") == list(XNLI_LANGS)
    assert parse_languages(task, "de,zh") == ["de", "zh"]
    with pytest.raises(UsageError, match=r"unknown language for task xnli 'xx'; valid choices: ar, bg"):
        parse_languages(task, "de,xx")
    with pytest.raises(UsageError, match=r"unknown target task 'pawsy'; valid choices: xnli"):
        get_task("pawsy", phase="target")


def test_tatoeba_pairs_aligned_from_iso3_config():
    task = get_task("tatoeba")
    src, en = tatoeba_lib.load_pairs(task, task.test, HUB, "zh")  # config tatoeba.cmn
    assert len(src) == len(en) == 40
    assert all(not s.endswith("\n") for s in src + en)


def test_a_mirror_is_read_once_per_process_and_reread_when_it_changes(tmp_path, monkeypatch):
    """A mirror's README (google/xtreme's card lists every config) is parsed and its configs resolved once per
    process, not once per language loaded (Tatoeba loads 41 configs); the rows are those of a load that reads the
    repo afresh, and an edited README or an added file is read again."""
    import shutil

    import datasets
    from datasets.load import LocalDatasetModuleFactory

    root = tmp_path / "hub"
    shutil.copytree(HUB / "google" / "xtreme", root / "google" / "xtreme")
    built = []
    original = LocalDatasetModuleFactory.get_module
    monkeypatch.setattr(LocalDatasetModuleFactory, "get_module", lambda self: built.append(self.path) or original(self))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    a, b = (Source("google/xtreme", c, "validation", {}) for c in ("PAN-X.de", "PAN-X.en"))
    rows_a = data_hub.load_source(a, root).to_list()
    rows_b = data_hub.load_source(b, root).to_list()
    assert len(built) == 1
    # the same rows as datasets' own load of the repo, without the reuse
    fresh = datasets.load_dataset(str(root / "google" / "xtreme"), "PAN-X.de", split="validation",
                                  cache_dir=str(tmp_path / "fresh"))
    assert rows_a == fresh.to_list() and rows_a != rows_b and len(built) == 2
    readme = root / "google" / "xtreme" / "README.md"
    readme.write_text(readme.read_text() + "\n")
    data_hub.load_source(a, root)
    assert len(built) == 3
    (root / "google" / "xtreme" / "extra.txt").write_text("a new file\n")
    data_hub.load_source(a, root)
    assert len(built) == 4
