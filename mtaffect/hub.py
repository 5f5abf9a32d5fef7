"""Unified corpora on the Hugging Face Hub: one dataset repo, one config per corpus.

``DatasetDict.push_to_hub`` stores the rows as Parquet (the ``Array2D`` feature columns
included) but not ``DatasetInfo.description``, where mtaffect keeps a corpus'
``CorpusInfo`` (feature set, extractors, weak-label provenance).
``push_corpus`` therefore also writes that metadata into the dataset card's YAML, under
``mtaffect.corpora.<config>``, and ``load_corpus_from_hub`` puts it back, so a corpus
loaded from the Hub is the corpus that was pushed:

    push_corpus(meld, "my-user/affect-corpora")                 # config "meld"
    meld = load_corpus_from_hub("my-user/affect-corpora", "meld")

Only push data you have the right to share: most affect corpora (CMU-MOSEI, IEMOCAP,
MELD, MUStARD) come with licenses that restrict redistribution, and extracted features
can count as derived data. Use ``private=True`` (or do not push) when in doubt.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Key of the dataset card's YAML that holds mtaffect's metadata.
CARD_KEY = "mtaffect"

SHARING_NOTE = (
    "Only push data you have the right to share: most affect corpora (CMU-MOSEI, IEMOCAP, MELD, "
    "MUStARD) are licensed for research use and restrict redistribution, and extracted features can "
    "count as derived data. Check the corpus license; use a private repo when in doubt."
)

_CARD_BODY = """
# {title}

Unified [mtaffect](https://arxiv.org/abs/2104.11560) corpora: one config per corpus, every config with
the same columns (feature sequences per modality as `Array2D`, gold labels with masks, weak labels
with masks and confidences).

```python
from mtaffect.hub import load_corpus_from_hub

corpus = load_corpus_from_hub("{repo_id}", "<config>")  # restores mtaffect's corpus metadata
```

`datasets.load_dataset("{repo_id}", "<config>")` gives the same rows; the corpus metadata
(feature set, extractors, weak-label provenance) is in this card's YAML under `mtaffect.corpora`.

**Sharing.** {note}
"""


def push_corpus(
    corpus: Any,
    repo_id: str,
    config_name: str | None = None,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    validate: bool = True,
    max_shard_size: int | str | None = None,
) -> Any:
    """Push a unified corpus (``DatasetDict``) as config ``config_name`` of dataset ``repo_id``.

    ``config_name`` defaults to the corpus' name (``CorpusInfo.corpus``). The corpus is
    validated first (``validate_corpus``), so nothing is pushed
    if it is off-schema. Returns the ``CommitInfo`` of the card update.

    Only push data you have the right to share (see the module docstring).
    """
    from datasets import Dataset, DatasetDict
    from huggingface_hub import DatasetCard, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    from mtaffect.data.schema import get_corpus_info, validate_corpus

    if isinstance(corpus, Dataset):
        raise TypeError(
            "push_corpus needs a DatasetDict (splits train/validation/test); wrap a single split as "
            "DatasetDict({'train': dataset})."
        )
    if not isinstance(corpus, DatasetDict):
        raise TypeError(f"push_corpus needs a unified-schema DatasetDict, got {type(corpus).__name__}.")
    if validate:
        validate_corpus(corpus)
    info = get_corpus_info(corpus)
    config_name = config_name or (info.corpus if info.corpus != "unknown" else None)
    if not config_name:
        raise ValueError(
            "The corpus carries no mtaffect metadata naming it: pass config_name=... (e.g. the corpus name)."
        )
    if config_name == "default":
        raise ValueError("config_name 'default' is reserved by datasets; name the config after the corpus.")
    logger.info("Pushing corpus %r to dataset repo %s (config %r). %s", info.corpus, repo_id, config_name, SHARING_NOTE)
    corpus.push_to_hub(
        repo_id,
        config_name=config_name,
        private=private,
        token=token,
        commit_message=commit_message or f"Upload mtaffect corpus {config_name}",
        max_shard_size=max_shard_size,
    )
    # datasets rewrote README.md (splits, features, configs) and kept our earlier metadata;
    # add this config's CorpusInfo and, on a fresh card, a body that says how to load it.
    try:
        card = DatasetCard.load(
            hf_hub_download(repo_id, "README.md", repo_type="dataset", token=token), ignore_metadata_errors=True
        )
    except EntryNotFoundError:  # pragma: no cover - push_to_hub always writes a card
        card = DatasetCard("---\n---\n")
    metadata = card.data.get(CARD_KEY) or {}
    corpora = dict(metadata.get("corpora") or {})
    corpora[config_name] = asdict(info)
    card.data[CARD_KEY] = {**metadata, "corpora": corpora}
    if not card.text.strip():
        card.text = _CARD_BODY.format(title=repo_id.split("/")[-1], repo_id=repo_id, note=SHARING_NOTE)
    return card.push_to_hub(
        repo_id,
        repo_type="dataset",
        token=token,
        commit_message=f"Record mtaffect metadata of corpus {config_name}",
    )


def corpus_info_from_card(repo_id: str, config_name: str, revision: str | None = None, token: str | None = None):
    """The ``CorpusInfo`` that ``push_corpus`` recorded, or ``None``."""
    from huggingface_hub import DatasetCard, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    from mtaffect.data.schema import CorpusInfo

    try:
        path = hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision, token=token)
    except EntryNotFoundError:
        return None
    card = DatasetCard.load(path, ignore_metadata_errors=True)
    payload = ((card.data.get(CARD_KEY) or {}).get("corpora") or {}).get(config_name)
    if not isinstance(payload, dict):
        return None
    known = {f.name for f in fields(CorpusInfo)}
    return CorpusInfo(**{k: v for k, v in payload.items() if k in known})


def load_corpus_from_hub(
    repo_id: str,
    config_name: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    **load_dataset_kwargs: Any,
) -> Any:
    """``datasets.load_dataset(repo_id, config_name)`` with the corpus metadata restored.

    Without recorded metadata (a dataset not pushed by ``push_corpus``) the corpus still
    loads; ``get_corpus_info`` then falls back to what the
    features say, and a warning names the repo.
    """
    from datasets import load_dataset

    from mtaffect.data.schema import set_corpus_info

    corpus = load_dataset(repo_id, config_name, revision=revision, token=token, **load_dataset_kwargs)
    info = corpus_info_from_card(repo_id, config_name, revision=revision, token=token)
    if info is None:
        logger.warning(
            "Dataset %s (config %r) carries no mtaffect corpus metadata in its card (it was not pushed with "
            "mtaffect.hub.push_corpus): feature set and extractors are unknown.", repo_id, config_name
        )
    else:
        set_corpus_info(corpus, info)
    return corpus


# --------------------------------------------------------------------------------------------
# Pushing a folder (what hub_scripts/ do): one error a user can act on, no half-made repo


class HubPushError(RuntimeError):
    """The Hub refused a push or could not be reached; the message says which and what to check."""


def push_error(error: BaseException, endpoint: str | None = None) -> HubPushError | None:
    """The user's message for a failed Hub request, or ``None`` when ``error`` is not one.

    An HTTP refusal names its status and reason (and the token for 401/403); a connection that failed
    (refused, DNS, timeout: ``OSError`` or an httpx/httpcore error) names the endpoint and
    ``HF_ENDPOINT``. Anything else is a bug, for the caller to raise as it is.
    """
    from huggingface_hub.errors import HfHubHTTPError

    # huggingface_hub re-raises some refusals as a ValueError saying why (an invalid card's metadata).
    http = error if isinstance(error, HfHubHTTPError) else error.__cause__
    if isinstance(http, HfHubHTTPError):
        status = http.response.status_code if http.response is not None else "?"
        hint = " Check HF_TOKEN / --token: it must be a valid token with write access." if status in (401, 403) else ""
        lines = str(error).splitlines() if http is not error else str(error).splitlines()[:1]
        reason = " ".join(line.strip() for line in lines if line.strip()).rstrip(".")
        return HubPushError(f"the Hub refused the push (HTTP {status}): {reason}.{hint}")
    if isinstance(error, OSError) or type(error).__module__.startswith(("httpx", "httpcore")):
        where = f"the Hub at {endpoint}" if endpoint else "the Hub"
        return HubPushError(f"cannot reach {where}: {error}. Check your network or HF_ENDPOINT.")
    return None


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    space_sdk: str | None = None,
    ignore_patterns: list[str] | None = None,
    endpoint: str | None = None,
) -> Any:
    """Create ``repo_id`` where needed and upload ``folder`` to it as one commit.

    A repo this call created is deleted again when the upload fails, so a refused push leaves
    nothing behind; a repo that existed is left as it was. Returns the ``CommitInfo``.
    ``endpoint`` defaults to ``HF_ENDPOINT`` (the Hub).

    Raises:
        HubPushError: the Hub refused the push or could not be reached (``push_error``).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    api = HfApi(endpoint=endpoint, token=token)
    created = False
    try:
        try:
            existed = api.repo_exists(repo_id, repo_type=repo_type)
        except RepositoryNotFoundError:
            existed = False
        url = api.create_repo(repo_id, repo_type=repo_type, space_sdk=space_sdk, private=private, exist_ok=True)
        created = not existed
        return api.upload_folder(
            repo_id=url.repo_id, repo_type=repo_type, folder_path=str(folder), revision=revision,
            commit_message=commit_message, ignore_patterns=ignore_patterns,
        )
    except Exception as error:
        failure = push_error(error, api.endpoint)
        if created:
            try:
                api.delete_repo(repo_id, repo_type=repo_type, missing_ok=True)
                note = f" Deleted {repo_id}, which this failed push had created."
            except Exception as cleanup:  # noqa: BLE001 - the push error matters more; say the cleanup failed
                note = f" Could not delete {repo_id} after the failed push: {cleanup}"
            if failure is not None:
                raise HubPushError(f"{failure}{note}") from None
            logger.error(note.strip())
        if failure is not None:
            raise failure from None
        raise
