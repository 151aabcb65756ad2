"""Multilingual masked language modelling as a phase-2 objective (task ``mlm``, xstilts/tasks/mlm.py), trained beside an
intermediate task in the multi-task trainer (``--tasks mnli,mlm``) with the pretrained model's own LM head.

Corpus (``load``), per language of ``--mlm_languages``: the split is shuffled once with a fixed corpus seed
(``CORPUS_SEED``, the same for every run and seed), the first documents are held out for dev
(``--mlm_dev_documents``; at most a quarter of the language's documents), the next ``--mlm_max_documents`` are
the training documents (the per-language cap; ``--max_train_samples`` / ``--task_max_train_samples mlm=N`` lower
it further).

Segments (``featurize``): each document's text is tokenised without special tokens and cut into consecutive
pieces of ``max_seq_length - 2`` tokens, each wrapped in ``<s> ... </s>`` (segments never cross documents; XLM-R's
fairseq set-up packs whole sentences into streams of 512 tokens instead: here the run's ``--max_seq_length``, so
that an MLM batch costs what a task batch costs).

Languages (``featurize``, training): temperature sampling as in XLM-R (Conneau et al. 2020 section 3: "the same
sampling distribution as Lample and Conneau (2019), but with alpha = 0.3"): with n_L segments of language L,
p_L = n_L ** alpha / sum_K n_K ** alpha. The training set is resampled once to those proportions at its own
size (sum n_L segments; a language below its share is repeated, one above is subsampled, by whole passes plus a
seeded remainder), so the mixture's draws within the MLM task follow p_L.

Masking (``mask_tokens``, in the collator, dynamic: new masks every time a segment is drawn), as in XLM-R's
pre-training code (fairseq ``MaskTokensDataset`` defaults of ``tasks/multilingual_masked_lm.py``: mask_prob 0.15,
leave_unmasked_prob 0.1, random_token_prob 0.1; BERT, Devlin et al. 2019 section 3.1): per segment
``int(0.15 * n + U[0,1))`` of its n maskable tokens, chosen uniformly; of those 80 % become ``<mask>``, 10 % a
random token, 10 % stay unchanged; the loss is on the chosen tokens only. Special tokens (``<s>``, ``</s>``,
``<pad>``, ``<unk>``, ``<mask>``) are never chosen (fairseq may choose ``<s>``/``</s>``; BERT, jiant and
transformers' collator do not) and random tokens are drawn uniformly from the non-special vocabulary (fairseq:
``weights[:nspecial] = 0``). Dev segments are masked once, deterministically (seeded by their index), so every
evaluation scores the same masked tokens.

The model (``MaskedLMOnEncoder``): the shared encoder plus the pretrained LM head (dense, GELU, LayerNorm, then
the projection onto the vocabulary with the encoder's own word embeddings, tied as in the pretrained model, and
the head's bias), scoring the chosen positions only. ``pretrained_head``: the head is the checkpoint's, never
initialised afresh (xstilts/training/mlm.py loads it); the encoder-only hand-off drops it like every head.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from transformers.utils import ModelOutput

from ..data.sources import check_columns, check_files, check_source, load_source
from ..errors import UsageError
from .base import Format

logger = logging.getLogger(__name__)

MASK_PROBABILITY = 0.15  # share of a segment's maskable tokens chosen for prediction
MASK_TOKEN, RANDOM_TOKEN = 0.8, 0.1  # of the chosen: replaced by <mask>, by a random token (the rest unchanged)
ALPHA = 0.3  # XLM-R's language sampling exponent
CORPUS_SEED = 0  # document order per language (the same corpus for every run)
DEV_MASK_SEED = 1  # the dev segments' fixed masks
IGNORE = -100  # label of positions without a prediction (transformers' convention)

# the format's settings: DataArguments field -> default
OPTIONS = {"mlm_languages": "xtreme", "mlm_max_documents": 10_000, "mlm_dev_documents": 20, "mlm_alpha": ALPHA}


def language_rates(counts: dict[str, int], alpha: float) -> dict[str, float]:
    """p_L = n_L ** alpha / sum_K n_K ** alpha over the languages with segments."""
    weights = {l: float(n) ** alpha for l, n in counts.items() if n > 0}
    total = sum(weights.values())
    return {l: w / total for l, w in weights.items()}


def largest_remainder(rates: dict[str, float], total: int) -> dict[str, int]:
    """Integer shares of ``total`` in proportion to ``rates`` (largest remainder; ties to the earlier key)."""
    exact = {l: total * r for l, r in rates.items()}
    out = {l: int(math.floor(x)) for l, x in exact.items()}
    for l in sorted(exact, key=lambda k: (-(exact[k] - out[k]), list(exact).index(k)))[: total - sum(out.values())]:
        out[l] += 1
    return out


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, *, mask_id: int, replacement_ids: torch.Tensor,
                probability: float = MASK_PROBABILITY, generator: torch.Generator | None = None):
    """(masked inputs, labels) for a batch ``[B, L]``; ``special``: positions never chosen (special tokens and
    padding). Labels hold the original id at the chosen positions and ``IGNORE`` elsewhere."""
    b, n = input_ids.shape
    maskable = ~special
    count = maskable.sum(dim=1)
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    chosen_n = torch.minimum(torch.floor(probability * count + rand(b)).long(), count)
    scores = rand(b, n).masked_fill(special, 2.0)  # maskable positions first, in random order
    rank = scores.argsort(dim=1).argsort(dim=1)
    chosen = rank < chosen_n[:, None]
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    u = rand(b, n)
    to_mask = chosen & (u < MASK_TOKEN)
    to_random = chosen & (u >= MASK_TOKEN) & (u < MASK_TOKEN + RANDOM_TOKEN)
    inputs = input_ids.clone()
    inputs[to_mask] = mask_id
    k = int(to_random.sum())
    if k:
        inputs[to_random] = replacement_ids[torch.randint(len(replacement_ids), (k,), generator=generator)]
    return inputs, labels


def special_ids(tokenizer) -> list[int]:
    return sorted({int(i) for i in tokenizer.all_special_ids} | {int(tokenizer.pad_token_id)})


class MaskingCollator:
    """Pads a batch of segments; masks it (``mask_tokens``) unless its rows carry fixed ``labels`` (dev)."""

    def __init__(self, tokenizer, generator: torch.Generator | None = None):
        if tokenizer.mask_token_id is None:
            raise UsageError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no mask token: masked LM "
                             f"needs the model's pre-training tokenizer")
        self.pad_id, self.mask_id = int(tokenizer.pad_token_id), int(tokenizer.mask_token_id)
        self.special = torch.tensor(special_ids(tokenizer))
        keep = torch.ones(len(tokenizer), dtype=torch.bool)
        keep[self.special] = False
        self.replacement_ids = torch.nonzero(keep).flatten()
        self.generator = generator

    def pad(self, rows: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(r) for r in rows)
        out = torch.full((len(rows), width), value, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    def __call__(self, rows: list[dict]) -> dict:
        input_ids = self.pad([r["input_ids"] for r in rows], self.pad_id)
        attention_mask = (input_ids != self.pad_id).long()
        if "labels" in rows[0]:
            return {"input_ids": input_ids, "attention_mask": attention_mask,
                    "labels": self.pad([r["labels"] for r in rows], IGNORE)}
        inputs, labels = mask_tokens(input_ids, torch.isin(input_ids, self.special), mask_id=self.mask_id,
                                     replacement_ids=self.replacement_ids, generator=self.generator)
        return {"input_ids": inputs, "attention_mask": attention_mask, "labels": labels}


# ============================================================================================ the model
@dataclass
class MaskedTokenOutput(ModelOutput):
    """The loss, and the predicted token at every chosen position (``IGNORE`` elsewhere): what evaluation needs,
    instead of [batch, length, vocabulary] logits."""

    loss: torch.Tensor | None = None
    predictions: torch.Tensor | None = None


class PretrainedLMHead(torch.nn.Module):
    """XLM-R's LM head without its own copy of the output projection: dense -> GELU -> LayerNorm -> the encoder's
    word embeddings (tied, as in the pretrained model) + bias. Holds only the tensors that are not the encoder's."""

    def __init__(self, config):
        super().__init__()
        self.dense = torch.nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = torch.nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = torch.nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(torch.nn.functional.gelu(self.dense(hidden)))
        return torch.nn.functional.linear(x, embeddings, self.bias)


class MaskedLMOnEncoder(torch.nn.Module):
    """A model of the masked-LM objective on a given (shared) encoder; its ``lm_head`` is loaded from the
    pretrained checkpoint by ``xstilts.training.mlm``. ``base_model_prefix`` names the encoder attribute, as in
    transformers models, so the multi-task wrapper registers only ``lm_head`` as this task's head."""

    base_model_prefix = "encoder"

    def __init__(self, encoder, config):
        super().__init__()
        self.encoder = encoder
        self.config = config
        self.lm_head = PretrainedLMHead(config)

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.encoder.get_input_embeddings().weight

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs) -> MaskedTokenOutput:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)[0]
        if labels is None:
            raise ValueError("the masked-LM objective needs labels (the chosen positions)")
        chosen = labels != IGNORE
        logits = self.lm_head(hidden[chosen], self.word_embeddings)
        if logits.shape[0]:
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[chosen])
        else:  # no token chosen in the whole batch (tiny segments): a zero loss that keeps the graph
            loss = hidden.sum() * 0.0
        predictions = torch.full_like(labels, IGNORE)
        predictions[chosen] = logits.argmax(dim=-1)
        return MaskedTokenOutput(loss=loss, predictions=predictions)


# ============================================================================================ the format
def masked_token_accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    chosen = labels != IGNORE
    return float((predictions[chosen] == labels[chosen]).mean()) if chosen.any() else float("nan")


class MaskedLM(Format):
    """The ``masked_lm`` format: the corpus, its segments and language sampling, the masking collator and the
    masked-token accuracy on held-out documents. Phase 2 only: it has no zero-shot evaluation (``predict``,
    ``gold``, ``score`` and ``write`` refuse)."""

    name = "masked_lm"
    metrics = ("accuracy",)
    pretrained_head = True

    def __init__(self, languages: str = OPTIONS["mlm_languages"], max_documents: int = OPTIONS["mlm_max_documents"],
                 dev_documents: int = OPTIONS["mlm_dev_documents"], alpha: float = OPTIONS["mlm_alpha"]):
        for name, value in (("mlm_max_documents", max_documents), ("mlm_dev_documents", dev_documents)):
            if int(value) != value or value < 1:
                raise UsageError(f"--{name} must be a whole number >= 1, got {value!r}")
        if not 0 < alpha <= 1:
            raise UsageError(f"--mlm_alpha must be in (0, 1] (1: proportional to the data, XLM-R: 0.3), got {alpha!r}")
        self.language_spec, self.max_documents = languages, int(max_documents)
        self.dev_documents, self.alpha = int(dev_documents), float(alpha)
        self.stats: dict = {}  # what load / featurize found (recorded with the run's settings)

    @classmethod
    def from_args(cls, data_args=None) -> "MaskedLM":
        values = {k: getattr(data_args, k, None) if data_args is not None else None for k in OPTIONS}
        values = {k: v if v is not None else OPTIONS[k] for k, v in values.items()}
        return cls(values["mlm_languages"], values["mlm_max_documents"], values["mlm_dev_documents"],
                   values["mlm_alpha"])

    @property
    def options(self) -> dict:
        return {"mlm_languages": self.language_spec, "mlm_max_documents": self.max_documents,
                "mlm_dev_documents": self.dev_documents, "mlm_alpha": self.alpha}

    def languages(self, task) -> list[str]:
        """The corpus languages (``--mlm_languages``: xtreme, xtreme-r, all or a comma list of the task's)."""
        spec = (self.language_spec or "").strip()
        if spec in ("", "xtreme"):
            return list(task.languages)
        if spec == "xtreme-r":
            return list(task.language_set("xtreme-r"))
        if spec == "all":
            return list(task.all_languages)
        langs = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
        bad = [l for l in langs if l not in task.all_languages]
        if bad or not langs:
            raise UsageError(f"--mlm_languages: unknown language(s) {', '.join(bad) or '(none given)'}; valid choices: "
                             f"xtreme, xtreme-r, all, or a comma list of {', '.join(task.all_languages)}")
        return langs

    def check_data(self, task, data) -> None:
        """Every corpus language is there (config and files), before any model loads."""
        for lang in self.languages(task):
            try:
                check_source(task.train, data, task.code(lang))
                check_files(task.train, data, task.code(lang))
            except UsageError as e:
                raise UsageError(f"MLM corpus, language {lang!r} (--mlm_languages {self.language_spec}): {e}") from None

    # ------------------------------------------------------------------------------------------ corpus
    def load(self, task, source, data, languages=None, max_samples=None):
        """Documents ``{text, lang}`` of every corpus language: the held-out ones when ``source`` is the task's
        dev source, else the training ones (see the module docstring)."""
        from datasets import Features, Value, concatenate_datasets

        held_out = source is task.dev
        cap = self.max_documents if max_samples is None else min(self.max_documents, int(max_samples))
        features = Features({"text": Value("string"), "lang": Value("string")})
        parts = []
        for lang in languages or self.languages(task):
            code = task.code(lang)
            ds = load_source(source, data, code)
            check_columns(ds, source, code)
            n = len(ds)
            n_dev = min(self.dev_documents, max(1, n // 4)) if n >= 2 else 0
            order = np.random.default_rng([CORPUS_SEED, zlib.crc32(lang.encode())]).permutation(n)
            rows = order[:n_dev] if held_out else order[n_dev:n_dev + cap]
            self.stats.setdefault("documents", {})[lang] = {"available": n, "dev": int(n_dev),
                                                            "train": int(min(cap, max(0, n - n_dev)))}
            text = source.columns["text"]
            part = ds.select(rows).map(lambda b, lang=lang: {"text": b[text], "lang": [lang] * len(b[text])},
                                       batched=True, remove_columns=ds.column_names, features=features)
            parts.append(part)
        if not parts:
            raise UsageError("the MLM corpus has no language to read (--mlm_languages)")
        return concatenate_datasets(parts) if len(parts) > 1 else parts[0]

    def featurize(self, examples, tokenizer, max_length: int, task=None, *, train: bool = False):
        if max_length < 3:
            raise UsageError(f"--max_seq_length {max_length} leaves no room for an MLM segment (<s> ... </s>)")
        body, bos, eos = max_length - 2, tokenizer.cls_token_id, tokenizer.sep_token_id

        def segments(batch):
            out = {"input_ids": [], "lang": [], "length": []}
            ids = tokenizer(batch["text"], add_special_tokens=False, verbose=False)["input_ids"]
            for doc, lang in zip(ids, batch["lang"]):
                for i in range(0, len(doc), body):
                    seg = [bos, *doc[i:i + body], eos]
                    out["input_ids"].append(seg)
                    out["lang"].append(lang)
                    out["length"].append(len(seg))
            return out

        ds = examples.map(segments, batched=True, remove_columns=examples.column_names)
        langs = np.asarray(ds.with_format("arrow")["lang"].to_pylist() if len(ds) else [], dtype=object)
        counts = {l: int((langs == l).sum()) for l in dict.fromkeys(examples.unique("lang"))}
        if not train:
            self.stats["dev_segments"] = counts
            return ds.map(self._fixed_masks(tokenizer), with_indices=True)
        rates = language_rates(counts, self.alpha)
        shares = largest_remainder(rates, int(sum(counts.values())))
        rng = np.random.default_rng([CORPUS_SEED, 1])
        picked = []
        for lang, share in shares.items():
            idx = np.flatnonzero(langs == lang)
            whole, rest = divmod(share, len(idx))
            picked += [idx] * whole + [rng.permutation(idx)[:rest]]
        order = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
        order = order[rng.permutation(len(order))]
        self.stats["train_segments"] = {l: {"segments": counts[l], "rate": rates.get(l, 0.0),
                                            "rows_after_sampling": shares.get(l, 0)} for l in counts}
        logger.info("MLM corpus: %d training segments over %d languages (alpha %s): %s", len(order), len(shares),
                    self.alpha, ", ".join(f"{l} {counts[l]}->{shares.get(l, 0)}" for l in counts))
        return ds.select(order)

    @staticmethod
    def _fixed_masks(tokenizer):
        collate = MaskingCollator(tokenizer)

        def mask(row, idx):
            g = torch.Generator().manual_seed(DEV_MASK_SEED * 1_000_003 + int(idx))
            ids = torch.tensor([row["input_ids"]], dtype=torch.long)
            inputs, labels = mask_tokens(ids, torch.isin(ids, collate.special), mask_id=collate.mask_id,
                                         replacement_ids=collate.replacement_ids, generator=g)
            return {"input_ids": inputs[0].tolist(), "labels": labels[0].tolist()}

        return mask

    # ------------------------------------------------------------------------------------------ model, metrics
    def model_class(self):
        return MaskedLMOnEncoder

    def collator(self, tokenizer):
        return MaskingCollator(tokenizer)

    def dev_metrics(self, task, examples, features):
        def compute(eval_pred):
            return {"accuracy": masked_token_accuracy(np.asarray(eval_pred.predictions),
                                                      np.asarray(eval_pred.label_ids))}

        return compute

    def settings(self, task) -> dict:
        return {"corpus": f"{task.train.hub_id} {task.train.config}", "languages": self.languages(task),
                "mask_probability": MASK_PROBABILITY, "mask_token": MASK_TOKEN, "random_token": RANDOM_TOKEN,
                "unchanged": round(1 - MASK_TOKEN - RANDOM_TOKEN, 10), "alpha": self.alpha,
                "max_documents_per_language": self.max_documents, "dev_documents_per_language": self.dev_documents,
                "corpus_seed": CORPUS_SEED, "segments": "per document, max_seq_length - 2 tokens + <s> </s>",
                **self.stats}

    def describe_source(self, source) -> dict:
        return {"config": source.config}  # one config per language: "20231101.{code}"

    # ------------------------------------------------------------------------------------------ no zero-shot use
    def _phase2_only(self, *_, **__):
        raise UsageError("mlm is a phase-2 objective (run_intermediate.py --tasks mnli,mlm); it has no zero-shot "
                         "evaluation")

    predict = gold = score = write = _phase2_only
