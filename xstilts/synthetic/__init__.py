"""A small controlled synthetic multilingual world for the X-STILTs question on a CPU.

``world``: grammar, meanings, languages (each difference from English a setting).
``build``: ``python -m xstilts.synthetic.build --out DIR`` writes Hub-layout data + corpus.txt + world.json.
``tasks``: registers ``synth_nli`` (intermediate), ``synth_pair`` (target), ``synth_tatoeba`` (retrieval).
See docs/synthetic.md.

WORK IN PROGRESS (issue #10): the generator runs (`python -m xstilts.synthetic.build --out DIR`), but the
tasks are not registered in xstilts/registry.py, the demo does not use them and there are no tests yet.
"""
