"""Feature files a user supplies for corpora published without features (MUStARD, MELD).

``features`` is either a folder holding ``text.<ext>``, ``audio.<ext>`` and/or
``visual.<ext>``, or a dict ``{modality: file}``; for MELD a modality may also map to
``{"train": file, "dev": file, "test": file}``. Each file maps an utterance id to its
feature sequence, ``[T, D]`` float (a ``[D]`` vector is one frame):

* ``.npz`` — ``np.savez(path, **{id: array})`` (read without pickle);
* ``.pkl`` / ``.p`` / ``.pickle`` — a pickled ``{id: array}`` dict, read with the
  restricted unpickler (MUStARD's own ``audio_features.p`` is one, stored ``[D, T]``: pass
  ``transpose=["audio"]``);
* ``.h5`` / ``.hdf5`` — one dataset per id (MUStARD's ``resnet_pool5.hdf5``), or a group
  per id with a ``features`` dataset.

Ids are the corpus' own (MUStARD's json keys, MELD's ``dia<D>_utt<U>``; in a single MELD
file prefix them with the split: ``train/dia0_utt0``, ``dev/...``, ``test/...``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.safe_pickle import load_pickle
from mtaffect.data.schema import MODALITIES, feature_column

logger = logging.getLogger(__name__)

FEATURE_SUFFIXES: tuple[str, ...] = (".npz", ".pkl", ".p", ".pickle", ".h5", ".hdf5")


class FeatureFile:
    """Read-only ``id -> [T, D]`` access to one feature file."""

    def __init__(self, path: Path, transpose: bool = False) -> None:
        self.path, self.transpose = path, transpose
        self.dim: int | None = None
        suffix = path.suffix.lower()
        if not path.is_file():
            raise CorpusFormatError(path, "no such feature file.")
        self._h5 = None
        if suffix == ".npz":
            try:
                self._data: Mapping[str, Any] = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as error:
                raise CorpusFormatError(path, f"not a readable .npz file ({error}).") from None
            self._keys = set(self._data.files)  # type: ignore[attr-defined]
        elif suffix in (".pkl", ".p", ".pickle"):
            data = load_pickle(path)
            if not isinstance(data, dict):
                raise CorpusFormatError(path, f"should hold a dict id -> array, found a {type(data).__name__}.")
            self._data = {str(k.decode() if isinstance(k, bytes) else k): v for k, v in data.items()}
            self._keys = set(self._data)
        elif suffix in (".h5", ".hdf5"):
            import h5py

            try:
                self._h5 = h5py.File(path, "r")
            except OSError as error:
                raise CorpusFormatError(path, f"not a readable HDF5 file ({error}).") from None
            self._data = self._h5
            self._keys = set(self._h5.keys())
        else:
            raise CorpusFormatError(path, f"unsupported feature file type {suffix!r}; use one of {', '.join(FEATURE_SUFFIXES)}.")
        if not self._keys:
            raise CorpusFormatError(path, "holds no features (no ids).")

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def first_key(self) -> str:
        return sorted(self._keys)[0]

    def read(self, key: str) -> np.ndarray:
        """The ``[T, D]`` float32 features of ``key``, checked."""
        try:
            value = self._data[key]
            if self._h5 is not None:
                if hasattr(value, "keys"):  # a group per id: its 'features' dataset
                    if "features" not in value:
                        raise CorpusFormatError(
                            self.path, f"group {key!r} has no 'features' dataset (it holds {sorted(value.keys())}); "
                            "store each id's [T, D] array as a dataset named 'features', or as the id itself."
                        )
                    value = value["features"]
                value = value[()]
            array = np.asarray(value)
        except CorpusFormatError:
            raise
        except (OSError, KeyError, TypeError, ValueError) as error:
            raise CorpusFormatError(self.path, f"features of {key!r} cannot be read ({error}).") from None
        if array.dtype.kind not in "fiub":
            raise CorpusFormatError(self.path, f"features of {key!r} should be numeric, found dtype {array.dtype}.")
        if array.ndim == 1:
            array = array[None, :]
        elif array.ndim == 2 and self.transpose:
            array = array.T
        if array.ndim != 2:
            raise CorpusFormatError(self.path, f"features of {key!r} should be [T, D] (or [D]), found shape {array.shape}.")
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise CorpusFormatError(self.path, f"features of {key!r} are empty (shape {array.shape}).")
        if self.dim is None:
            self.dim = int(array.shape[1])
        elif array.shape[1] != self.dim:
            raise CorpusFormatError(
                self.path, f"features of {key!r} have dim {array.shape[1]} but earlier ids have {self.dim}"
                + (" (stored [D, T]? pass transpose=[modality])" if not self.transpose else "") + "."
            )
        return array.astype(np.float32, copy=False)

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()


class FeatureSource:
    """One modality's features, from one file or one file per split."""

    def __init__(self, modality: str, files: dict[str | None, FeatureFile]) -> None:
        self.modality, self.files = modality, files
        first = next(iter(files.values()))
        first.read(first.first_key())
        self.dim = int(first.dim or 0)

    def find(self, split: str, keys: Iterable[str]) -> tuple[FeatureFile, str] | None:
        """The file and key holding one of ``keys`` (tried in order) for ``split``."""
        file = self.files.get(split) or self.files.get(None)
        if file is None:
            return None
        for key in keys:
            if key in file:
                return file, key
        return None

    def read(self, split: str, keys: list[str]) -> np.ndarray | None:
        found = self.find(split, keys)
        if found is None:
            return None
        file, key = found
        array = file.read(key)
        if array.shape[1] != self.dim:
            raise CorpusFormatError(file.path, f"features of {key!r} have dim {array.shape[1]}, other files of {self.modality} have {self.dim}.")
        return array

    def describe(self) -> str:
        return ", ".join(sorted(f.path.name for f in self.files.values()))

    def close(self) -> None:
        for file in self.files.values():
            file.close()


def _as_modality_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    modalities = [str(m).strip() for m in items if str(m).strip()]
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ValueError(f"Unknown modalities {unknown}: choose from {list(MODALITIES)}.")
    return modalities


def open_feature_sources(
    features: Any, base: Path, transpose: Any = None, split_aliases: Mapping[str, str] | None = None
) -> dict[str, FeatureSource]:
    """Open the user's feature files (see the module docstring); {} when ``features`` is None.

    Args:
        features: a folder, or ``{modality: file | {split: file}}``.
        base: folder relative file names are resolved against.
        transpose: modalities stored ``[D, T]``.
        split_aliases: file-split name -> unified split name (MELD: ``dev`` -> ``validation``).
    """
    if features is None:
        return {}
    flipped = set(_as_modality_list(transpose))
    aliases = dict(split_aliases or {})

    def resolve(value: Any) -> Path:
        candidate = Path(str(value)).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    if isinstance(features, (str, Path)):
        folder = resolve(features)
        if not folder.is_dir():
            raise CorpusFormatError(folder, "features= should be a folder of text/audio/visual feature files or a dict {modality: file}.")
        spec: dict[str, Any] = {}
        for modality in MODALITIES:
            found = [p for p in sorted(folder.iterdir()) if p.stem == modality and p.suffix.lower() in FEATURE_SUFFIXES]
            if len(found) > 1:
                raise CorpusFormatError(folder, f"several {modality} feature files ({', '.join(p.name for p in found)}).")
            if found:
                spec[modality] = found[0]
        if not spec:
            raise CorpusFormatError(folder, f"no text/audio/visual feature file ({', '.join(FEATURE_SUFFIXES)}) in this folder.")
    elif isinstance(features, Mapping):
        spec = dict(features)
    else:
        raise ValueError(f"features must be a folder or a dict {{modality: file}}, got {type(features).__name__}.")
    sources: dict[str, FeatureSource] = {}
    try:
        for modality in MODALITIES:
            if modality not in spec or spec[modality] in (None, ""):
                continue
            value = spec[modality]
            if isinstance(value, Mapping):
                files: dict[str | None, FeatureFile] = {}
                for split, file in value.items():
                    files[aliases.get(str(split), str(split))] = FeatureFile(resolve(file), modality in flipped)
            else:
                files = {None: FeatureFile(resolve(value), modality in flipped)}
            sources[modality] = FeatureSource(modality, files)
        unknown = set(spec) - set(MODALITIES)
        if unknown:
            raise ValueError(f"features has unknown modalities {sorted(unknown)}; use {list(MODALITIES)}.")
    except BaseException:
        for source in sources.values():
            source.close()
        raise
    return sources


def make_text_extractor(extractor_options: Mapping[str, Any] | None, where: Path) -> Any:
    """The package's ``TextExtractor`` (imported lazily), or an error saying how to do without it."""
    try:
        from mtaffect.data.extract import TextExtractor
    except ImportError as error:
        raise CorpusFormatError(
            where,
            f"no features given and the text extractor is unavailable ({error}); install mtaffect[text] "
            "or pass features={'text': 'text.npz', ...} (see mtaffect.data.corpora.user_features).",
        ) from None
    return TextExtractor(**dict(extractor_options or {}))


#: The options of every loader whose features are the user's files or extracted text (their help).
_FEATURE_OPTIONS: dict[str, str] = {
    "features": "folder or {modality: file | {split: file}} of per-utterance features; None = extract text",
    "transpose": "modalities whose files store [D, T]",
    "missing_features": "'error' (default) or 'drop' utterances absent from a feature file",
    "extract_text": "None = extract text features only when features is None; True/False forces it "
    "(False without features: a text-only corpus, for a model with a text encoder)",
    "extractor": "options passed to mtaffect.data.extract.TextExtractor",
    "feature_set": "feature-set name (default: the extractor's name or {corpus}-user-<dims>)",
    "limit": "keep the first N utterances of each split (a dry run: only those are extracted)",
}


def feature_options(corpus: str, limit: bool = True) -> dict[str, str]:
    """Help of the feature options a text corpus' loader takes (``register_corpus(options=...)``).

    Args:
        corpus: the corpus, as its default feature-set name begins (``meld-user-t384``).
        limit: whether the loader takes ``limit=`` too.
    """
    options = {name: text.replace("{corpus}", corpus) for name, text in _FEATURE_OPTIONS.items()}
    if not limit:
        del options["limit"]
    return options


def text_feature_provider(
    features: Any,
    folder: Path,
    transpose: Any = None,
    missing_features: str = "error",
    extract_text: bool | None = None,
    extractor: Mapping[str, Any] | None = None,
    split_aliases: Mapping[str, str] | None = None,
) -> FeatureProvider:
    """The ``FeatureProvider`` of a text corpus' loader, from its feature options (``feature_options``).

    ``extract_text=None`` extracts text features exactly when no ``features`` are given; the
    user's files are resolved against ``folder`` (see ``open_feature_sources``).
    """
    text_only = extract_text is False and features is None
    if extract_text is None:
        extract_text = features is None
    sources = open_feature_sources(features, folder, transpose, split_aliases=split_aliases)
    try:
        text_extractor = make_text_extractor(extractor, folder) if extract_text else None
        return FeatureProvider(sources, text_extractor, missing_features, folder, text_only=text_only)
    except BaseException:
        for source in sources.values():
            source.close()
        raise


class FeatureProvider:
    """Per-batch features of a text corpus: the user's files, plus extracted text features if asked.

    Args:
        sources: from ``open_feature_sources``.
        extractor: a ``TextExtractor``-like object (``name``, ``dim``, ``__call__(texts)``) or None.
        missing: ``"error"`` (default) or ``"drop"`` for ids absent from a feature file.
        where: the corpus path, named in errors.
        text_only: no features at all is what was asked for (``features=None, extract_text=False``):
            a text-only corpus, read by a model whose text encoder reads the raw ``text`` column.
    """

    def __init__(
        self, sources: dict[str, FeatureSource], extractor: Any, missing: str, where: Path, text_only: bool = False
    ) -> None:
        if missing not in ("error", "drop"):
            raise ValueError(f"missing_features must be 'error' or 'drop', got {missing!r}.")
        if extractor is not None and "text" in sources:
            raise ValueError("Text features were supplied and extraction was asked for too; pick one.")
        if not sources and extractor is None and not text_only:
            raise CorpusFormatError(
                where, "no features: pass features=..., enable text extraction, or extract_text=False for a "
                "text-only corpus (for a model whose text encoder reads the raw transcripts)."
            )
        self.sources, self.extractor, self.missing, self.where = sources, extractor, missing, where
        self.dims: dict[str, int] = {m: s.dim for m, s in sources.items()}
        if extractor is not None:
            self.dims["text"] = int(extractor.dim)
        self.dims = {m: self.dims[m] for m in MODALITIES if m in self.dims}
        self.dropped = 0

    def extractors(self) -> dict[str, Any]:
        described = {m: f"user:{s.describe()}" for m, s in self.sources.items()}
        if self.extractor is not None:
            describe = getattr(self.extractor, "describe", None)
            described["text"] = describe() if callable(describe) else {"name": self.extractor.name}
        return {m: described[m] for m in self.dims}

    def default_feature_set(self, corpus: str) -> str:
        if not self.dims:
            return f"{corpus}-text"  # raw transcripts only: no feature projection to share
        if self.extractor is not None and not self.sources:
            return str(self.extractor.name)  # as mtaffect.data.extract.feature_set_name names it
        return f"{corpus}-user-" + "-".join(f"{m[0]}{d}" for m, d in self.dims.items())

    def fill(self, split: str, keys: list[list[str]], texts: list[str]) -> tuple[dict[str, list[np.ndarray]], list[bool]]:
        """Feature columns for rows identified by ``keys`` (candidate ids each) and which rows to keep."""
        n = len(keys)
        keep = [True] * n
        columns: dict[str, list[Any]] = {}
        for modality, source in self.sources.items():
            values = []
            for i, candidates in enumerate(keys):
                array = source.read(split, candidates)
                if array is None:
                    if self.missing == "error":
                        raise CorpusFormatError(
                            (source.files.get(split) or source.files.get(None) or next(iter(source.files.values()))).path,
                            f"no {modality} features for {candidates[0]!r} (split {split}); add them or pass "
                            "missing_features='drop' to leave such utterances out.",
                        )
                    keep[i] = False
                values.append(array)
            columns[feature_column(modality)] = values
        if self.extractor is not None:
            # An empty transcript is a missing text modality (an empty sequence, which the model
            # replaces by its missing-modality embedding), not an input to encode.
            spoken = [i for i, text in enumerate(texts) if str(text or "").strip()]
            encoded = list(self.extractor([texts[i] for i in spoken])) if spoken else []
            if len(encoded) != len(spoken):
                raise RuntimeError(f"The text extractor returned {len(encoded)} sequences for {len(spoken)} texts.")
            fixed = [np.zeros((0, self.dims["text"]), dtype=np.float32) for _ in range(n)]
            for i, array in zip(spoken, encoded):
                array = np.asarray(array, dtype=np.float32)
                if array.ndim == 1:
                    array = array[None, :]
                if array.shape[0] == 0:  # an utterance the extractor gave no frame: one zero frame keeps it usable
                    array = np.zeros((1, self.dims["text"]), dtype=np.float32)
                fixed[i] = array
            columns[feature_column("text")] = fixed
        self.dropped += n - sum(keep)
        return columns, keep

    def close(self) -> None:
        for source in self.sources.values():
            source.close()


def kept_batches(
    provider: FeatureProvider,
    notes: dict[str, Any],
    corpus_label: str,
    batches: Iterable[tuple[str, dict[str, list[Any]], list[bool]]],
) -> Iterator[tuple[str, dict[str, list[Any]]]]:
    """``(split, batch)`` from ``(split, batch, keep)``: rows without features dropped, empty batches skipped.

    Closes ``provider`` however the iteration ends and records how many utterances were
    dropped (``notes["dropped_without_features"]``, and a warning).
    """
    try:
        for split, batch, keep in batches:
            if not all(keep):
                batch = {key: [v for v, k in zip(values, keep) if k] for key, values in batch.items()}
            if batch["id"]:
                yield split, batch
    finally:
        provider.close()
    if provider.dropped:
        notes["dropped_without_features"] = provider.dropped
        logger.warning("%s: dropped %d utterances without features.", corpus_label, provider.dropped)
