"""Dual-encoder retrieval: LAReQA (question -> answer sentence) and Mewsli-X (mention -> entity), XTREME-R.

Model: one shared encoder tower (the phase-2 encoder, loaded like every other head's encoder), a pooled
representation, L2 normalised: ``pooler`` (the task declarations' value, XTREME-R's): BERT's pooler, dense + tanh
over the first token's last hidden state, as google-research/xtreme ``third_party/bert.py@838c13b:19-21,48-66``
(``BertForRetrieval`` encodes ``outputs[1]``, the pooler output, for XLM-R too: ``xlm_roberta.py:386-393``); its
weights come from the checkpoint when it holds them (the pretrained XLM-R does) and are initialised fresh otherwise
(an encoder-only phase-2 checkpoint of a head without pooler): the result's ``handoff.encoder_tensors_not_in_checkpoint``
names them. Kit options: ``cls`` (the first token's last hidden state, no pooler) and ``mean`` (over the non-padding
tokens). It is trained with an in-batch sampled softmax: for a batch of B (query, positive) pairs the logits are
``logit_scale * q @ c.T`` (B x B) and the loss is the cross-entropy of each query against its own positive,
the other positives being its negatives (Roy et al. 2020, as XTREME-R's ``run_retrieval_qa.py`` /
``run_retrieval_el.py``). The scale is fixed at 100 here; XTREME-R's is a learnable parameter initialised at 100
(``bert.py@838c13b:22-23``), a kit difference. ``softmax_group`` g fixes the number of negatives:
each query's softmax runs over its group of g consecutive pairs of the per-device batch (XTREME's per-GPU
batch: 4 for LAReQA, 8 for Mewsli-X), so the negatives do not change with the per-device batch the kit derives
from the model size (a confound in a study over sizes); 0 = the whole per-device batch. The head has no parameters of its own (the pooler
belongs to the encoder), so the hand-off has no fresh head tensors. Pooling and scale are stored in the model config (``dual_encoder_pooling``,
``dual_encoder_logit_scale``) and with every result (``format_settings``).

Examples are one ``datasets.Dataset`` with a ``role`` column (the format interface passes one dataset):

``pair``       a training pair: ``text`` the query, ``pos_text`` / ``pos_text_pair`` the positive candidate
``query``      an evaluation query: ``id`` (written in the prediction files), ``lang``, ``text``, ``relevant``
               (the ids of its relevant candidates: the gold)
``candidate``  one member of the candidate pool: ``id``, ``text`` / ``text_pair``; ``lang`` is empty, so the
               per-language loop of ``evaluate_languages`` never scores or writes a candidate row

Features are row-aligned with the examples: every query and candidate is embedded in one length-sorted pass
(``labels`` = the row index, so the Trainer's English-dev evaluation can place every embedding), then each
query retrieves its top 20 among ALL candidates with exact inner-product search (language-agnostic: a
LAReQA question ranks the answer sentences of every evaluated language at once). Per language, the queries of
that language are scored with ``xstilts.scoring.xtreme`` (mAP@20: LAReQA's AP@20, Mewsli-X's MRR@20 as the official
scorer computes them), and written in the leaderboard layout ``<task>/test-<lang>.json``
(``{query id: [top-20 candidate ids]}``; labels ``{query id: [relevant ids]}``). The search backend is
``xstilts.retrieval.search.resolve("auto")``: the chunked torch matrix product on CUDA, ``faiss.IndexFlatIP`` otherwise
(the same neighbours up to exact ties); the one used is stored in the result's ``timing.search``.

Task data (``Task.format_options``, all strings): ``data`` (``lareqa`` | ``mewslix``: how rows become
examples), ``pooling``, ``logit_scale``, ``softmax_group``, ``query_max_length`` (queries are cut at
``min(query_max_length, --max_seq_length)``; candidates at ``--max_seq_length``), ``candidates``
(``<config>/<split>`` of the candidate pool in the test source's repo, Mewsli-X), ``selection`` (the
checkpoint rule, recorded with the result).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..data.sources import check_columns, language_groups, load_source
from ..errors import UsageError
from ..files import atomic_write_text
from ..retrieval.search import Search, resolve
from ..scoring.xtreme import average_precision_at_k, score_task
from .base import Format, predict_sorted

logger = logging.getLogger(__name__)

TOP_K = 20
POOLINGS = ("pooler", "cls", "mean")  # pooler: XTREME-R's (module docstring)
POOLING_SOURCES = {
    "pooler": "XTREME-R: BERT's pooler (dense + tanh over the first token), google-research/xtreme "
              "third_party/bert.py@838c13b:19-21,48-66; weights from the checkpoint, else fresh "
              "(handoff.encoder_tensors_not_in_checkpoint)",
    "cls": "kit option: the first token's last hidden state, no pooler",
    "mean": "kit option: mean of the last hidden states over the non-padding tokens",
}
DATA_KINDS = ("lareqa", "mewslix")
CONFIG_PREFIX = "dual_encoder_"


# ------------------------------------------------------------------------------------------------ settings

@dataclasses.dataclass(frozen=True)
class Settings:
    data: str
    pooling: str = "cls"
    logit_scale: float = 100.0
    query_max_length: int = 64
    softmax_group: int = 0
    candidates: str = ""
    selection: str = "English dev"

    def describe(self) -> dict:
        return dataclasses.asdict(self)


def task_settings(task) -> Settings:
    opts = dict(getattr(task, "format_options", {}) or {})
    unknown = sorted(set(opts) - {f.name for f in dataclasses.fields(Settings)})
    if unknown:
        raise ValueError(f"task {task.name}: unknown dual_encoder format option(s) {unknown}")
    if opts.get("data") not in DATA_KINDS:
        raise ValueError(f"task {task.name}: format option data={opts.get('data')!r}; valid: {', '.join(DATA_KINDS)}")
    s = Settings(data=opts["data"], pooling=opts.get("pooling", "cls"),
                 logit_scale=float(opts.get("logit_scale", 100.0)),
                 query_max_length=int(opts.get("query_max_length", 64)),
                 softmax_group=int(opts.get("softmax_group", 0)),
                 candidates=opts.get("candidates", ""), selection=opts.get("selection", "English dev"))
    if s.pooling not in POOLINGS:
        raise ValueError(f"task {task.name}: pooling {s.pooling!r}; valid: {', '.join(POOLINGS)}")
    return s


def format_settings(task) -> dict:
    """What the result records about the retrieval set-up (run_target.py stores it as ``format_settings``)."""
    s = task_settings(task)
    negatives = (f"in-batch: the other positives of the query's group of {s.softmax_group} consecutive pairs of the "
                 f"per-device batch" if s.softmax_group else "in-batch: the other positives of the per-device batch")
    return dict(s.describe(), pooling_source=POOLING_SOURCES[s.pooling], top_k=TOP_K, metric=task.metric, similarity="cosine (L2-normalised, inner product)",
                search="exact inner product: torch chunked matrix product on CUDA, else faiss.IndexFlatIP (the backend "
                       "used: timing.search)", negatives=negatives)


# ------------------------------------------------------------------------------------------------ loading

def example_features():
    from datasets import Features, List, Value

    s = Value("string")
    return Features({"role": s, "id": s, "lang": s, "text": s, "text_pair": s, "pos_text": s, "pos_text_pair": s,
                     "relevant": List(s)})


def _row(role, id_="", lang="", text="", text_pair="", pos_text="", pos_text_pair="", relevant=()):
    return {"role": role, "id": id_, "lang": lang, "text": text, "text_pair": text_pair, "pos_text": pos_text,
            "pos_text_pair": pos_text_pair, "relevant": list(relevant)}


def _load_split(source, data, code=None):
    """One split as a Dataset, its columns checked."""
    ds = load_source(source, data, code)
    check_columns(ds, source, code)
    return ds


def _splits_by_language(task, source, data, languages):
    """[(language or None, Dataset)] of ``source`` restricted to ``languages`` (None: the split as it is);
    a language column, when the source has one, is renamed ``_lang``, else the language is given."""
    out, have = [], set()
    for lang, code, src in language_groups(task, source, languages):
        ds = _load_split(src, data, code)
        if src.lang_column:
            if languages is not None:
                wanted = set(languages)
                ds = ds.filter(lambda v: v in wanted, input_columns=src.lang_column)
            have.update(ds.unique(src.lang_column))
            ds = ds.rename_column(src.lang_column, "_lang") if src.lang_column != "_lang" else ds
            out.append((None, ds))
        else:
            have.add(lang or "en")
            out.append((lang or "en", ds))
    if languages is not None:
        empty = [l for l in languages if l not in have]
        if empty:
            raise UsageError(f"{task.name}: no rows for language(s) {', '.join(empty)} in {source.hub_id}/"
                             f"{source.config}[{source.split}]")
    return out


def _to_examples(ds, lang, fn):
    """Map a loaded split onto the example schema, batch by batch (no Python row lists of large splits)."""
    def batch_fn(batch):
        n = len(next(iter(batch.values())))
        langs = batch["_lang"] if "_lang" in batch else [lang] * n
        rows = [fn({k: v[i] for k, v in batch.items()}, langs[i]) for i in range(n)]
        return {k: [r[k] for r in rows] for k in example_features()}

    return ds.map(batch_fn, batched=True, remove_columns=ds.column_names, features=example_features(),
                  desc="examples")


def _rows(splits) -> list[dict]:
    """Python rows with their language in ``_lang`` (evaluation queries: small)."""
    out = []
    for lang, ds in splits:
        for r in ds.to_list():
            r.setdefault("_lang", lang)
            out.append(r)
    return out


def _lareqa_pair(r, lang):
    return _row("pair", r["id"], lang, r["question"], "", r["sentences"][r["answer_sentence"]], r["context"])


def _mewslix_pair(r, lang):
    return _row("pair", r["example_id"], lang, r["mention"], "", r["entity_description"])


def _lareqa_eval(rows):
    """Queries and the language-agnostic pool of answer-sentence candidates (LAReQA's ``load_data``).

    A candidate is one sentence of one paragraph (id ``<context_id>_<position>``); a query's relevant
    candidates are, in every language loaded, the sentences equal to the answer sentence of the question
    with the same id (the same question translated)."""
    paragraphs = {}  # (lang, context_id) -> (context, sentences)
    relevant = {}  # xling id -> relevant candidate ids
    for r in rows:
        paragraphs.setdefault((r["_lang"], r["context_id"]), (r["context"], r["sentences"]))
        answer = r["sentences"][r["answer_sentence"]]
        rel = relevant.setdefault(r["id"], [])
        for j, sent in enumerate(r["sentences"]):
            cid = f"{r['context_id']}_{j}"
            if sent == answer and cid not in rel:
                rel.append(cid)
    queries = [_row("query", f"{r['id']}_{r['_lang']}", r["_lang"], r["question"], relevant=relevant[r["id"]])
               for r in rows]
    ids = [q["id"] for q in queries]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UsageError(f"lareqa: question {dup!r} occurs twice")
    cands = [_row("candidate", f"{cid}_{j}", "", sent, context)
             for (_, cid), (context, sents) in paragraphs.items() for j, sent in enumerate(sents)]
    return queries, cands


def _mewslix_eval(task, rows, data, opts: Settings):
    """Queries, and their pool: the dev pairs' own entities (English dev), else the candidate set."""
    from datasets import Dataset

    queries = [_row("query", r["example_id"], r["_lang"], r["mention"], relevant=[r["entity_id"]]) for r in rows]
    if rows and "entity_description" in rows[0]:
        pool = {}
        for r in rows:
            pool.setdefault(r["entity_id"], r["entity_description"])
        return queries, Dataset.from_list([_row("candidate", e, "", t) for e, t in pool.items()],
                                          features=example_features())
    config, _, split = opts.candidates.partition("/")
    if not config or not split:
        raise ValueError(f"task {task.name}: format option candidates={opts.candidates!r}; expected <config>/<split>")
    pool_source = dataclasses.replace(task.test, config=config, split=split, lang_column=None,
                                      columns={"entity_id": "entity_id", "description": "description"})
    ds = _load_split(pool_source, data)
    missing = sorted({q["relevant"][0] for q in queries} - set(ds["entity_id"][:]))
    if missing:
        raise UsageError(f"{task.name}: gold entities missing from the candidate set {config}/{split}: {missing[:10]}")
    return queries, _to_examples(ds, "", lambda r, _: _row("candidate", r["entity_id"], "", r["description"]))


def load(task, source, data, languages=None, max_samples=None):
    """Rows of ``source`` -> examples: training pairs when ``source`` is the task's train split, else the
    queries of ``languages`` followed by the candidate pool they retrieve from. ``max_samples`` caps the
    pairs, or the queries (the pool then holds what those queries need: their paragraphs for LAReQA)."""
    from datasets import Dataset, concatenate_datasets

    if source is None:
        return None
    opts = task_settings(task)
    splits = _splits_by_language(task, source, data, languages)
    if source == task.train:
        pair = _lareqa_pair if opts.data == "lareqa" else _mewslix_pair
        parts = [_to_examples(ds, lang, pair) for lang, ds in splits]
        ex = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
        if max_samples is not None and max_samples < len(ex):
            ex = ex.select(range(max_samples))
        return ex
    rows = _rows(splits)
    if max_samples is not None:
        rows = rows[:max_samples]
    if opts.data == "lareqa":
        queries, cands = _lareqa_eval(rows)
        cands = Dataset.from_list(cands, features=example_features()) if cands else None
    else:
        queries, cands = _mewslix_eval(task, rows, data, opts)
    if not queries or cands is None or len(cands) == 0:
        raise UsageError(f"{task.name}: {source.hub_id}/{source.config}[{source.split}] gave {len(queries)} queries "
                         f"and {0 if cands is None else len(cands)} candidates; nothing to retrieve")
    return concatenate_datasets([Dataset.from_list(queries, features=example_features()), cands])


# ------------------------------------------------------------------------------------------------ features

def featurize(examples, tokenizer, max_length: int, task=None, *, train: bool = False):
    """Training pairs -> query + candidate token ids; evaluation rows -> one token sequence per row (queries
    at the query length, candidates as (sentence, context) pairs where they have a context), row-aligned,
    ``labels`` = the row index. No padding (the collator pads each batch)."""
    if examples is None:
        return None
    opts = task_settings(task)
    qlen = min(opts.query_max_length, max_length)

    def enc(texts, pairs, limit):
        if any(pairs):
            if not all(pairs):
                raise ValueError("mixed candidates with and without a context in one batch")
            return tokenizer(texts, pairs, truncation=True, max_length=limit)
        return tokenizer(texts, truncation=True, max_length=limit)

    def train_fn(batch):
        q = enc(batch["text"], [None] * len(batch["text"]), qlen)
        c = enc(batch["pos_text"], [p or None for p in batch["pos_text_pair"]], max_length)
        return {"input_ids": q["input_ids"], "attention_mask": q["attention_mask"],
                "cand_input_ids": c["input_ids"], "cand_attention_mask": c["attention_mask"],
                "length": [len(a) + len(b) for a, b in zip(q["input_ids"], c["input_ids"])]}

    def eval_fn(batch, indices):
        n = len(indices)
        ids, masks = [None] * n, [None] * n
        groups = {}
        for i, (role, pair) in enumerate(zip(batch["role"], batch["text_pair"])):
            groups.setdefault((role, bool(pair)), []).append(i)
        for (role, has_pair), idx in groups.items():
            texts = [batch["text"][i] for i in idx]
            pairs = [batch["text_pair"][i] for i in idx] if has_pair else [None] * len(idx)
            out = enc(texts, pairs, qlen if role == "query" else max_length)
            for k, i in enumerate(idx):
                ids[i], masks[i] = out["input_ids"][k], out["attention_mask"][k]
        return {"input_ids": ids, "attention_mask": masks, "labels": list(indices), "length": [len(x) for x in ids]}

    roles = set(examples.unique("role"))
    if train:
        if roles != {"pair"}:
            raise ValueError(f"training examples must be pairs, got roles {sorted(roles)}")
        return examples.map(train_fn, batched=True, remove_columns=examples.column_names, desc="tokenize pairs")
    if "pair" in roles:
        raise ValueError("evaluation examples must be queries and candidates, not training pairs")
    return examples.map(eval_fn, batched=True, with_indices=True, remove_columns=examples.column_names,
                        desc="tokenize queries and candidates")


class Collator:
    """Pads queries (``input_ids``) and candidates (``cand_input_ids``) separately, each to its longest."""

    def __init__(self, tokenizer):
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def __call__(self, features):
        batch = {}
        for prefix in ("", "cand_"):
            key = f"{prefix}input_ids"
            if key not in features[0]:
                continue
            seqs = [list(f[key]) for f in features]
            n = max(len(s) for s in seqs)
            batch[key] = torch.tensor([s + [self.pad_id] * (n - len(s)) for s in seqs], dtype=torch.long)
            batch[f"{prefix}attention_mask"] = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs],
                                                            dtype=torch.long)
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([int(f["labels"]) for f in features], dtype=torch.long)
        return batch


def collator(tokenizer):
    return Collator(tokenizer)


# ------------------------------------------------------------------------------------------------ the model

_CLASSES: dict = {}


def _encoder_class(config):
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        return MODEL_MAPPING[type(config)]
    except KeyError:
        raise UsageError(f"model type {config.model_type!r} has no bare encoder class in transformers' "
                         f"MODEL_MAPPING; the dual encoder needs one") from None


def dual_encoder_class(config):
    """A ``PreTrainedModel`` subclass of the encoder's family (XLM-R: ``XLMRobertaPreTrainedModel``), so the
    encoder lives under the family's ``base_model_prefix`` and ``from_pretrained`` loads an encoder-only
    (phase 2) or a full checkpoint the same way the other heads do."""
    from transformers import PreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    encoder_cls = _encoder_class(config)
    if encoder_cls in _CLASSES:
        return _CLASSES[encoder_cls]
    family = next(c for c in encoder_cls.__mro__[1:] if issubclass(c, PreTrainedModel) and c is not PreTrainedModel)
    has_flag = "add_pooling_layer" in inspect.signature(encoder_cls.__init__).parameters

    class DualEncoder(family):
        def __init__(self, config):
            super().__init__(config)
            pooler = getattr(config, f"{CONFIG_PREFIX}pooling", "cls") == "pooler"
            if pooler and not has_flag:
                raise UsageError(f"pooling 'pooler' needs an encoder with a BERT-style pooler; "
                                 f"{encoder_cls.__name__} has none (valid choices here: cls, mean)")
            extra = {"add_pooling_layer": pooler} if has_flag else {}
            setattr(self, self.base_model_prefix, encoder_cls(config, **extra))
            self.post_init()

        @property
        def pooling(self) -> str:
            return getattr(self.config, f"{CONFIG_PREFIX}pooling", "cls")

        @property
        def logit_scale(self) -> float:
            return float(getattr(self.config, f"{CONFIG_PREFIX}logit_scale", 100.0))

        @property
        def softmax_group(self) -> int:
            return int(getattr(self.config, f"{CONFIG_PREFIX}softmax_group", 0) or 0)

        def encode(self, input_ids, attention_mask):
            out = getattr(self, self.base_model_prefix)(input_ids=input_ids, attention_mask=attention_mask)
            hidden = out.last_hidden_state
            if self.pooling == "pooler":  # dense + tanh over the first token (BertPooler / XLMRobertaPooler)
                pooled = out.pooler_output
            elif self.pooling == "mean":
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            else:
                pooled = hidden[:, 0]
            return torch.nn.functional.normalize(pooled.float(), dim=-1)

        def forward(self, input_ids=None, attention_mask=None, cand_input_ids=None, cand_attention_mask=None,
                    labels=None):
            q = self.encode(input_ids, attention_mask)
            if cand_input_ids is None:  # embedding mode (evaluation): one vector per row
                return SequenceClassifierOutput(loss=q.new_zeros(()), logits=q)
            c = self.encode(cand_input_ids, cand_attention_mask)
            logits = self.logit_scale * q @ c.T
            target = torch.arange(q.shape[0], device=q.device)
            g = self.softmax_group
            if g and g < q.shape[0]:  # each query's softmax runs over its group of g consecutive pairs only
                group = target // g
                logits = logits.masked_fill(group[:, None] != group[None, :], float("-inf"))
            return SequenceClassifierOutput(loss=torch.nn.functional.cross_entropy(logits, target), logits=logits)

    DualEncoder.__name__ = DualEncoder.__qualname__ = f"{encoder_cls.__name__}DualEncoder"
    _CLASSES[encoder_cls] = DualEncoder
    return DualEncoder


class AutoDualEncoder:
    """``from_pretrained`` like an Auto class: picks the encoder family from the checkpoint's config. Keyword
    arguments starting with ``dual_encoder_`` are set on the config (pooling, scale); the rest go to
    ``from_pretrained``."""

    @staticmethod
    def from_pretrained(path_or_id, **kwargs):
        from transformers import AutoConfig

        settings_kw = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith(CONFIG_PREFIX)}
        config = kwargs.pop("config", None) or AutoConfig.from_pretrained(
            path_or_id, trust_remote_code=kwargs.get("trust_remote_code", False))
        for k, v in settings_kw.items():
            setattr(config, k, v)
        return dual_encoder_class(config).from_pretrained(path_or_id, config=config, **kwargs)


def model_class():
    return AutoDualEncoder


def model_kwargs(task) -> dict:
    s = task_settings(task)
    return {f"{CONFIG_PREFIX}pooling": s.pooling, f"{CONFIG_PREFIX}logit_scale": s.logit_scale,
            f"{CONFIG_PREFIX}softmax_group": s.softmax_group}


# ------------------------------------------------------------------------------------------------ retrieval

def average_precisions(rankings, relevant, k: int = TOP_K) -> list[float]:
    return [average_precision_at_k(rel, ranked, k) for ranked, rel in zip(rankings, relevant)]


def _col(examples, name: str) -> list:
    """A whole column as a list (``ds[name]`` is a lazy Column in datasets 5: element access is slow)."""
    return examples[name][:]


def rank(embeddings: np.ndarray, examples, k: int = TOP_K, search: Search | None = None) -> list:
    """Top-k candidate ids for every query row (None for candidate rows), exact inner-product search with
    ``search`` (default ``resolve("auto")``: torch on CUDA, else FAISS)."""
    roles = _col(examples, "role")
    ids = _col(examples, "id")
    q_idx = [i for i, r in enumerate(roles) if r == "query"]
    c_idx = [i for i, r in enumerate(roles) if r == "candidate"]
    out = [None] * len(roles)
    if not q_idx or not c_idx:
        return out
    emb = np.asarray(embeddings, dtype=np.float32)
    _, nn = (search or resolve("auto")).topk(emb[q_idx], emb[c_idx], min(k, len(c_idx)))
    cand_ids = [ids[i] for i in c_idx]
    for row, neighbours in zip(q_idx, nn):
        out[row] = [cand_ids[j] for j in neighbours if j >= 0]
    return out


def _embeddings(predictions) -> np.ndarray:
    if isinstance(predictions, tuple):
        predictions = predictions[0]
    return np.asarray(predictions, dtype=np.float32)


def dev_metrics(task, examples, features):
    """English-dev mAP@20 (fraction) of the dev queries over the dev pool, from the Trainer's evaluation."""
    if examples is None:
        return None
    roles = _col(examples, "role")
    relevant = _col(examples, "relevant")

    def compute_metrics(eval_pred):
        emb = _embeddings(eval_pred.predictions)
        rows = np.asarray(eval_pred.label_ids).reshape(-1)
        if len(rows) != len(roles) or sorted(rows.tolist()) != list(range(len(roles))):
            return {}  # not the dev set (Trainer.predict on the test set also calls compute_metrics)
        placed = np.zeros((len(roles), emb.shape[1]), dtype=np.float32)
        placed[rows] = emb
        rankings = rank(placed, examples)
        q = [i for i, r in enumerate(roles) if r == "query"]
        aps = average_precisions([rankings[i] for i in q], [relevant[i] for i in q])
        return {"map@20": float(np.mean(aps))}

    return compute_metrics


def predict(trainer, task, examples, features):
    emb, timing = predict_sorted(trainer, features, _embeddings)
    t0 = time.time()
    search = resolve("auto")
    logger.info("%s: top-%d search with %s", task.name, TOP_K, search)
    rankings = rank(emb, examples, search=search)
    roles = _col(examples, "role")
    timing = dict(timing, search_seconds=time.time() - t0, n_queries=sum(r == "query" for r in roles),
                  n_candidates=sum(r == "candidate" for r in roles), search=search.describe())
    return rankings, timing


def gold(task, examples) -> list:
    return [list(rel) if role == "query" else None
            for role, rel in zip(_col(examples, "role"), _col(examples, "relevant"))]


def score(task, preds, golds, lang=None) -> dict:
    """mAP@20 of one language's queries (a fraction), by the leaderboard scorer's code
    (``xstilts.scoring.xtreme``: LAReQA's AP@20, Mewsli-X's MRR@20)."""
    name = task.xtreme_name or task_settings(task).data
    keys = [str(i) for i in range(len(preds))]
    s = score_task(name, dict(zip(keys, preds)), dict(zip(keys, golds)))
    return {"map@20": s["map@20"] / 100.0, "n": len(preds)}


def leaderboard_file(root, task, lang: str, split: str = "test") -> Path:
    prefix = "test" if split == "test" else "dev"
    return Path(root) / (task.xtreme_name or task.name) / f"{prefix}-{lang}.json"


def write(root, task, lang, items, examples, split) -> None:
    """``<root>/<task>/test-<lang>.json``: ``{query id: [candidate ids]}`` (predictions: the top 20, best
    first; labels: the relevant ids)."""
    ids = _col(examples, "id")
    if len(ids) != len(items):
        raise ValueError(f"{len(items)} items for {len(ids)} queries")
    obj = {qid: list(item) for qid, item in zip(ids, items)}
    atomic_write_text(leaderboard_file(root, task, lang, split), json.dumps(obj, ensure_ascii=False) + "\n")


class DualEncoderFormat(Format):
    """Dual-encoder retrieval: one encoder tower, in-batch sampled softmax, mAP@20 over a candidate pool."""

    name = "dual_encoder"
    metrics = ("map@20",)
    load = staticmethod(load)
    featurize = staticmethod(featurize)
    model_class = staticmethod(model_class)
    model_kwargs = staticmethod(model_kwargs)
    collator = staticmethod(collator)
    dev_metrics = staticmethod(dev_metrics)
    predict = staticmethod(predict)
    gold = staticmethod(gold)
    score = staticmethod(score)
    write = staticmethod(write)
    settings = staticmethod(format_settings)
