"""A small controlled synthetic multilingual world for the X-STILTs question on a CPU.

``world``: grammar, meanings, languages (each difference from English a setting).
``build``: ``python -m xstilts.synthetic.build --out DIR`` writes Hub-layout data + corpus.txt + world.json.
``tasks``: registers ``synth_nli`` (intermediate), ``synth_pair`` (target), ``synth_tatoeba`` (retrieval).
See docs/synthetic.md.

"""
# Status (issue #10): tasks registered and tested; not yet the default of `make demo` (see docs/synthetic.md).
