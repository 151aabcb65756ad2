"""Task formats: each turns canonical rows into model inputs and predictions into metrics, once.

The interface is :class:`xstilts.formats.base.Format`; one module per format holds its functions and its
``Format`` subclass. A run creates one instance of its task's format with :func:`get_format` (settings from the
parsed arguments, validated then); evaluation and the English training stages built on the interface are in
:mod:`xstilts.training`.
"""

from __future__ import annotations

from .base import Format

FORMATS = ("pair_classification", "token_tagging", "span_qa", "multiple_choice", "dual_encoder", "masked_lm")


def format_class(name: str) -> type[Format]:
    """The Format subclass called ``name``. Its module is imported here, on demand: formats pull in numpy, torch
    and transformers classes, which ``--help`` and bad-input errors of the scripts need not wait for."""
    if name == "pair_classification":
        from .pair_classification import PairClassification as cls  # on demand: see the docstring
    elif name == "token_tagging":
        from .token_tagging import TokenTagging as cls  # on demand: see the docstring
    elif name == "span_qa":
        from .span_qa import SpanQA as cls  # on demand: see the docstring
    elif name == "multiple_choice":
        from .multiple_choice import MultipleChoice as cls  # on demand: see the docstring
    elif name == "dual_encoder":
        from .dual_encoder import DualEncoderFormat as cls  # on demand: see the docstring
    elif name == "masked_lm":
        from .masked_lm import MaskedLM as cls  # on demand: see the docstring
    else:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return cls


def get_format(name: str, data_args=None) -> Format:
    """A new instance of format ``name`` with its settings from ``data_args`` (the run's DataArguments; None: the
    format's defaults). Bad settings are a UsageError."""
    return format_class(name).from_args(data_args)
