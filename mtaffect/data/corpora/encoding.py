"""Text files as users save them: which encoding, and one clear error when it is none we read.

Spreadsheet programs save CSVs as UTF-8 (with or without a byte-order mark), UTF-16 ("Unicode
text", with a mark) or Windows-1252. Reading a UTF-16 file as UTF-8 or Latin-1 yields a header
of NUL-separated characters, which then surfaces as "missing columns"; decoding it here first
keeps the loaders' messages about the content, not the bytes.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path

from mtaffect.data.corpora.errors import CorpusFormatError

logger = logging.getLogger(__name__)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(raw: bytes, path: Path, fallback: str | None = None) -> str:
    """``raw`` (the bytes of ``path``) as text: BOM-marked UTF-8/16/32, else UTF-8, else ``fallback``.

    Args:
        raw: the file's bytes.
        path: named in the error.
        fallback: encoding tried when the bytes are not UTF-8 (``"cp1252"`` for MELD, whose
            releases mix both); ``None`` makes non-UTF-8 bytes an error.

    Raises:
        CorpusFormatError: UTF-16 without a byte-order mark, or bytes no allowed encoding reads.

    Examples:
        >>> decode_text("id,text\\n1,hé\\n".encode("utf-16"), Path("t.csv"))
        'id,text\\n1,hé\\n'
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as error:
                raise CorpusFormatError(path, f"starts with a {encoding.upper()} byte-order mark but is not valid "
                                              f"{encoding.upper()} (byte {error.start}); save it again as UTF-8.") from None
    head = raw[:4096]
    if head and head.count(0) * 4 > len(head):
        raise CorpusFormatError(path, "looks like UTF-16 text without a byte-order mark (every other byte is 0); "
                                      "save it as UTF-8 (or UTF-16 with a byte-order mark).")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if fallback is None:
            raise CorpusFormatError(path, f"is not UTF-8 text (byte {error.start}: {raw[error.start:error.start + 1]!r}); "
                                          "save it as UTF-8.") from None
        logger.warning("%s is not UTF-8; read as %s.", path, fallback)
        return raw.decode(fallback, errors="replace")
