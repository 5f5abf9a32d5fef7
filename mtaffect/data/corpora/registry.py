"""The corpus registry: which corpus can be read from which published format, and how.

A format module registers one builder per (corpus, format) pair:

    @register_corpus("mosei", "mmsa", detect=looks_like_mmsa, options={"aligned": "..."})
    def load_mosei_mmsa(path: Path, aligned: bool | None = None) -> CorpusPlan: ...

The builder's keyword arguments are the user-facing options (their defaults are the
corpus's usual ones); it returns a ``CorpusPlan`` (or a
ready ``DatasetDict``, as the synthetic corpora do). ``load_corpus`` picks the format
(detecting it from the files when not given), converts once to Arrow in the datasets cache
and returns the memory-mapped corpus; later calls with the same files and options reopen
the cached conversion without parsing the source again.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from mtaffect.data.corpora.base import LOADER_VERSION, CorpusPlan, open_corpus, write_corpus
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.schema import get_corpus_info, set_corpus_info

logger = logging.getLogger(__name__)

Builder = Callable[..., "CorpusPlan | DatasetDict"]


@dataclass(frozen=True)
class CorpusOption:
    """One option of a (corpus, format) loader."""

    name: str
    default: Any
    help: str = ""


@dataclass(frozen=True)
class CorpusFormat:
    """A registered (corpus, format) loader.

    Attributes:
        corpus: corpus name, also the ``source`` column of what it loads (``mosei``).
        format: format name (``mmsa``, ``mult``, ``cmu_sdk``, ``mustard``, ``meld``, ``synthetic``).
        builder: ``builder(path, **options) -> CorpusPlan | DatasetDict``.
        detect: ``detect(path) -> bool``, whether ``path`` looks like this format (by names only: cheap).
        description: one line for ``list_corpora`` / ``mtaffect data list``.
        options: the builder's options with defaults and help.
        needs_path: False for generated corpora.
    """

    corpus: str
    format: str
    builder: Builder
    detect: Callable[[Path], bool] | None = None
    description: str = ""
    options: tuple[CorpusOption, ...] = field(default_factory=tuple)
    needs_path: bool = True

    def option_names(self) -> list[str]:
        return [option.name for option in self.options]


_REGISTRY: dict[tuple[str, str], CorpusFormat] = {}


def register_corpus(
    corpus: str,
    format: str,
    *,
    detect: Callable[[Path], bool] | None = None,
    description: str = "",
    options: dict[str, str] | None = None,
    needs_path: bool = True,
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` as the loader of ``corpus`` in ``format``.

    The options are the builder's keyword parameters after ``path`` (names starting with
    ``_`` are private); ``options`` maps their names to help strings.
    """

    def decorator(builder: Builder) -> Builder:
        key = (corpus, format)
        if key in _REGISTRY and _REGISTRY[key].builder is not builder:
            raise ValueError(f"Corpus {corpus!r} in format {format!r} is already registered.")
        help_texts = options or {}
        parameters = list(inspect.signature(builder).parameters.values())[1:]
        found = tuple(
            CorpusOption(p.name, None if p.default is inspect.Parameter.empty else p.default, help_texts.get(p.name, ""))
            for p in parameters
            if not p.name.startswith("_") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )
        unknown = set(help_texts) - {o.name for o in found}
        if unknown:
            raise ValueError(
                f"Help given for options {sorted(unknown)} that the {corpus}/{format} loader does not take."
            )
        _REGISTRY[key] = CorpusFormat(corpus, format, builder, detect, description, found, needs_path)
        return builder

    return decorator


def list_corpora() -> list[CorpusFormat]:
    """Every registered (corpus, format) loader, sorted by corpus then format.

    Examples:
        >>> sorted({entry.corpus for entry in list_corpora()})[:3]
        ['emorynlp', 'iemocap', 'meld']
    """
    _ensure_formats_loaded()
    return [_REGISTRY[key] for key in sorted(_REGISTRY)]


def corpus_names() -> list[str]:
    """Names of the registered corpora."""
    _ensure_formats_loaded()
    return sorted({corpus for corpus, _ in _REGISTRY})


def get_format(corpus: str, format: str) -> CorpusFormat:
    """The loader of ``corpus`` in ``format``; the error lists what is registered."""
    _ensure_formats_loaded()
    key = (corpus.lower(), format.lower())
    if key not in _REGISTRY:
        formats = sorted(f for c, f in _REGISTRY if c == key[0])
        if not formats:
            raise ValueError(f"Unknown corpus {corpus!r}: registered corpora are {', '.join(corpus_names())}.")
        raise ValueError(f"Corpus {corpus!r} has no {format!r} loader; its formats are {', '.join(formats)}.")
    return _REGISTRY[key]


def detect_format(corpus: str, path: str | Path) -> str:
    """The format of ``corpus`` that ``path`` holds, judged from file names."""
    _ensure_formats_loaded()
    corpus = corpus.lower()
    entries = [entry for (c, _), entry in sorted(_REGISTRY.items()) if c == corpus]
    if not entries:
        raise ValueError(f"Unknown corpus {corpus!r}: registered corpora are {', '.join(corpus_names())}.")
    if len(entries) == 1:
        return entries[0].format
    path = Path(path)
    if not path.exists():
        raise CorpusFormatError(path, "no such file or folder.")
    matches = [entry.format for entry in entries if entry.detect is not None and entry.detect(path)]
    if len(matches) == 1:
        return matches[0]
    formats = ", ".join(entry.format for entry in entries)
    if not matches:
        raise CorpusFormatError(
            path, f"cannot tell which {corpus} format this is (known: {formats}); pass format=... explicitly."
        )
    raise CorpusFormatError(path, f"looks like several {corpus} formats ({', '.join(matches)}); pass format=... explicitly.")


def load_corpus(
    name: str,
    path: str | Path | None = None,
    format: str | None = None,
    *,
    cache_dir: str | Path | None = None,
    corpus_name: str | None = None,
    limit: int | None = None,
    **options: Any,
) -> DatasetDict:
    """Read a corpus from its published files into the unified schema.

    Args:
        name: the corpus (``mosi``, ``mosei``, ``sims``, ``iemocap``, ``mustard``, ``meld``
            or a synthetic one such as ``synthetic_mosei``); see ``list_corpora``.
        path: the file or folder as published (ignored by the synthetic corpora).
        format: ``mmsa``, ``mult``, ``cmu_sdk``, ``mustard``, ``meld`` or ``synthetic``;
            detected from the file names when omitted. A folder written by
            ``mtaffect data convert`` (``save_to_disk``) is opened as it is, memory-mapped.
        cache_dir: where the Arrow conversion is kept (default: the datasets cache,
            ``$HF_DATASETS_CACHE/mtaffect``). The same files and options reopen it, memory-mapped.
        corpus_name: value of the ``source`` column (default ``name``), e.g. to load one
            corpus from two formats side by side.
        limit: keep only the first ``limit`` utterances of each split (a dry run: loaders
            that extract features extract only those).
        **options: the format's options (``list_corpora()`` lists them with their defaults).

    Returns:
        A ``DatasetDict`` (``train``/``validation``/``test``) in the unified schema, its
        metadata in ``get_corpus_info``.

    Raises:
        CorpusFormatError: a file is missing or malformed (the message names it).
        ValueError: unknown corpus, format or option.

    Examples:
        >>> corpus = load_corpus("synthetic_iemocap", size_scale=0.05)
        >>> corpus["train"].num_rows
        20
    """
    name = name.lower()
    if path is not None and format in (None, "unified") and is_saved_corpus(path):
        # Already converted (mtaffect data convert / save_to_disk): open it memory-mapped.
        return _open_converted(name, Path(path), corpus_name)
    if format is None:
        if path is None and any(c == name and not e.needs_path for (c, _), e in _all()):
            format = next(f for (c, f), e in _all() if c == name and not e.needs_path)
        else:
            if path is None:
                raise ValueError(f"Corpus {name!r} is read from files: pass path=.")
            format = detect_format(name, path)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of utterances per split, got {limit!r}.")
    entry = get_format(name, format)
    unknown = set(options) - set(entry.option_names())
    if unknown:
        raise ValueError(
            f"Unknown option(s) {sorted(unknown)} for {name} ({entry.format}); "
            f"options are {', '.join(entry.option_names()) or 'none'}."
        )
    if entry.needs_path:
        if path is None:
            raise ValueError(f"Corpus {name!r} ({entry.format}) is read from files: pass path=.")
        path = Path(path).expanduser()
        if not path.exists():
            raise CorpusFormatError(path, "no such file or folder.")
    if not entry.needs_path:
        result = entry.builder(path, **options)
        if limit is not None:
            result = DatasetDict({k: v.select(range(min(limit, v.num_rows))) for k, v in result.items()})
        return _rename(result, corpus_name) if corpus_name else result
    directory = _cache_directory(entry, path, {**options, "limit": limit} if limit else options, corpus_name, cache_dir)
    cached = open_corpus(directory)
    if cached is not None:
        logger.info("Reusing the Arrow conversion of %s in %s.", path, directory)
        return cached
    if limit is not None and "limit" in entry.option_names():
        options = {**options, "limit": limit}  # the loader stops early (before extracting the rest)
    result = entry.builder(path, **options)
    if isinstance(result, DatasetDict):
        if limit is not None:
            result = DatasetDict({k: v.select(range(min(limit, v.num_rows))) for k, v in result.items()})
        return _rename(result, corpus_name) if corpus_name else result
    if corpus_name:
        result.info.corpus = corpus_name
    if limit is not None:
        result.info.notes["limit_per_split"] = limit
    logger.info("Converting %s (%s, %s) to Arrow in %s.", path, name, entry.format, directory)
    return write_corpus(result, directory, limit=limit)


def is_saved_corpus(path: str | Path) -> bool:
    """Whether ``path`` is a corpus folder written by ``save_to_disk`` (``mtaffect data convert``)."""
    return (Path(path).expanduser() / "dataset_dict.json").is_file()


def _open_converted(name: str, path: Path, corpus_name: str | None) -> DatasetDict:
    from datasets import load_from_disk

    corpus = load_from_disk(str(path))
    if not isinstance(corpus, DatasetDict):
        raise CorpusFormatError(path, "holds a single Dataset, not a converted corpus (DatasetDict).")
    stored = get_corpus_info(corpus).corpus
    if stored not in (name, corpus_name, "unknown"):
        raise CorpusFormatError(path, f"holds the converted corpus {stored!r}, not {name!r}.")
    return _rename(corpus, corpus_name) if corpus_name and corpus_name != stored else corpus


def _all() -> list[tuple[tuple[str, str], CorpusFormat]]:
    _ensure_formats_loaded()
    return sorted(_REGISTRY.items())


def _rename(corpus: DatasetDict, corpus_name: str) -> DatasetDict:
    info = get_corpus_info(corpus)
    info.corpus = corpus_name
    renamed = DatasetDict(
        {split: ds.map(lambda b: {"source": [corpus_name] * len(b["id"])}, batched=True) for split, ds in corpus.items()}
    )
    set_corpus_info(renamed, info)
    return renamed


def _file_stamps(path: Path) -> list[list[Any]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stamps = []
    for file in files:
        stat = file.stat()
        stamps.append([str(file.resolve()), stat.st_size, stat.st_mtime_ns])
    return stamps


def _option_files(value: Any) -> list[list[Any]]:
    """Stamps of files named by option values (user-supplied feature files, fold lists)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _option_files(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _option_files(v)]
    # An empty value is no file (Path("") is the working directory, which would be walked whole).
    if isinstance(value, (str, Path)) and str(value).strip() and len(str(value)) < 4096:
        candidate = Path(value).expanduser()
        try:
            if candidate.exists():
                return _file_stamps(candidate)
        except OSError:
            return []
    return []


def _cache_directory(
    entry: CorpusFormat, path: Path, options: dict[str, Any], corpus_name: str | None, cache_dir: str | Path | None
) -> Path:
    if cache_dir is None:
        from datasets import config

        cache_dir = Path(config.HF_DATASETS_CACHE) / "mtaffect"
    key = {
        "loader_version": LOADER_VERSION,
        "corpus": entry.corpus,
        "format": entry.format,
        "corpus_name": corpus_name,
        "files": _file_stamps(path),
        "options": options,
        "option_files": _option_files(options),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return Path(cache_dir).expanduser() / f"{corpus_name or entry.corpus}-{entry.format}-{digest}"


#: The format modules; each registers its loaders with one ``register_corpus`` call on import.
#: Adding a format is one module, named here.
FORMAT_MODULES: tuple[str, ...] = (
    "mtaffect.data.corpora.synthetic_registration",
    "mtaffect.data.corpora.mmsa",
    "mtaffect.data.corpora.mult",
    "mtaffect.data.corpora.cmu_sdk",
    "mtaffect.data.corpora.mustard",
    "mtaffect.data.corpora.meld",
    "mtaffect.data.corpora.emorynlp",
    "mtaffect.data.corpora.table",
)
_LOADED = False


def _ensure_formats_loaded() -> None:
    """Import the format modules (they register themselves), by name: they import this module."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in FORMAT_MODULES:
            importlib.import_module(module)
