"""Errors raised while reading published corpus files.

Every message starts with the file it is about and says what is wrong with it, so a user
with a 20 GB pickle learns which file and which key to look at instead of reading a
traceback from deep inside numpy, h5py or pyarrow.
"""

from __future__ import annotations

from pathlib import Path


class CorpusFormatError(ValueError):
    """A corpus file is missing, unreadable or not in the format its loader expects.

    Attributes:
        path: the offending file (or folder).
        problem: what is wrong, without the path.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsafePickleError(CorpusFormatError):
    """A pickle references something other than numpy arrays and plain containers.

    Loading it could run arbitrary code, so it is refused before anything it names is
    imported or called.
    """
