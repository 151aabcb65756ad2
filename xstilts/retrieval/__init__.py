"""Sentence retrieval with the encoder's hidden states (run_retrieval.py): embeddings of many layers in one
pass (``embed``), exact / approximate nearest neighbours (``search``), the two tasks' protocols (``tatoeba``,
``bucc``), per-language-group summaries (``summary``) and the per-layer plot (``plots``)."""
