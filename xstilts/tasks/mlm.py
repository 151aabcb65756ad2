"""The multilingual masked-language-modelling objective that joins intermediate training (``--tasks mnli,mlm``,
grid name ``mnli+mlm``; format ``masked_lm``, xstilts/formats/masked_lm.py; docs/intermediate.md).

Phang et al. 2020 (arXiv 2005.13013) also tried "continuing multilingual MLM during intermediate-task training";
which corpus, languages and mixing ratio they used could not be established (only the abstract was reachable;
nyu-mll/jiant @ daa5a25 has no X-STILTs MLM script or corpus, only the generic ``mlm_simple`` task). The kit's
documented choice instead:

* text: Wikipedia, ``wikimedia/wikipedia`` config ``20231101.<code>`` (one cleaned article per row: id, url,
  title, text; CC BY-SA 3.0 / GFDL), split ``train`` (the only one);
* languages: XTREME's 40 (the union of its tasks' languages), ``--mlm_languages xtreme-r``: XTREME-R's 50, or a
  list. The 20231101 configs were verified to exist for sw, tl, sl and sv only: check the pinned dump's README
  before a large run (a missing config under ``--data_root`` stops the run before any model loads);
* a per-language cap and temperature sampling over languages with alpha 0.3 (XLM-R's, Conneau et al. 2020 section
  3), held-out documents per language for a masked-token accuracy on dev (recorded, never selected on).

``auxiliary``: never trained alone, listed after a task it joins, not part of the selection metric.
"""

from __future__ import annotations

from .benchmarks import BENCHMARK_TASKS
from .types import Source, Task

WIKIPEDIA = "wikimedia/wikipedia"
WIKIPEDIA_DUMP = "20231101"
CORPUS_CONFIG = WIKIPEDIA_DUMP + ".{code}"
CORPUS_COLUMNS = {"text": "text", "title": "title", "id": "id"}


def benchmark_languages(benchmark: str) -> tuple[str, ...]:
    """Every language of the benchmark's tasks (XTREME: 40, XTREME-R: 50), sorted."""
    return tuple(sorted({lang for t in BENCHMARK_TASKS[benchmark] for lang in t.language_set(benchmark)}))


# the held-out documents are read from the same split; two objects, so that the format tells them apart
CORPUS_TRAIN = Source(WIKIPEDIA, CORPUS_CONFIG, "train", CORPUS_COLUMNS)
CORPUS_DEV = Source(WIKIPEDIA, CORPUS_CONFIG, "train", CORPUS_COLUMNS)

MLM = Task(
    name="mlm", phase="intermediate", format="masked_lm", auxiliary=True,
    description="multilingual masked LM on Wikipedia (wikimedia/wikipedia 20231101, XTREME's 40 languages), "
                "the pretrained LM head reused; joins an intermediate task: --tasks mnli,mlm",
    metric="accuracy", languages=benchmark_languages("xtreme"), languages_xtreme_r=benchmark_languages("xtreme-r"),
    train=CORPUS_TRAIN, dev=CORPUS_DEV,
)

TASKS = (MLM,)
