"""EmoryNLP (Zahiri & Choi, 2018): ``emorynlp_{train,dev,test}_final.csv`` + features.

Columns: ``Utterance, Speaker, Emotion, Scene_ID, Utterance_ID, Season, Episode, Start_Time,
End_Time``; ``Speaker`` is a Python-style list (``['Rachel Green']``). An utterance's id is
``s<Season>_e<Episode>_c<Scene_ID>_u<Utterance_ID>``.

Labels: emotion only, single-label, in EmoryNLP's own 7-class set (``emotion/emorynlp``:
Joyful, Mad, Neutral, Peaceful, Powerful, Sad, Scared — Willcox's feeling wheel). Five of them
are union names MELD shares (Joyful = happiness, Mad = anger, Sad = sadness, Scared = fear,
Neutral); Peaceful and Powerful are EmoryNLP's own, so its rows train a head of their own and
convert to MELD's set only through the five shared labels.

Reading, features and ``limit=`` as MELD's (``mtaffect.data.corpora.split_csv``: ``features=``
files keyed ``train/<id>`` or one file per split, or text features extracted with
``mtaffect.data.extract.TextExtractor`` when ``features`` is omitted).
Extra columns: ``season``, ``episode``, ``scene_id``, ``utterance_id``; with
``context={"past": K, "future": J}`` the turns of the utterance's scene (season + episode +
``Scene_ID``, which restarts every episode) in the same split, ordered by ``Utterance_ID``
(``mtaffect.data.context``).
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasets import Value

from mtaffect.data.context import CONTEXT_OPTION_HELP
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.split_csv import SplitCsvCorpus, repair_text
from mtaffect.data.corpora.user_features import feature_options
from mtaffect.tasks import label_space

logger = logging.getLogger(__name__)

#: Unified split -> (EmoryNLP's split name, CSV file).
EMORYNLP_FILES: dict[str, tuple[str, str]] = {
    "train": ("train", "emorynlp_train_final.csv"),
    "validation": ("dev", "emorynlp_dev_final.csv"),
    "test": ("test", "emorynlp_test_final.csv"),
}
REQUIRED_COLUMNS: tuple[str, ...] = ("Utterance", "Speaker", "Emotion", "Scene_ID", "Utterance_ID", "Season", "Episode")
#: EmoryNLP's label space.
EMORYNLP_SPACE = "emotion/emorynlp"
_EXTRA = {name: Value("int64") for name in ("season", "episode", "scene_id", "utterance_id")}


def _speaker(value: str) -> str:
    """``"['Rachel Green']"`` -> ``"Rachel Green"`` (several speakers joined by ", ")."""
    text = value.strip()
    if text.startswith("["):
        try:
            names = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(names, (list, tuple)):
            return ", ".join(str(name) for name in names)
    return text


def _parse(record: Mapping[str, str], line: int) -> dict[str, Any]:
    """One EmoryNLP record: id ``s<Season>_e<Episode>_c<Scene>_u<Utterance>``, the emotion's index in its space."""
    space = label_space(EMORYNLP_SPACE)
    try:
        season, episode = int(record["Season"]), int(record["Episode"])
        scene, utterance = int(record["Scene_ID"]), int(record["Utterance_ID"])
    except ValueError:
        raise ValueError("Season, Episode, Scene_ID and Utterance_ID must be integers.") from None
    lookup = {label.lower(): i for i, label in enumerate(space.labels)}
    emotion = record["Emotion"].strip().lower()
    if emotion not in lookup:
        raise ValueError(f"unknown emotion {record['Emotion']!r} (EmoryNLP uses {', '.join(space.labels)}).")
    return {
        "id": f"s{season:02d}_e{episode:02d}_c{scene:02d}_u{utterance:03d}",
        "text": repair_text(record["Utterance"]),
        "speaker": _speaker(record["Speaker"]),
        "emotion": lookup[emotion],
        "season": season,
        "episode": episode,
        "scene_id": scene,
        "utterance_id": utterance,
    }


#: EmoryNLP as a CSV-per-split corpus (the reading it shares with MELD: ``split_csv``).
EMORYNLP = SplitCsvCorpus(
    name="emorynlp",
    title="EmoryNLP",
    files=EMORYNLP_FILES,
    columns=REQUIRED_COLUMNS,
    parse=_parse,
    spaces={"emotion": EMORYNLP_SPACE},
    extra_features=_EXTRA,
    # A scene is season + episode + Scene_ID: Scene_ID restarts in every episode.
    dialogue=lambda row: ((row["season"], row["episode"], row["scene_id"]), row["utterance_id"]),
    notes={"format": "emorynlp", "split_names": {"validation": "dev"}},
    hint="; is this EmoryNLP's CSV?",
)
OPTIONS = {**feature_options("emorynlp"), "context": CONTEXT_OPTION_HELP}


def read_emorynlp_csv(file: Path) -> list[dict[str, Any]]:
    """Rows of one EmoryNLP CSV with checked, typed fields (emotion as its label index)."""
    return EMORYNLP.read(file)


def looks_like_emorynlp(path: Path) -> bool:
    return EMORYNLP.looks_like(path)


register_corpus(
    "emorynlp",
    "emorynlp",
    detect=looks_like_emorynlp,
    description="EmoryNLP: the three emorynlp_*_final.csv files; 7 single-label emotions of its own (Peaceful, Powerful...), features user-supplied or extracted",
    options=OPTIONS,
)(EMORYNLP.load)
