"""What the commands read: checkpoints and unified corpora, with one clear error each.

``train``, ``evaluate`` and ``predict`` take the same ``--model`` (a ``save_pretrained``
folder or a Hub id) and the same corpus specs (a saved corpus folder, a synthetic corpus
name, a registered loader, or ``NAME=PATH`` on the command line).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtaffect.data.schema import find_split


def load_model(name: str) -> Any:
    """``MTAffectForMultiTaskAffect.from_pretrained`` with one clear error for a path or id it cannot load."""
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    try:
        return MTAffectForMultiTaskAffect.from_pretrained(name)
    except Exception as error:  # OSError, ValueError, safetensors' own error type for corrupt files
        if not isinstance(error, (OSError, ValueError, KeyError)) and type(error).__name__ != "SafetensorError":
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"cannot load the model {name!r} ({reason}). Give a folder written by save_pretrained "
            "(config.json + model.safetensors) or a Hub id; offline (HF_HUB_OFFLINE=1), a Hub id "
            "must already be in the local cache."
        ) from error


def corpora_from_flags(values: list[str]) -> dict[str, str]:
    """``--corpora`` values (``NAME=PATH``, a folder, a synthetic name) -> the config's mapping."""
    corpora = {}
    for value in values:
        name, sep, location = value.partition("=")
        if not sep:
            location = value
            name = Path(value).name if Path(value).exists() else value
        if name in corpora:
            raise ValueError(f"--corpora names {name!r} twice; use NAME=PATH to name them apart.")
        corpora[name] = location
    return corpora


def load_corpora(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Name -> DatasetDict for every corpus of the settings."""
    from datasets import DatasetDict, load_from_disk

    from mtaffect.data.corpora.synthetic import SPECS, make_synthetic_corpus

    synthetic = dict(settings.get("synthetic") or {})
    corpora = {}
    for name, spec in settings["corpora"].items():
        if isinstance(spec, str):
            spec = {"synthetic": spec} if spec in SPECS and not Path(spec).exists() else {"path": spec}
        if not isinstance(spec, Mapping):
            raise ValueError(f"corpora.{name} must be a path, a synthetic corpus name or a mapping, got {spec!r}.")
        if "synthetic" in spec:
            kind = spec["synthetic"] if isinstance(spec["synthetic"], str) else name
            if kind not in SPECS:
                raise ValueError(f"corpora.{name}: unknown synthetic corpus {kind!r}; choose from {sorted(SPECS)}.")
            corpus = make_synthetic_corpus(kind, **{**synthetic, **dict(spec.get("options") or {})})
        elif "loader" in spec:
            from mtaffect.data.corpora.registry import load_corpus

            corpus = load_corpus(
                spec["loader"], spec.get("path"), format=spec.get("format"), **dict(spec.get("options") or {})
            )
        elif "path" in spec:
            path = Path(spec["path"])
            if not path.exists():
                raise FileNotFoundError(f"corpora.{name}: {path} does not exist (expected a save_to_disk folder).")
            corpus = load_from_disk(str(path))
            if not isinstance(corpus, DatasetDict):
                raise ValueError(f"corpora.{name}: {path} holds a single Dataset; save the corpus' DatasetDict.")
        else:
            raise ValueError(f"corpora.{name} needs one of 'path', 'synthetic' or 'loader'.")
        corpora[name] = corpus
    return corpora


def pick_split(corpus: Any, wanted: str | None, name: str, required: bool) -> Any:
    """``corpus[wanted]`` (``valid``/``dev`` accepted for ``validation``), or ``None``."""
    if wanted is None:
        return None
    split = find_split(corpus, wanted)
    if split is None and required:
        raise ValueError(f"Corpus {name!r} has no {wanted!r} split (it has {sorted(corpus)}).")
    return split
