"""The modalities, in their one order (feature columns, feature-set names, extractor lists).

A module of its own so that what names modalities without reading corpora (feature
extraction at ``predict`` time) does not import ``datasets`` through ``mtaffect.data.schema``.
"""

from __future__ import annotations

MODALITIES: tuple[str, ...] = ("text", "audio", "visual")
