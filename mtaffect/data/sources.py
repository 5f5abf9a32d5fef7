"""Where a corpus comes from: one type, one grammar and one ``load()`` for every front door.

``mtaffect train``, ``evaluate``, ``data describe``, the study and the Python API all name
their corpora the same way, as a ``CorpusSource``:

* on the command line and as a value in a config file, ``[NAME=]LOCATION`` where
  ``LOCATION`` is a folder written by ``save_to_disk`` / ``mtaffect data convert``, a corpus
  file or folder as published (read by the registered loader ``NAME``), a synthetic corpus
  name (``synthetic_mustard``) or ``hub:OWNER/REPO[:CONFIG]`` (a corpus pushed with
  ``mtaffect.hub.push_corpus``). Without ``NAME=`` a folder is named after itself;
* in a config file, a mapping with the fields below (``path``, ``synthetic``, ``hub``,
  ``loader``, ``format``, ``options``, ``primary_task``, ``folds``).

A corpus evaluated by cross-validation (MUStARD's 5 folds) is one source with ``folds``: an
integer ``K`` (the loader's ``fold`` option takes 0 … K-1) or a list, one entry per fold, of
loader-option overrides (mappings) or ``save_to_disk`` folders (strings). The study runs every
fold inside one study (``mtaffect.study``); ``CorpusSource.fold_sources`` gives one plain
source per fold.

Examples:
    >>> CorpusSource.parse("synthetic_mustard")
    CorpusSource(name='synthetic_mustard', path=None, format=None, options={}, primary_task=None, synthetic='synthetic_mustard', hub=None, loader=None, folds=None)
    >>> CorpusSource.parse("mosei=hub:someone/affect-corpora:mosei").hub
    'someone/affect-corpora:mosei'
    >>> CorpusSource.parse({"path": "MELD.Raw", "options": {"extract_text": False}}, name="meld").path
    'MELD.Raw'
    >>> CorpusSource.parse("synthetic_iemocap").load({"size_scale": 0.05})["train"].num_rows
    20
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_from_disk

from mtaffect.data.corpora.registry import detect_format, get_format, is_saved_corpus, load_corpus
from mtaffect.data.corpora.synthetic import SPECS, make_synthetic_corpus
from mtaffect.hub import load_corpus_from_hub

logger = logging.getLogger(__name__)

#: What marks a Hub location in ``[NAME=]LOCATION``.
HUB_PREFIX = "hub:"


@dataclass
class CorpusSource:
    """A corpus to load, and what it is studied for.

    Args:
        name: the corpus' name in metrics and reports; also the registered loader's name
            unless ``loader`` says otherwise.
        path: a ``save_to_disk`` folder (opened as it is), or the corpus as published
            (read by the registered loader).
        format: the loader's format (detected when ``None``).
        options: the loader's options (fold, protocol, aligned...), or the synthetic corpus'.
        primary_task: the task this corpus is studied for; its other gold tasks are
            *auxiliary* (the study replaces them by weak labels in ``multi-task-weak``).
        synthetic: the synthetic corpus to generate (``synthetic_mosei``...).
        hub: a Hub dataset ``OWNER/REPO[:CONFIG]`` (the config defaults to ``name``).
        loader: the registered loader reading ``path``, when ``name`` is not its name.
        folds: the corpus' cross-validation folds (``None``: one train/validation/test
            split): ``K`` for the loader's ``fold`` option 0 … K-1, or one entry per fold,
            an option mapping (``{"fold": 3}``) or a ``save_to_disk`` folder.
    """

    name: str
    path: str | None = None
    format: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    primary_task: str | None = None
    synthetic: str | None = None
    hub: str | None = None
    loader: str | None = None
    folds: int | list[Any] | None = None

    @classmethod
    def parse(cls, value: str | Mapping[str, Any], name: str | None = None, where: str = "corpora") -> CorpusSource:
        """A source from ``[NAME=]LOCATION`` or a mapping of its fields (see the module docstring)."""
        if isinstance(value, str):
            given, sep, location = value.partition("=")
            if not sep or not given or "/" in given:
                given, location = None, value
            name = name or given
            if location.startswith(HUB_PREFIX):
                hub = location[len(HUB_PREFIX):]
                repo, _, config = hub.partition(":")
                if repo.count("/") != 1:
                    raise ValueError(f"{where}: {value!r}: expected hub:OWNER/REPO[:CONFIG].")
                return cls(name=name or config or repo.split("/")[1], hub=hub)
            if Path(location).expanduser().exists():
                return cls(name=name or Path(location).name, path=location)
            if location in SPECS:
                return cls(name=name or location, synthetic=location)
            raise FileNotFoundError(
                f"{where}: {value!r} is not an existing folder or file, a synthetic corpus ({', '.join(sorted(SPECS))}) "
                "or hub:OWNER/REPO[:CONFIG]."
            )
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: a corpus is a string [NAME=]LOCATION or a mapping, got {value!r}.")
        entry = dict(value)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"{where}: corpus {entry.get('name', name)!r} has unknown field(s) {unknown}; fields are {sorted(known)}.")
        entry.setdefault("name", name)
        if not entry["name"]:
            raise ValueError(f"{where}: each corpus needs at least a 'name', got {value!r}.")
        if entry.get("synthetic") is True:
            entry["synthetic"] = entry["name"]
        given = [key for key in ("path", "synthetic", "hub") if entry.get(key)]
        if len(given) > 1:
            raise ValueError(f"{where}: corpus {entry['name']!r} gives {given}; a corpus comes from one of them.")
        if entry.get("synthetic") and entry["synthetic"] not in SPECS:
            raise ValueError(
                f"{where}: corpus {entry['name']!r}: unknown synthetic corpus {entry['synthetic']!r}; "
                f"choose from {sorted(SPECS)}."
            )
        entry["options"] = dict(entry.get("options") or {})
        folds = entry.get("folds")
        if folds is not None:
            if isinstance(folds, bool) or not isinstance(folds, (int, list)):
                raise ValueError(f"{where}: corpus {entry['name']!r}: folds should be a number of folds (5) or a list "
                                 f"(one loader-option mapping or saved folder per fold), got {folds!r}.")
            if (folds if isinstance(folds, int) else len(folds)) < 2:
                raise ValueError(f"{where}: corpus {entry['name']!r}: folds needs at least 2 folds, got {folds!r}.")
            for k, fold in enumerate(folds if isinstance(folds, list) else []):
                if not isinstance(fold, (str, Mapping)):
                    raise ValueError(f"{where}: corpus {entry['name']!r}: folds[{k}] should be a mapping of loader options "
                                     f"or a saved folder, got {fold!r}.")
                if isinstance(fold, str) and not Path(fold).expanduser().exists():
                    raise FileNotFoundError(f"{where}: corpus {entry['name']!r}: folds[{k}] {fold!r} does not exist.")
        return cls(**entry)

    @property
    def num_folds(self) -> int:
        """How many folds the corpus is evaluated on (1 without ``folds``)."""
        if self.folds is None:
            return 1
        return self.folds if isinstance(self.folds, int) else len(self.folds)

    def fold_sources(self) -> list[CorpusSource]:
        """One plain source (no ``folds``) per fold, in fold order; ``[self]`` without folds."""
        if self.folds is None:
            return [self]
        sources = []
        for k in range(self.num_folds):
            fold = k if isinstance(self.folds, int) else self.folds[k]
            if isinstance(fold, str):
                sources.append(replace(self, path=fold, synthetic=None, hub=None, folds=None))
            else:
                overrides = {"fold": fold} if isinstance(fold, int) else dict(fold)
                sources.append(replace(self, options={**self.options, **overrides}, folds=None))
        return sources

    def load(self, synthetic_defaults: Mapping[str, Any] | None = None, raw_text: bool = False) -> DatasetDict:
        """The corpus as a unified ``DatasetDict``.

        Args:
            synthetic_defaults: options of every synthetic corpus (``seed``, ``size_scale``),
                under the source's own ``options``.
            raw_text: the model reads raw transcripts with its own text encoder. A published
                text corpus given neither ``features`` nor ``extract_text`` then loads text-only
                (``extract_text=False``) instead of extracting features the model would ignore.
        """
        if self.hub:
            repo, _, config = self.hub.partition(":")
            return load_corpus_from_hub(repo, config or self.name, **self.options)
        if self.synthetic:
            return make_synthetic_corpus(self.synthetic, **{**dict(synthetic_defaults or {}), **self.options})
        if self.path and is_saved_corpus(self.path):
            corpus = load_from_disk(str(Path(self.path).expanduser()))
            if isinstance(corpus, Dataset):
                raise ValueError(f"corpus {self.name!r}: {self.path} holds a single Dataset; save the corpus' DatasetDict.")
            return corpus
        options = dict(self.options)
        if raw_text and not {"features", "extract_text"} & set(options) and self._takes_option("extract_text"):
            options["extract_text"] = False
        return load_corpus(self.loader or self.name, self.path, format=self.format, **options)

    def with_context(self, past: int, future: int = 0) -> CorpusSource:
        """This source asking its loader for ``past`` / ``future`` turns of conversational context.

        Only a source read from published files by a loader with a ``context`` option (MELD,
        EmoryNLP, MUStARD, tables) whose own options do not set one changes; any other is
        returned as it is (a converted folder keeps the context columns it was saved with). A
        model reads up to its own ``context`` turns of what a corpus holds, so loading the most
        any model reads serves them all.

        Examples:
            >>> CorpusSource.parse("synthetic_mustard").with_context(2).options
            {}
        """
        if (not past and not future) or self.path is None or self.synthetic or self.hub or "context" in self.options:
            return self
        entry = self._format_entry()
        if entry is None or "context" not in entry.option_names():
            return self
        # MUStARD publishes preceding turns only.
        wanted = {"past": past, "future": 0 if entry.corpus == "mustard" else future}
        return replace(self, options={**self.options, "context": wanted})

    def _format_entry(self) -> Any:
        """The registered loader entry reading ``path`` (``None`` where none matches: ``load_corpus`` says why)."""
        try:
            name = self.loader or self.name
            return get_format(name, self.format or detect_format(name, self.path))
        except (ValueError, OSError):
            return None

    def _takes_option(self, option: str) -> bool:
        """Whether the registered loader reading ``path`` takes ``option``."""
        entry = self._format_entry()
        return entry is not None and option in entry.option_names()


def parse_sources(values: Iterable[Any] | Mapping[str, Any], where: str = "corpora") -> list[CorpusSource]:
    """Sources from ``--corpora`` values, a config's name -> location mapping or a list of entries.

    Names must be distinct (``NAME=LOCATION`` tells two corpora apart).
    """
    if isinstance(values, Mapping):
        sources = [CorpusSource.parse(value, name=name, where=f"{where}.{name}") for name, value in values.items()]
    else:
        sources = [value if isinstance(value, CorpusSource) else CorpusSource.parse(value, where=where) for value in values]
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise ValueError(f"{where} names {source.name!r} twice; use NAME=LOCATION to name them apart.")
        seen.add(source.name)
    check_distinct_sources(sources, where)
    return sources


def source_locations(source: CorpusSource) -> list[str]:
    """What a source reads its rows from, one entry per place (a path resolved, a Hub config, a synthetic corpus).

    Two sources sharing an entry share rows: trained together, a study would fit the same
    utterances twice and could meet its test rows in training.

    Examples:
        >>> source_locations(CorpusSource.parse("mine=synthetic_mustard"))
        ['synthetic corpus synthetic_mustard']
    """
    places = []
    if source.path:
        places.append(str(Path(source.path).expanduser().resolve()))
    if source.hub:
        repo, _, config = source.hub.partition(":")
        places.append(f"hub:{repo}:{config or source.name}")
    if source.synthetic:
        options = ", ".join(f"{key}={value!r}" for key, value in sorted(source.options.items()))
        places.append(f"synthetic corpus {source.synthetic}" + (f" ({options})" if options else ""))
    for fold in source.folds if isinstance(source.folds, list) else []:
        if isinstance(fold, str):
            places.append(str(Path(fold).expanduser().resolve()))
    return places


def check_distinct_sources(sources: Iterable[CorpusSource], where: str = "corpora") -> None:
    """Refuse two sources reading the same rows (the same path, Hub config or synthetic corpus).

    Names tell sources apart, not rows: ``a=data/meld b=data/meld`` (or the same folder under two
    names in a study config) would train on every utterance twice, test rows included.

    Raises:
        ValueError: naming both corpora, the shared location and the fix.
    """
    owner: dict[str, str] = {}
    for source in sources:
        for place in dict.fromkeys(source_locations(source)):
            if place in owner and owner[place] != source.name:
                raise ValueError(
                    f"{where}: {owner[place]!r} and {source.name!r} both read {place}: one corpus may appear once "
                    "(its rows would be trained on twice, its test rows among them); remove one of the two."
                )
            owner.setdefault(place, source.name)


def load_sources(
    sources: Iterable[CorpusSource], synthetic_defaults: Mapping[str, Any] | None = None, raw_text: bool = False
) -> dict[str, DatasetDict]:
    """Name -> ``DatasetDict`` of every source, in order (``raw_text``: see ``CorpusSource.load``)."""
    return {source.name: source.load(synthetic_defaults, raw_text=raw_text) for source in sources}
