"""Task formats: each turns canonical rows into model inputs and predictions into metrics, once."""

from importlib import import_module

FORMATS = ("pair_classification",)


def get_format(name: str):
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return import_module(f"{__name__}.{name}")
