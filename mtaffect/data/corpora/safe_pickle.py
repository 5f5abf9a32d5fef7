"""A restricted unpickler: numpy arrays, dtypes, scalars and plain containers only.

The MMSA, MulT and MUStARD releases ship as pickles, and ``pickle.load`` on a file from the
internet runs whatever code the file names. ``load_pickle`` resolves every global a
pickle references against a fixed allow-list of objects (it never imports a module the
file names) and refuses anything else with ``UnsafePickleError`` *before* calling it,
so a malicious file runs nothing.

Allowed: ``numpy`` array reconstruction (``_reconstruct``, ``_frombuffer``, ``ndarray``,
``dtype``, numpy scalars, under both the numpy 1 ``numpy.core`` and numpy 2 ``numpy._core``
names), ``_codecs.encode`` restricted to latin-1 (how protocol-2 pickles written by Python 3
spell ``bytes``), ``collections.OrderedDict`` and the ``set``/``frozenset``/``bytearray``/``complex``
constructors protocol-2 pickles name. Builtin containers (dict, list, tuple,
set, str, bytes, numbers) need no globals.

Examples:
    >>> import io, pickle, numpy as np
    >>> load_pickle(io.BytesIO(pickle.dumps({"x": np.arange(3)})))["x"].tolist()
    [0, 1, 2]
"""

from __future__ import annotations

import codecs
import collections
import logging
import os
import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np

from mtaffect.data.corpora.errors import CorpusFormatError, UnsafePickleError

logger = logging.getLogger(__name__)

__all__ = ["load_pickle", "ALLOWED_GLOBALS"]


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes; any other codec is refused."""
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r} is not allowed")
    return codecs.encode(text, "latin1", errors)


def _numpy_objects() -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray, numeric

    objects: dict[tuple[str, str], Any] = {}
    for prefix in ("numpy.core", "numpy._core"):
        objects[(f"{prefix}.multiarray", "_reconstruct")] = multiarray._reconstruct
        objects[(f"{prefix}.multiarray", "scalar")] = multiarray.scalar
        objects[(f"{prefix}.numeric", "_frombuffer")] = numeric._frombuffer
    objects[("numpy", "ndarray")] = np.ndarray
    objects[("numpy", "dtype")] = np.dtype
    # numpy >= 1.25 may name the dtype classes themselves (np.dtypes.Float32DType, ...).
    for name in dir(np.dtypes):
        if name.endswith("DType") and name != "StringDType":
            objects[("numpy.dtypes", name)] = getattr(np.dtypes, name)
    return objects


#: (module, name) -> the object a pickle may reference. Nothing outside this table is importable.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **_numpy_objects(),
    ("_codecs", "encode"): _latin1_encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Protocol <= 2 spells these containers as globals (Python 2 module name included).
    **{
        (module, obj.__name__): obj
        for module in ("builtins", "__builtin__")
        for obj in (set, frozenset, bytearray, complex)
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], path: Path, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                self._path,
                f"refusing to unpickle: it references {module}.{name}, which is not a numpy "
                "array, dtype or plain container, and loading it could run code. Nothing was "
                "executed. If you trust this file, convert it to numpy arrays in a dict "
                "(or to .npz) yourself.",
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(self._path, "refusing to unpickle: it uses persistent ids (not a plain data pickle).")


def load_pickle(source: str | Path | IO[bytes], encoding: str = "latin1") -> Any:
    """Load a pickle of numpy arrays and plain containers, refusing anything else.

    Args:
        source: a path or a binary file object.
        encoding: how Python 2 ``str`` objects are decoded. ``latin1`` (the default) is
            what numpy arrays pickled by Python 2 need (MUStARD's ``split_indices.p``) and is
            harmless for Python 3 pickles.

    Raises:
        UnsafePickleError: the pickle references code.
        CorpusFormatError: the file is missing, truncated or not a pickle.
    """
    path = Path(getattr(source, "name", "<pickle>")) if not isinstance(source, (str, Path)) else Path(source)
    if isinstance(source, (str, Path)):
        if not path.is_file():
            raise CorpusFormatError(path, "no such file.")
        try:
            file: IO[bytes] = open(path, "rb", buffering=1 << 20)  # noqa: SIM115 - closed below
        except OSError as error:
            raise CorpusFormatError(path, f"cannot be opened ({error.strerror or error}).") from None
    else:
        file = source
    try:
        return _RestrictedUnpickler(file, path, encoding).load()
    except CorpusFormatError:
        raise
    except EOFError:
        raise CorpusFormatError(path, "the pickle ends early (truncated or empty file?).") from None
    except MemoryError:
        raise CorpusFormatError(path, _memory_error_reason(path)) from None
    except Exception as error:  # noqa: BLE001 - the unpickler raises many types on garbage
        raise CorpusFormatError(
            path, f"not a readable pickle ({type(error).__name__}: {error}); is the file truncated or corrupted?"
        ) from None
    finally:
        if isinstance(source, (str, Path)):
            file.close()


def _memory_error_reason(path: Path) -> str:
    """Why unpickling ran out of memory: a damaged size field, unless the file itself is huge.

    A pickle states the length of each string or buffer before it; a flipped byte there asks
    for exabytes, which no machine has. Only a file larger than the memory can need that much.
    """
    try:
        size = path.stat().st_size
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, AttributeError):
        size, memory = 0, 0
    if memory and size * 4 > memory:
        return (f"not enough memory to unpickle it: the file is {size / 2**30:.1f} GiB and this machine has "
                f"{memory / 2**30:.1f} GiB. Use a machine with more memory, or the corpus' smaller files.")
    return (f"corrupt: it declares an object far larger than the file itself ({size} bytes), so a length "
            "field is damaged. Download or copy the file again.")


class _Skipped:
    """Stands in for a large opcode argument ``pickle_strings`` seeks over instead of reading."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def decode(self, *args: Any) -> str:
        return ""


class _SkippingReader:
    """A file whose large reads seek forward: opcode arguments above ``limit`` bytes are never read."""

    def __init__(self, file: IO[bytes], limit: int) -> None:
        self.file = file
        self.limit = limit

    def read(self, size: int = -1) -> Any:
        if size > self.limit:
            self.file.seek(size, 1)
            return _Skipped(size)
        return self.file.read(size)

    def readline(self) -> bytes:
        return self.file.readline()

    def tell(self) -> int:
        return self.file.tell()


def pickle_strings(path: str | Path, max_length: int = 64, max_strings: int = 10_000) -> set[str]:
    """The short strings a pickle holds (its dict keys among them), read without loading it.

    Walks the opcode stream (``pickletools.genops``), seeking over every large argument (the
    array payloads), so a 20 GB feature pickle is scanned in milliseconds and nothing it
    names is imported or called. Used to tell formats apart by content when file names do
    not (``mosei_unaligned_50.pkl`` is an MMSA pickle: it has ``regression_labels``).
    Returns an empty set for a file that is not a pickle.
    """
    import pickletools

    found: set[str] = set()
    try:
        with open(path, "rb") as handle:
            for _, argument, _ in pickletools.genops(_SkippingReader(handle, limit=1 << 16)):
                if isinstance(argument, str) and argument and len(argument) <= max_length:
                    found.add(argument)
                    if len(found) >= max_strings:
                        break
    except (OSError, ValueError, pickle.UnpicklingError, EOFError):  # not a pickle, or cut short
        pass
    return found
