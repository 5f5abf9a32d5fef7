"""A Hub-compatible HTTP server for the test suite (test infrastructure, not part of mtaffect).

There is no Hub in CI and no installable Hub emulator works offline, so the Hub round-trip
tests talk to this small server on 127.0.0.1 instead. It implements only the HTTP calls that
``huggingface_hub`` 2.x, ``transformers`` and ``datasets`` make to push and load model,
dataset and Space repos (see ``shared/HF5-NOTES.md``), with the real Hub's status codes and
error headers, so the library code paths under test are the real ones (nothing is patched):

* ``GET  /api/whoami-v2``
* ``POST /api/repos/create`` (models, datasets, Spaces), ``DELETE /api/repos/delete``
* ``POST /api/validate-yaml`` (front matter must be a mapping; ``model-index`` is checked)
* ``GET  /api/{models|datasets|spaces}/{repo}[/revision/{rev}]`` (siblings, sha, cardData)
* ``GET  /api/{type}s/{repo}/tree/{rev}[/{path}]`` (``recursive``, ``expand``; a missing
  folder answers 404 with ``X-Error-Code: EntryNotFound``)
* ``POST /api/{type}s/{repo}/paths-info/{rev}``
* ``POST /api/{type}s/{repo}/preupload/{rev}`` (binary or large files go the LFS way)
* ``POST /{prefix}{repo}.git/info/lfs/objects/batch`` then ``PUT`` to the returned URL
* ``POST /api/{type}s/{repo}/commit/{rev}`` (NDJSON: header, file, lfsFile, deletedFile,
  deletedFolder; ``parentCommit`` is honoured)
* ``HEAD``/``GET /{prefix}{repo}/resolve/{rev}/{file}`` with ``X-Repo-Commit``, ``ETag``,
  ``X-Linked-Etag``/``X-Linked-Size`` for LFS files and ``Range`` support.

Errors: unknown repo -> 404 ``RepoNotFound``; unknown revision -> 404 ``RevisionNotFound``;
missing file/folder -> 404 ``EntryNotFound``; an ``Authorization`` header with a token other
than the configured one -> 401 "Invalid credentials in Authorization header"; a write
without a token -> 401. Anything else answers 501 naming the route, so a library call the
server does not know fails loudly instead of silently. Every request is recorded
(:attr:`HubTestServer.requests`) so tests can assert which code paths were exercised.

Repos live in a temporary folder: one content-addressed blob store plus an in-memory list
of commits per repo (each commit is a full snapshot ``path -> blob``).

Use it from tests::

    with HubTestServer() as hub:
        env = hub.env(hf_home=tmp_path / "hf")   # for a subprocess: HF_* set before import
        subprocess.run([sys.executable, "script.py"], env=env, check=True)
        assert hub.repo_files("user/model") == [...]
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

#: Token the server accepts by default (tests pass it to the client as HF_TOKEN).
DEFAULT_TOKEN = "hf_mtaffect_test_token"
DEFAULT_USER = "mtaffect-tester"

REPO_TYPES = ("model", "dataset", "space")
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_LFS_EXTENSIONS = {
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".parquet", ".arrow", ".npy", ".npz",
    ".pkl", ".pickle", ".onnx", ".msgpack", ".zip", ".gz", ".tar", ".png", ".jpg", ".jpeg", ".wav",
    ".mp4", ".joblib",
}
_LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
_GITATTRIBUTES = "".join(f"*{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in sorted(_LFS_EXTENSIONS))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class HubError(Exception):
    """An error answer: status, Hub error code (``X-Error-Code``) and message."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass
class Entry:
    """One file of a commit snapshot."""

    sha256: str
    size: int
    lfs: bool
    git_oid: str

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid

    def tree_json(self, path: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": "file", "oid": self.git_oid, "size": self.size, "path": path}
        if self.lfs:
            pointer = _lfs_pointer(self.sha256, self.size)
            payload["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(pointer)}
        return payload


@dataclass
class Commit:
    oid: str
    title: str
    description: str
    date: str
    parent: str | None
    files: dict[str, Entry]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    sdk: str | None = None
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    """What the server saw: tests assert on these to prove which library paths ran."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    authorized: bool


class _Store:
    """Repos, commits and blobs; all methods hold one lock (the server is threaded)."""

    def __init__(self, root: Path):
        self.root = root
        self.blobs = root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.pending_lfs: dict[str, int] = {}
        self.lock = threading.RLock()

    # -- blobs ------------------------------------------------------------------------------
    def put_blob(self, content: bytes) -> str:
        sha = hashlib.sha256(content).hexdigest()
        path = self.blobs / sha
        if not path.exists():
            tmp = path.with_suffix(f".tmp{threading.get_ident()}")
            tmp.write_bytes(content)
            os.replace(tmp, path)
        return sha

    def has_blob(self, sha: str) -> bool:
        return (self.blobs / sha).exists()

    def blob_path(self, sha: str) -> Path:
        return self.blobs / sha

    # -- repos ------------------------------------------------------------------------------
    def get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository {repo_type}s/{repo_id} not found", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool, sdk: str | None) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, "You already created this repo", headers={})
            repo = Repo(repo_type, repo_id, private, _now(), sdk)
            content = _GITATTRIBUTES.encode()
            files = {".gitattributes": Entry(self.put_blob(content), len(content), False, _git_blob_oid(content))}
            self._add_commit(repo, "initial commit", "", files, parent=None)
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self.lock:
            self.get_repo(repo_type, repo_id)
            del self.repos[(repo_type, repo_id)]

    def resolve(self, repo: Repo, revision: str) -> Commit:
        oid = repo.refs.get(revision, revision)
        commit = repo.commits.get(oid)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _add_commit(
        self, repo: Repo, title: str, description: str, files: dict[str, Entry], parent: str | None
    ) -> Commit:
        payload = json.dumps(
            [parent, title, time.time_ns(), sorted((p, e.sha256) for p, e in files.items())]
        ).encode()
        oid = hashlib.sha1(payload).hexdigest()
        commit = Commit(oid, title, description, _now(), parent, files)
        repo.commits[oid] = commit
        repo.refs["main"] = oid
        return commit

    def commit(self, repo: Repo, branch: str, lines: list[dict[str, Any]]) -> Commit:
        with self.lock:
            if branch not in repo.refs:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            head = repo.commits[repo.refs[branch]]
            if not lines or lines[0].get("key") != "header":
                raise HubError(400, "The first line of a commit payload must be its header")
            header = lines[0]["value"]
            parent = header.get("parentCommit")
            if parent is not None and parent != head.oid:
                raise HubError(412, f"A commit has happened since. Please refresh and try again ({parent})")
            files = dict(head.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                path = value.get("path", "")
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise HubError(400, f"Unsupported encoding {value.get('encoding')!r} for {path}")
                    content = base64.b64decode(value["content"])
                    files[path] = Entry(self.put_blob(content), len(content), False, _git_blob_oid(content))
                elif key == "lfsFile":
                    sha, size = value["oid"], int(value["size"])
                    if not self.has_blob(sha):
                        raise HubError(
                            400, f"Your push was rejected because an LFS pointer pointed to a file that does "
                            f"not exist. For instance: {path} - {sha}"
                        )
                    pointer = _lfs_pointer(sha, size)
                    files[path] = Entry(sha, size, True, _git_blob_oid(pointer))
                elif key == "deletedFile":
                    if path not in files:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    for name in [name for name in files if name.startswith(prefix)]:
                        del files[name]
                else:
                    raise HubError(501, f"Commit operation {key!r} is not implemented by the test Hub server")
            commit_payload = json.dumps([head.oid, header.get("summary", ""), time.time_ns()]).encode()
            oid = hashlib.sha1(commit_payload + json.dumps(sorted(files)).encode()).hexdigest()
            commit = Commit(
                oid, header.get("summary", ""), header.get("description", ""), _now(), head.oid, files
            )
            repo.commits[oid] = commit
            repo.refs[branch] = oid
            return commit


def _folders(files: dict[str, Entry]) -> set[str]:
    folders = set()
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    return folders


def _validate_card_metadata(content: str) -> list[str]:
    """What the Hub's metadata validation would reject (enough to catch a malformed card)."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
    if not match:
        return []
    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        return [f"YAML front matter is not valid YAML: {err}"]
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return ["YAML front matter must be a mapping"]
    errors = []
    for key in ("tags", "datasets", "metrics"):
        value = metadata.get(key)
        if value is not None and not isinstance(value, (list, str)):
            errors.append(f'"{key}" must be a list of strings')
    model_index = metadata.get("model-index")
    if model_index is not None:
        if not isinstance(model_index, list):
            return errors + ['"model-index" must be an array']
        for i, model in enumerate(model_index):
            if not isinstance(model, dict) or "name" not in model:
                errors.append(f'"model-index[{i}].name" is required')
                continue
            for j, result in enumerate(model.get("results") or []):
                where = f"model-index[{i}].results[{j}]"
                if not isinstance(result.get("task"), dict) or "type" not in result["task"]:
                    errors.append(f'"{where}.task.type" is required')
                dataset = result.get("dataset")
                if not isinstance(dataset, dict) or "type" not in dataset or "name" not in dataset:
                    errors.append(f'"{where}.dataset" needs "type" and "name"')
                metrics = result.get("metrics")
                if not isinstance(metrics, list) or not metrics:
                    errors.append(f'"{where}.metrics" must be a non-empty array')
                    continue
                for k, metric in enumerate(metrics):
                    if not isinstance(metric, dict) or "type" not in metric or "value" not in metric:
                        errors.append(f'"{where}.metrics[{k}]" needs "type" and "value"')
    return errors


def _card_data(store: _Store, commit: Commit) -> dict[str, Any] | None:
    entry = commit.files.get("README.md")
    if entry is None:
        return None
    text = store.blob_path(entry.sha256).read_text(encoding="utf-8", errors="replace")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


_REPO = r"(?P<repo>[^/]+/[^/]+?)"
_TYPES = r"(?P<type>models|datasets|spaces)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/api/whoami-v2$"), "whoami"),
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("DELETE", re.compile(r"^/api/repos/delete$"), "delete_repo"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("GET", re.compile(rf"^/api/{_TYPES}/{_REPO}(?:/revision/(?P<rev>[^/]+))?$"), "repo_info"),
    ("GET", re.compile(rf"^/api/{_TYPES}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
    ("POST", re.compile(rf"^/api/{_TYPES}/{_REPO}/paths-info/(?P<rev>[^/]+)$"), "paths_info"),
    ("POST", re.compile(rf"^/api/{_TYPES}/{_REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/{_TYPES}/{_REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("POST", re.compile(r"^/(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+?)\.git/info/lfs/objects/batch$"),
     "lfs_batch"),
    ("PUT", re.compile(r"^/_test_hub/lfs/(?P<oid>[0-9a-f]{64})$"), "lfs_upload"),
    ("GET", re.compile(r"^/(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"),
     "resolve"),
    ("HEAD", re.compile(r"^/(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"),
     "resolve"),
]
_WRITE_ACTIONS = {"create_repo", "delete_repo", "preupload", "commit", "lfs_batch"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    # Quiet: the test output should not carry an access log.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing ---------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        raw_path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        hub = self.server.hub
        status = 500
        authorized = False
        body = b""
        try:
            body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
            authorized = self._check_auth()
            for route_method, pattern, action in _ROUTES:
                match = pattern.match(raw_path)
                if route_method == method and match:
                    if action in _WRITE_ACTIONS and not authorized:
                        raise HubError(401, "You must be authenticated to write to the Hub (set HF_TOKEN)")
                    groups = {k: unquote(v) if v is not None else None for k, v in match.groupdict().items()}
                    status = getattr(self, f"_{action}")(method, groups, query, body, authorized)
                    break
            else:
                raise HubError(501, f"{method} {raw_path} is not implemented by the mtaffect test Hub server")
        except HubError as err:
            status = err.status
            self._send_json(err.status, {"error": err.message}, err.code, err.message, err.headers, method)
        except Exception as err:  # a server bug must surface as a 500 naming it, not hang the client
            status = 500
            self._send_json(500, {"error": f"test Hub server error: {err!r}"}, None, repr(err), {}, method)
        finally:
            with hub.lock:
                hub.requests.append(RecordedRequest(method, unquote(raw_path), query, status, authorized))

    def _check_auth(self) -> bool:
        header = self.headers.get("Authorization")
        if header is None:
            return False
        token = header.removeprefix("Bearer ").strip()
        if token != self.server.hub.token:
            raise HubError(401, "Invalid credentials in Authorization header")
        return True

    def _send_json(
        self,
        status: int,
        payload: Any,
        code: str | None = None,
        message: str | None = None,
        headers: dict | None = None,
        method: str = "GET",
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if code:
            self.send_header("X-Error-Code", code)
        if message:
            self.send_header("X-Error-Message", message.replace("\n", " ")[:500])
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def _repo(self, type_plural_or_prefix: str | None, repo_id: str, authorized: bool) -> Repo:
        repo_type = _repo_type(type_plural_or_prefix)
        with self.server.hub.store.lock:
            repo = self.server.hub.store.get_repo(repo_type, repo_id)
        if repo.private and not authorized:
            raise HubError(404, f"Repository {repo_type}s/{repo_id} not found", "RepoNotFound")
        return repo

    # -- routes -----------------------------------------------------------------------------
    def _whoami(self, method, groups, query, body, authorized) -> int:
        if not authorized:
            raise HubError(401, "Invalid credentials in Authorization header")
        hub = self.server.hub
        payload = {
            "type": "user", "name": hub.user, "fullname": hub.user, "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
        }
        self._send_json(200, payload)
        return 200

    def _create_repo(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        payload = json.loads(body or b"{}")
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        name = payload.get("name") or ""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", name):
            raise HubError(400, f"Invalid repo name {name!r}")
        namespace = payload.get("organization") or hub.user
        if namespace != hub.user and namespace not in hub.organizations:
            raise HubError(403, f"You don't have the rights to create a repo under the namespace {namespace!r}")
        sdk = payload.get("sdk")
        if repo_type == "space" and sdk not in ("gradio", "streamlit", "docker", "static"):
            raise HubError(400, "Spaces need an sdk: gradio, streamlit, docker or static")
        repo_id = f"{namespace}/{name}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        try:
            hub.store.create_repo(repo_type, repo_id, private, sdk)
        except HubError as err:
            if err.status == 409:
                err.headers = {}
                self._send_json(409, {"error": "You already created this repo", "url": hub.repo_url(repo_type, repo_id)})
                return 409
            raise
        self._send_json(200, {"url": hub.repo_url(repo_type, repo_id), "name": repo_id, "id": repo_id})
        return 200

    def _delete_repo(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        payload = json.loads(body or b"{}")
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or hub.user}/{payload.get('name')}"
        hub.store.delete_repo(repo_type, repo_id)
        self._send_json(200, {})
        return 200

    def _validate_yaml(self, method, groups, query, body, authorized) -> int:
        payload = json.loads(body or b"{}")
        errors = _validate_card_metadata(payload.get("content", ""))
        if errors:
            self._send_json(400, {"errors": [{"message": e} for e in errors], "warnings": []})
            return 400
        self._send_json(200, {"errors": [], "warnings": []})
        return 200

    def _repo_info(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        repo = self._repo(groups["type"], groups["repo"], authorized)
        with hub.store.lock:
            commit = hub.store.resolve(repo, groups["rev"] or "main")
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=entry.size, blobId=entry.git_oid)
                if entry.lfs:
                    sibling["lfs"] = {
                        "size": entry.size, "sha256": entry.sha256,
                        "pointerSize": len(_lfs_pointer(entry.sha256, entry.size)),
                    }
            siblings.append(sibling)
        card = _card_data(hub.store, commit)
        payload: dict[str, Any] = {
            "_id": hashlib.md5(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list((card or {}).get("tags") or []),
            "siblings": siblings,
        }
        if card is not None:
            payload["cardData"] = card
            if repo.repo_type == "model":
                payload["library_name"] = card.get("library_name")
                if card.get("model-index"):
                    payload["model-index"] = card["model-index"]
        if repo.repo_type == "space":
            payload.update(sdk=repo.sdk, runtime={"stage": "NO_APP_FILE", "hardware": {"current": None}})
        self._send_json(200, payload)
        return 200

    def _tree_entries(self, commit: Commit, prefix: str, recursive: bool, expand: bool) -> list[dict]:
        folders = _folders(commit.files)
        prefix = prefix.strip("/")
        if prefix and prefix not in folders:
            raise HubError(404, f"{prefix} does not exist on {commit.oid}", "EntryNotFound",
                           {"X-Repo-Commit": commit.oid})
        start = prefix + "/" if prefix else ""
        entries = []
        last_commit = {"id": commit.oid, "title": commit.title, "date": commit.date}
        for folder in sorted(folders):
            if folder.startswith(start) and (recursive or "/" not in folder[len(start):]):
                item = {"type": "directory", "oid": hashlib.sha1(f"{commit.oid}:{folder}".encode()).hexdigest(),
                        "size": 0, "path": folder}
                if expand:
                    item["lastCommit"] = last_commit
                entries.append(item)
        for path, entry in sorted(commit.files.items()):
            if path.startswith(start) and (recursive or "/" not in path[len(start):]):
                item = entry.tree_json(path)
                if expand:
                    item["lastCommit"] = last_commit
                entries.append(item)
        return entries

    def _tree(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        repo = self._repo(groups["type"], groups["repo"], authorized)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = query.get("expand", ["false"])[0].lower() in ("1", "true")
        with hub.store.lock:
            commit = hub.store.resolve(repo, groups["rev"])
            entries = self._tree_entries(commit, groups["path"] or "", recursive, expand)
        self._send_json(200, entries, headers={"X-Repo-Commit": commit.oid})
        return 200

    def _paths_info(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        repo = self._repo(groups["type"], groups["repo"], authorized)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            form = json.loads(body or b"{}")
            paths, expand = form.get("paths", []), bool(form.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), form.get("expand", ["false"])[0].lower() in ("1", "true")
        with hub.store.lock:
            commit = hub.store.resolve(repo, groups["rev"])
            folders = _folders(commit.files)
            result = []
            for path in paths:
                path = path.strip("/")
                if path in commit.files:
                    item = commit.files[path].tree_json(path)
                elif path in folders:
                    item = {"type": "directory", "oid": hashlib.sha1(f"{commit.oid}:{path}".encode()).hexdigest(),
                            "size": 0, "path": path}
                else:
                    continue
                if expand:
                    item["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
                result.append(item)
        self._send_json(200, result, headers={"X-Repo-Commit": commit.oid})
        return 200

    def _preupload(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        repo = self._repo(groups["type"], groups["repo"], authorized)
        if query.get("create_pr", ["0"])[0] in ("1", "true"):
            raise HubError(501, "Pull requests are not implemented by the mtaffect test Hub server")
        payload = json.loads(body or b"{}")
        with hub.store.lock:
            commit = hub.store.resolve(repo, groups["rev"])
        files = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item.get("sample", ""))
            binary = b"\0" in sample
            try:
                sample.decode("utf-8")
            except UnicodeDecodeError:
                binary = True
            lfs = (size >= _LFS_SIZE_THRESHOLD or binary or Path(path).suffix.lower() in _LFS_EXTENSIONS) and size > 0
            existing = commit.files.get(path)
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.lfs else existing.git_oid
            files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._send_json(200, {"files": files, "commitOid": commit.oid})
        return 200

    def _lfs_batch(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        self._repo(groups["prefix"], groups["repo"], authorized)
        payload = json.loads(body or b"{}")
        if payload.get("operation") != "upload":
            raise HubError(501, "Only LFS uploads are implemented by the mtaffect test Hub server")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            if hub.store.has_blob(oid):
                objects.append({"oid": oid, "size": size})
                continue
            with hub.store.lock:
                hub.store.pending_lfs[oid] = size
            objects.append({
                "oid": oid, "size": size, "authenticated": True,
                "actions": {"upload": {"href": f"{hub.url}/_test_hub/lfs/{oid}", "expires_in": 3600}},
            })
        self._send_json(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})
        return 200

    def _lfs_upload(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        oid = groups["oid"]
        with hub.store.lock:
            expected = hub.store.pending_lfs.get(oid)
        if expected is None:
            raise HubError(403, f"No LFS upload was announced for {oid}")
        if hashlib.sha256(body).hexdigest() != oid or len(body) != expected:
            raise HubError(400, f"Uploaded content does not match LFS oid {oid} / size {expected}")
        hub.store.put_blob(body)
        with hub.store.lock:
            hub.store.pending_lfs.pop(oid, None)
        self.send_response(200)
        self.send_header("ETag", f'"{oid}"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return 200

    def _commit(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        repo = self._repo(groups["type"], groups["repo"], authorized)
        if query.get("create_pr", ["0"])[0] in ("1", "true"):
            raise HubError(501, "Pull requests are not implemented by the mtaffect test Hub server")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        commit = hub.store.commit(repo, groups["rev"], lines)
        url = f"{hub.repo_url(repo.repo_type, repo.repo_id)}/commit/{commit.oid}"
        self._send_json(200, {"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None})
        return 200

    def _resolve(self, method, groups, query, body, authorized) -> int:
        hub = self.server.hub
        repo = self._repo(groups["prefix"], groups["repo"], authorized)
        with hub.store.lock:
            commit = hub.store.resolve(repo, groups["rev"])
        entry = commit.files.get(groups["path"])
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        size = entry.size
        start, end = 0, size - 1
        status = 200
        range_header = self.headers.get("Range")
        if range_header and method == "GET":
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if match:
                if match.group(1):
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else size - 1
                else:  # suffix range: the last N bytes
                    start = max(size - int(match.group(2)), 0)
                end = min(end, size - 1)
                if start >= size and size > 0:
                    raise HubError(416, f"Range {range_header} not satisfiable for {size} bytes",
                                   headers={"Content-Range": f"bytes */{size}"})
                status = 206
        length = max(end - start + 1, 0)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("X-Repo-Commit", commit.oid)
        self.send_header("ETag", f'"{entry.etag}"')
        if entry.lfs:
            self.send_header("X-Linked-Etag", f'"{entry.sha256}"')
            self.send_header("X-Linked-Size", str(size))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(length if method == "GET" else size))
        self.end_headers()
        if method == "GET" and length:
            with open(hub.store.blob_path(entry.sha256), "rb") as handle:
                handle.seek(start)
                remaining = length
                while remaining:
                    chunk = handle.read(min(1 << 20, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
        return status


def _repo_type(type_plural_or_prefix: str | None) -> str:
    if not type_plural_or_prefix:
        return "model"
    return type_plural_or_prefix.strip("/").removesuffix("s")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: HubTestServer


class HubTestServer:
    """A Hub-compatible server on ``127.0.0.1`` for tests; see the module docstring.

    Args:
        token: the only token accepted for writes (and for reads when a token is sent).
        user: the namespace ``create_repo`` uses when none is given; the token's user.
        organizations: further namespaces the token may create repos in.
        root: where blobs are kept (a temporary folder, removed on :meth:`stop`, by default).
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        user: str = DEFAULT_USER,
        organizations: tuple[str, ...] = (),
        root: str | os.PathLike | None = None,
    ):
        self.token = token
        self.user = user
        self.organizations = tuple(organizations)
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="mtaffect-test-hub-"))
        self.store = _Store(self.root)
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> HubTestServer:
        server = _HTTPServer(("127.0.0.1", 0), _Handler)
        server.hub = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="test-hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> HubTestServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("The test Hub server is not running: call start() first.")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.url}/{_URL_PREFIX[repo_type]}{repo_id}"

    # -- client environment -----------------------------------------------------------------
    def env(
        self, hf_home: str | os.PathLike, token: str | None = None, base: dict[str, str] | None = None
    ) -> dict[str, str]:
        """Environment for a subprocess whose HF libraries must talk only to this server.

        The variables must be set before ``huggingface_hub`` is imported (it reads them at
        import), which is why the round trips run in subprocesses.
        """
        env = dict(os.environ if base is None else base)
        for key in list(env):
            if key.startswith(("HF_", "HUGGINGFACE_")) or key in ("TRANSFORMERS_CACHE",):
                del env[key]
        env.update(
            HF_ENDPOINT=self.url,
            HF_TOKEN=self.token if token is None else token,
            HF_HOME=str(hf_home),
            HF_HUB_DISABLE_XET="1",
            HF_HUB_OFFLINE="0",
            HF_DATASETS_OFFLINE="0",
            TRANSFORMERS_OFFLINE="0",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_DATASETS_DISABLE_PROGRESS_BARS="1",
            HF_HUB_ETAG_TIMEOUT="30",
            HF_HUB_DOWNLOAD_TIMEOUT="30",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            TOKENIZERS_PARALLELISM="false",
            WANDB_DISABLED="true",
        )
        return env

    # -- inspection -------------------------------------------------------------------------
    def has_repo(self, repo_id: str, repo_type: str = "model") -> bool:
        with self.store.lock:
            return (repo_type, repo_id) in self.store.repos

    def repo_files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[str]:
        with self.store.lock:
            repo = self.store.get_repo(repo_type, repo_id)
            return sorted(self.store.resolve(repo, revision).files)

    def read_file(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> bytes:
        with self.store.lock:
            repo = self.store.get_repo(repo_type, repo_id)
            entry = self.store.resolve(repo, revision).files[path]
        return self.store.blob_path(entry.sha256).read_bytes()

    def is_lfs(self, repo_id: str, path: str, repo_type: str = "model") -> bool:
        with self.store.lock:
            repo = self.store.get_repo(repo_type, repo_id)
            return self.store.resolve(repo, "main").files[path].lfs

    def commit_titles(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """Commit titles of ``main``, oldest first."""
        with self.store.lock:
            repo = self.store.get_repo(repo_type, repo_id)
            titles, oid = [], repo.refs["main"]
            while oid is not None:
                commit = repo.commits[oid]
                titles.append(commit.title)
                oid = commit.parent
            return titles[::-1]

    def requests_matching(self, method: str, pattern: str) -> list[RecordedRequest]:
        regex = re.compile(pattern)
        with self.lock:
            return [r for r in self.requests if r.method == method and regex.search(r.path)]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()


def free_port() -> int:
    """A TCP port nothing listens on right now (for 'unreachable endpoint' tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
