"""Reading the YAML/JSON files that configure a study or a training run.

One reader for both, so the same file mistakes get the same messages everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def read_mapping_file(path: str | Path, known_keys: Iterable[str] | None = None, what: str = "config") -> dict[str, Any]:
    """The file as a dict: YAML for ``.yaml``/``.yml``, JSON otherwise; empty file = ``{}``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the file) for
    unparsable content, a top level that is not a mapping, or keys outside ``known_keys``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file not found.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            payload = yaml.safe_load(text)
        else:
            payload = json.loads(text) if text.strip() else None
    except Exception as error:  # yaml and json raise different classes
        raise ValueError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'} ({error}).") from error
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: a {what} is a mapping of fields, got {type(payload).__name__}.")
    if known_keys is not None:
        unknown = sorted(set(payload) - set(known_keys))
        if unknown:
            raise ValueError(f"{path}: unknown field(s) {unknown}; known fields: {sorted(known_keys)}.")
    return payload
