"""Multiple-choice tasks (format ``multiple_choice``): three intermediate tasks of Phang et al. 2020 and
XTREME-R's XCOPA.

* ``hellaswag``  intermediate: ``Rowan/hellaswag``, 4 endings, ``label`` a string ``"0".."3"``
* ``cosmosqa``   intermediate: ``allenai/cosmos_qa``, ``answer0..3``, ``label`` int32
* ``csqa``       intermediate: ``tau/commonsense_qa``, 5 choices ``choices.text``, ``answerKey`` a letter A-E
* ``xcopa``      target: English training in two stages as XTREME-R's ``scripts/train_xcopa.sh``: Social IQa
                 (``allenai/social_i_qa``, 3 answers), then COPA (``aps/super_glue`` ``copa``, 2 choices);
                 checkpoint selection on COPA validation; zero-shot on ``cambridgeltl/xcopa`` (11 languages)

Hub status (``../shared/reference/datasets.md`` section 2): ``tau/commonsense_qa`` and ``cambridgeltl/xcopa``
hold parquet on ``main``. ``allenai/cosmos_qa`` and ``allenai/social_i_qa`` still hold a loading script, which
``datasets`` >= 4 refuses; ``Rowan/hellaswag``'s conversion was unconfirmed and ``aps/super_glue``'s unknown.
Those four are read from the Hub's parquet export (``revision="refs/convert/parquet"``, recorded with every
result). The Hub no longer converts script repos, so an export exists only where one was made before; if it is
missing the load fails. Social IQa therefore declares a fallback (``Source.fallback``): ``lighteval/siqa``, a
parquet copy that lm-evaluation-harness PR #3943 (merged 2026-07-19) checked against ``allenai/social_i_qa``
("train 33410 / validation 1954, all six used columns" md5-equal, loaded with datasets 3.6.0) and adopted; its
columns (``context``, ``question``, ``answerA/B/C``, ``label`` "1"-"3") are the kit's. It is read automatically,
with a log line, checked by its row count; the content hash of the primary is not recorded yet (no Hub access
where this was written): record ``xstilts.data.sources.content_hash`` of ``allenai/social_i_qa`` in
``SIQA_FALLBACK_SHA256``. Cosmos QA has no verified copy: its declaration has no fallback (docs/multiple_choice.md).
"""

from __future__ import annotations

from . import languages as L
from .types import PARQUET_EXPORT, Fallback, Source, Task

HELLASWAG_COLUMNS = {"context": "ctx_a", "question": "ctx_b", "choices": "endings", "label": "label"}
COSMOS_COLUMNS = {"context": "context", "question": "question", "choices": "answer0,answer1,answer2,answer3",
                  "label": "label"}
CSQA_COLUMNS = {"question": "question", "choices": "choices.text", "choice_keys": "choices.label",
                "label": "answerKey"}
SIQA_COLUMNS = {"context": "context", "question": "question", "choices": "answerA,answerB,answerC", "label": "label"}
COPA_COLUMNS = {"context": "premise", "question": "question", "choices": "choice1,choice2", "label": "label"}

HELLASWAG = Task(
    name="hellaswag", phase="intermediate", format="multiple_choice",
    description="HellaSwag (English): pick the ending of an ActivityNet/WikiHow context, 4 endings",
    metric="accuracy", labels=("0", "1", "2", "3"), languages=("en",),
    format_options={"template": "continuation"},
    train=Source("Rowan/hellaswag", "default", "train", HELLASWAG_COLUMNS, revision=PARQUET_EXPORT),
    dev=Source("Rowan/hellaswag", "default", "validation", HELLASWAG_COLUMNS, revision=PARQUET_EXPORT),
)

COSMOSQA = Task(
    name="cosmosqa", phase="intermediate", format="multiple_choice",
    description="Cosmos QA (English): commonsense reading comprehension, 4 answers",
    metric="accuracy", labels=("0", "1", "2", "3"), languages=("en",),
    format_options={"template": "prompt"},
    train=Source("allenai/cosmos_qa", "default", "train", COSMOS_COLUMNS, revision=PARQUET_EXPORT),
    dev=Source("allenai/cosmos_qa", "default", "validation", COSMOS_COLUMNS, revision=PARQUET_EXPORT),
)

CSQA = Task(
    name="csqa", phase="intermediate", format="multiple_choice",
    description="CommonsenseQA (English): commonsense questions, 5 choices A-E",
    metric="accuracy", labels=("A", "B", "C", "D", "E"), languages=("en",),
    format_options={"template": "prompt"},
    train=Source("tau/commonsense_qa", "default", "train", CSQA_COLUMNS),
    dev=Source("tau/commonsense_qa", "default", "validation", CSQA_COLUMNS),
)

# Social IQa's fallback copy (module docstring): rows per split from lm-evaluation-harness PR #3943; the content
# hash of allenai/social_i_qa per split is not recorded yet (None: checked by row count only, and the run says so)
SIQA_FALLBACK_ID = "lighteval/siqa"
SIQA_ROWS = {"train": 33410, "validation": 1954}
SIQA_FALLBACK_SHA256 = {"train": None, "validation": None}
SIQA_FALLBACK_EVIDENCE = ("lighteval/siqa == allenai/social_i_qa, train 33410 / validation 1954, md5 over the six "
                          "used columns: EleutherAI/lm-evaluation-harness PR #3943 (merged 2026-07-19)")


def _siqa(split: str) -> Source:
    copy = Source(SIQA_FALLBACK_ID, "default", split, SIQA_COLUMNS)
    return Source("allenai/social_i_qa", "default", split, SIQA_COLUMNS, revision=PARQUET_EXPORT,
                  fallback=Fallback(copy, SIQA_ROWS[split], SIQA_FALLBACK_SHA256[split], SIQA_FALLBACK_EVIDENCE))


# Stage 1 of XCOPA (not listed in TASKS: it only runs inside `run_target.py --task xcopa`).
SIQA_STAGE = Task(
    name="siqa", phase="stage", format="multiple_choice",
    description="Social IQa (English), 3 answers: stage 1 of XTREME-R's XCOPA recipe",
    metric="accuracy", labels=("1", "2", "3"), languages=("en",),
    format_options={"template": "prompt"},
    train=_siqa("train"),
    dev=_siqa("validation"),
)

XCOPA = Task(
    name="xcopa", phase="target", format="multiple_choice", xtreme_name="xcopa",
    description="XCOPA: train on English Social IQa then COPA, zero-shot on 11 languages (XTREME-R)",
    metric="accuracy", labels=("0", "1"), languages=L.XCOPA,
    format_options={"template": "copa"},
    stages=(SIQA_STAGE,),
    train=Source("aps/super_glue", "copa", "train", COPA_COLUMNS, revision=PARQUET_EXPORT),
    dev=Source("aps/super_glue", "copa", "validation", COPA_COLUMNS, revision=PARQUET_EXPORT),
    test=Source("cambridgeltl/xcopa", "{code}", "test", COPA_COLUMNS),
)

TASKS = (HELLASWAG, COSMOSQA, CSQA, XCOPA)
