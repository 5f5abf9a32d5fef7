"""What the commands read: corpora and their splits, with one clear error each.

``train`` and ``evaluate`` take the same corpora (``mtaffect.data.sources``:
``[NAME=]LOCATION``, or a config file's mapping); ``train``, ``evaluate`` and ``predict`` load
``--model`` with ``mtaffect.checkpoints.load_model``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtaffect.data.schema import find_split
from mtaffect.data.sources import load_sources, parse_sources


def load_corpora(settings: Mapping[str, Any], raw_text: bool = False) -> dict[str, Any]:
    """Name -> DatasetDict for every corpus of a config (``corpora``, ``synthetic`` options).

    ``raw_text``: the model reads transcripts with its own text encoder, so published text
    corpora load without features (``mtaffect.data.sources.CorpusSource.load``).
    """
    return load_sources(parse_sources(settings["corpora"]), settings.get("synthetic"), raw_text=raw_text)


def pick_split(corpus: Any, wanted: str | None, name: str, required: bool) -> Any:
    """``corpus[wanted]`` (``valid``/``dev`` accepted for ``validation``), or ``None``."""
    if wanted is None:
        return None
    split = find_split(corpus, wanted)
    if split is None and required:
        raise ValueError(f"Corpus {name!r} has no {wanted!r} split (it has {sorted(corpus)}).")
    return split
