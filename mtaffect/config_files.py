"""Reading the YAML/JSON files that configure a study or a training run.

One reader for both, so the same file mistakes get the same messages everywhere.
"""

from __future__ import annotations

import collections.abc
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


# ---- type and range checks of config values -----------------------------------------------


def describe_type(hint: Any) -> str:
    """A short, user-facing name of a type hint (``int | None`` -> ``an integer or null``)."""
    import types
    import typing
    from enum import Enum

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [describe_type(arg) for arg in typing.get_args(hint)]
        return " or ".join(dict.fromkeys(members))
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "one of " + ", ".join(repr(member.value) for member in hint)
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string", dict: "a mapping", list: "a list"}
    base = origin or hint
    if base in names:
        return names[base]
    return getattr(hint, "__name__", str(hint))


def value_matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as read from YAML/JSON) fits the type hint ``hint``.

    Unknown or exotic hints accept anything: the consumer checks those itself.
    """
    import types
    import typing
    from enum import Enum

    if hint is Any or hint is None:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(value_matches(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and issubclass(hint, Enum):
        return isinstance(value, hint) or value in {member.value for member in hint}
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    base = origin or hint
    if base in (list, tuple, typing.Sequence, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(hint)
        return not args or all(value_matches(item, args[0]) for item in value)
    if base in (dict, typing.Mapping, collections.abc.Mapping):
        return isinstance(value, dict)
    return True


def field_types(target: Any) -> dict[str, Any]:
    """Name -> type hint of a dataclass' init fields, or of a callable's keyword parameters."""
    import dataclasses
    import inspect
    import typing

    if dataclasses.is_dataclass(target):
        names = [f.name for f in dataclasses.fields(target) if f.init]
        raw = {f.name: f.type for f in dataclasses.fields(target)}
    else:
        parameters = inspect.signature(target).parameters.values()
        names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]
        raw = {p.name: p.annotation for p in inspect.signature(target).parameters.values()}
    try:
        hints = typing.get_type_hints(target.__init__ if not dataclasses.is_dataclass(target) and isinstance(target, type) else target)
    except Exception:  # a hint that does not resolve: keep the raw annotation (accepted as is)
        hints = {}
    return {name: hints.get(name, raw.get(name, Any)) for name in names}


def check_values(
    values: dict[str, Any], types: dict[str, Any], where: str, prefix: str = "", open_ended: bool = False
) -> dict[str, Any]:
    """Check every ``values[key]`` against ``types[key]`` (from :func:`field_types`); returns them normalised.

    A number written as a string where a number is expected is converted (YAML 1.1 reads
    ``1e-3`` as the string ``"1e-3"``); anything else must already have the right type.

    Raises ``ValueError`` naming ``where`` (the file), the key (``prefix + key``), what was
    found and what is expected, e.g. ``train.yaml: training.num_train_epochs = 'five' (str):
    expected a number ...``. Unknown keys are an error naming the closest known one, unless
    ``open_ended`` (a target taking ``**kwargs``).
    """
    import difflib
    import inspect

    normalised = dict(values)
    for key, value in values.items():
        if key not in types:
            if open_ended:
                continue
            close = difflib.get_close_matches(key, sorted(types), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: unknown key {prefix}{key}{hint}.")
        expected = types[key]
        if isinstance(expected, str) or expected is inspect.Parameter.empty or value_matches(value, expected):
            continue
        number = _number(value)
        if number is not value and value_matches(number, expected):
            normalised[key] = number
            continue
        raise ValueError(
            f"{where}: {prefix}{key} = {value!r} ({type(value).__name__}): expected {describe_type(expected)}; "
            + _fix(key, value, expected)
        )
    return normalised


def _fix(key: str, value: Any, expected: Any) -> str:
    """How to write ``value`` so that it fits ``expected`` (a list for a scalar, a number for a string)."""
    import typing

    wants_list = any(typing.get_origin(option) in (list, tuple) or option in (list, tuple) for option in _options(expected))
    if wants_list and not isinstance(value, (list, tuple)):
        items = value.replace(",", " ").split() if isinstance(value, str) else [value]
        shown = ", ".join(json.dumps(_number(item)) for item in items)
        return f"write a list, e.g. {key}: [{shown}]."
    return f"fix the value of '{key}' in the file."


def _options(hint: Any) -> tuple[Any, ...]:
    import types
    import typing

    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _number(text: Any) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, anything else unchanged."""
    if not isinstance(text, str):
        return text
    for cast in (int, float):
        try:
            return cast(text.strip())
        except ValueError:
            continue
    return text
