"""Output folders the user owns: mtaffect replaces only what it wrote there, and only whole.

Every command that writes a folder (``data convert``, ``extract``, ``weak-label``, ``train``,
``run``, ``report``) goes through :class:`OutputFolder`, so they share one set of rules:

* A folder mtaffect did not write is never written into unless the user says so
  (``overwrite=True`` / ``--overwrite``), and even then the user's own files are kept: a new
  file whose name is already taken by a file mtaffect did not write stops the command before
  anything is moved.
* What mtaffect wrote is listed, file by file, in a manifest (:data:`MANIFEST_NAME`) inside
  the folder. ``--overwrite`` removes exactly those files (and the folders they leave empty)
  and reports them.
* Results are written into a scratch folder beside the target (same file system, so moving
  a file into place is a rename) and moved in only once complete: an interrupted command
  leaves the earlier result as it was. The manifest is rewritten before and after the moves,
  so even a crash inside the (millisecond) move leaves no mtaffect file unlisted.

Commands that add to a folder as they go (the study's ``results.jsonl``, extraction shards)
call :meth:`OutputFolder.record` for each file they finish, so ``--resume`` knows what is
theirs and ``--overwrite`` can remove it.

Examples:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "out").mkdir(); _ = (root / "out" / "notes.txt").write_text("mine")
    >>> folder = OutputFolder(root / "out", command="mtaffect example", overwrite=True)
    >>> with folder.staging() as scratch:
    ...     _ = (scratch / "result.json").write_text("{}")
    >>> sorted(p.name for p in (root / "out").iterdir())
    ['.mtaffect-manifest.json', 'notes.txt', 'result.json']
    >>> folder.written()
    ['result.json']
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The file, inside an output folder, listing what mtaffect wrote there.
MANIFEST_NAME = ".mtaffect-manifest.json"
#: Scratch folders are named ``.<target>.mtaffect-partial-<pid>-<random>`` beside the target.
SCRATCH_MARK = ".mtaffect-partial-"


class OutputFolderError(FileExistsError):
    """The output folder holds something mtaffect will not touch (one clear line for the CLI)."""


@dataclass
class Commit:
    """What moving a finished result into place did.

    Args:
        written: files (relative paths) the result consists of.
        removed: files of an earlier mtaffect result that are gone now (replaced or deleted).
        kept: files in the folder that mtaffect did not write, left untouched.
    """

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def summary(self, target: str | Path) -> str:
        """One line for the user: what was replaced, what was kept."""
        parts = []
        if self.removed:
            parts.append(f"replaced {len(self.removed)} file(s) mtaffect wrote earlier ({_short(self.removed)})")
        if self.kept:
            parts.append(f"kept {len(self.kept)} file(s) mtaffect did not write ({_short(self.kept)})")
        return f"{target}: " + "; ".join(parts) if parts else ""


class OutputFolder:
    """A folder a command writes into, following the rules in the module docstring.

    Args:
        target: the folder (created if missing).
        command: what writes it (``"mtaffect data convert"``), recorded in the manifest and
            named in messages.
        overwrite: the user allows replacing what mtaffect wrote there earlier and writing
            next to files of their own.
        resume: the command continues (or redoes) its own earlier output (the study,
            extraction): files the same command wrote are accepted without ``overwrite``;
            another command's output and the user's own files are still refused.
        flag: how the user says ``overwrite`` (named in messages).
        resume_flag: how the user says ``resume``, for commands that can continue their
            earlier output (named in the message refusing it).
    """

    def __init__(
        self,
        target: str | Path,
        command: str,
        overwrite: bool = False,
        resume: bool = False,
        flag: str = "--overwrite",
        resume_flag: str | None = None,
    ) -> None:
        self.target = Path(target).expanduser()
        self.command = command
        self.overwrite = overwrite
        self.resume = resume
        self.flag = flag
        self.resume_flag = resume_flag
        self.last_commit = Commit()

    # ---- reading the folder ----------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.target / MANIFEST_NAME

    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict (``{}`` when there is none)."""
        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            raise OutputFolderError(
                f"{self.manifest_path}: unreadable manifest of what mtaffect wrote in {self.target}; "
                "delete the folder yourself or choose another one."
            ) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("files", []), list):
            raise OutputFolderError(f"{self.manifest_path}: not an mtaffect manifest; choose another folder.")
        return payload

    def written(self) -> list[str]:
        """Relative paths of the files mtaffect wrote (per the manifest); ``dir/`` = all of a folder."""
        return sorted(str(name) for name in self.manifest().get("files", []))

    def _ours(self, name: str, written: list[str]) -> bool:
        return name in written or any(entry.endswith("/") and name.startswith(entry) for entry in written)

    def present(self) -> list[str]:
        """Every file in the folder (relative paths), the manifest excluded."""
        if not self.target.is_dir():
            return []
        found = []
        for root, dirs, files in os.walk(self.target):
            dirs[:] = sorted(dirs)
            for name in files:
                relative = (Path(root) / name).relative_to(self.target).as_posix()
                if relative != MANIFEST_NAME:
                    found.append(relative)
        return sorted(found)

    def user_files(self) -> list[str]:
        """Files in the folder that mtaffect did not write."""
        written = self.written()
        return [name for name in self.present() if not self._ours(name, written)]

    # ---- the checks ------------------------------------------------------------------

    def check(self, will_write: Iterable[str] = ()) -> None:
        """Refuse, before any work starts, a folder this command may not write.

        Args:
            will_write: file names the command will write, when known in advance: a user's
                file of the same name stops the command now rather than at the end.

        Raises:
            OutputFolderError: the folder holds an earlier result and neither ``overwrite``
                nor ``resume`` was given, or holds files of the user's and ``overwrite`` was
                not given, or a user's file is in the way of ``will_write``.
        """
        target = self.target
        if target.exists() and not target.is_dir():
            raise OutputFolderError(f"{target}: exists and is not a folder; choose another output folder.")
        self._check_writable()
        if not target.exists():
            return
        ours = self.written()
        mine = self.user_files()
        previous = self.manifest().get("written_by", "mtaffect")
        clashes = sorted(set(will_write) & set(mine))
        if clashes:
            raise OutputFolderError(
                f"{target}: {_short(clashes)} would be overwritten but mtaffect did not write "
                f"{'it' if len(clashes) == 1 else 'them'}; move {'it' if len(clashes) == 1 else 'them'} "
                "away or choose another output folder. Nothing was changed."
            )
        continuing = self.resume and bool(ours) and previous == self.command
        if mine and not self.overwrite and not continuing:
            raise OutputFolderError(
                f"{target}: not empty and holds {len(mine)} file(s) mtaffect did not write ({_short(mine)}); "
                f"choose another output folder, or pass {self.flag} to write next to them "
                "(your files are kept). Nothing was changed."
            )
        if ours and not self.overwrite and not continuing:
            resume = f"{self.resume_flag} to continue it, " if self.resume_flag and previous == self.command else ""
            raise OutputFolderError(
                f"{target}: holds the output of an earlier `{previous}` ({len(ours)} file(s)); pass "
                f"{resume}{self.flag} to replace it (only those files), or choose another output folder."
            )

    def _check_writable(self) -> None:
        """The target (or the folder it will be made in) must be writable: say so now, naming it.

        mtaffect writes beside the target too (its scratch folder), so the parent must be
        writable as well; the error names the folder the user chose, not the scratch folder.
        """
        existing = self.target if self.target.exists() else self.target.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        for folder in {existing, self.target.parent} if self.target.parent.exists() else {existing}:
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError(
                    f"{self.target}: cannot write in {folder} (permission denied); choose an output folder in a "
                    "place you can write to. Nothing was written."
                )

    # ---- writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self, will_write: Iterable[str] = (), replace_all: bool = True, check: bool = True) -> Iterator[Path]:
        """A scratch folder beside the target; on a clean exit its files replace mtaffect's earlier ones.

        An exception (or Ctrl-C) inside the block removes the scratch folder and leaves the
        target as it was. The :class:`Commit` of the last staging is kept in
        :attr:`last_commit`.

        Args:
            will_write: names checked against the user's files before the block runs.
            replace_all: the new files are the whole result, so mtaffect's earlier files not
                among them are removed; ``False`` adds or replaces files only (a report
                written next to results recorded in place).
            check: run :meth:`check` first (off for a command that checked at its start).
        """
        if check:
            self.check(will_write)
        scratch = self.scratch_folder()
        payload = scratch / "output"
        payload.mkdir()
        try:
            yield payload
            self.last_commit = self._commit(payload, replace_all)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def scratch_folder(self) -> Path:
        """A new scratch folder beside the target (removing stale ones of dead processes)."""
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale_scratch()
            return Path(tempfile.mkdtemp(prefix=f".{self.target.name}{SCRATCH_MARK}{os.getpid()}-", dir=parent))
        except PermissionError:
            raise PermissionError(
                f"{self.target}: cannot write in {parent} (permission denied); choose an output folder "
                "in a place you can write to."
            ) from None

    def persistent_scratch(self, purpose: str) -> Path:
        """A scratch folder with a fixed name beside the target (``.<target>.mtaffect-<purpose>``).

        For writers whose partial state is worth keeping (the Trainer's checkpoints): a rerun
        finds it. Not created here; its parent is, and must be writable.
        """
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            parent = None  # type: ignore[assignment]
        if parent is None or not os.access(self.target.parent, os.W_OK):
            raise PermissionError(
                f"{self.target}: cannot write in {self.target.parent} (permission denied); choose an output "
                "folder in a place you can write to."
            )
        return parent / f".{self.target.name}.mtaffect-{purpose}"

    def commit(self, folder: str | Path, replace_all: bool = True) -> Commit:
        """Move the finished files of ``folder`` (a scratch folder beside the target) into place, then remove it."""
        folder = Path(folder)
        try:
            self.last_commit = self._commit(folder, replace_all)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return self.last_commit

    def _remove_stale_scratch(self) -> None:
        prefix = f".{self.target.name}{SCRATCH_MARK}"
        for candidate in self.target.parent.glob(prefix + "*"):
            pid = candidate.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                logger.info("Removing %s, the scratch folder of an interrupted mtaffect process.", candidate)
                shutil.rmtree(candidate, ignore_errors=True)

    def _commit(self, payload: Path, replace_all: bool = True) -> Commit:
        (payload / MANIFEST_NAME).unlink(missing_ok=True)
        new = sorted(
            (Path(root) / name).relative_to(payload).as_posix()
            for root, _, files in os.walk(payload)
            for name in files
        )
        target = self.target
        old = self.written() if target.exists() else []
        if target.exists() and not any(target.iterdir()):
            target.rmdir()
        if not target.exists():
            # Nothing to keep: the whole folder is renamed into place in one step.
            self._write_manifest(payload, new)
            os.rename(payload, target)
            return Commit(written=new)
        mine = set(self.user_files())
        blocked = sorted(
            name for name in new if name in mine or any(prefix in mine for prefix in _parents(name))
        ) + sorted(name for name in new if (target / name).is_dir())
        if blocked:
            raise OutputFolderError(
                f"{target}: {_short(blocked)} would be overwritten but mtaffect did not write "
                f"{'it' if len(blocked) == 1 else 'them'}; move {'it' if len(blocked) == 1 else 'them'} away "
                f"or choose another output folder. The earlier result is unchanged."
            )
        # First list old and new together, so an interruption while moving leaves nothing unlisted.
        self._write_manifest(target, sorted(set(old) | set(new)))
        stale = sorted(set(old) - set(new)) if replace_all else []
        for name in stale:
            _remove(target / name)
        for name in new:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(payload / name, destination)
        _remove_empty_parents(target, stale)
        self._write_manifest(target, new if replace_all else sorted(set(old) | set(new)))
        removed = sorted(set(old)) if replace_all else sorted(set(old) & set(new))
        commit = Commit(written=new, removed=removed, kept=sorted(mine))
        if commit.removed or commit.kept:
            logger.info("%s", commit.summary(target))
        return commit

    def record(self, names: Iterable[str]) -> None:
        """Add files written in place (appended results, finished shards) to the manifest.

        A name ending in ``/`` claims a whole folder (everything ever written under it).
        """
        names = [Path(name).as_posix() + ("/" if str(name).endswith("/") else "") for name in names]
        current = self.written()
        if set(names) <= set(current) and self.manifest_path.exists():
            return
        self.target.mkdir(parents=True, exist_ok=True)
        self._write_manifest(self.target, sorted(set(current) | set(names)))

    def clear(self) -> list[str]:
        """Remove every file mtaffect wrote here (an ``--overwrite`` of an in-place writer); returns them."""
        written = self.written()
        for name in written:
            _remove(self.target / name)
        _remove_empty_parents(self.target, written)
        if written:
            self._write_manifest(self.target, [])
            logger.info("%s: removed %d file(s) mtaffect wrote earlier (%s).", self.target, len(written), _short(written))
        return written

    def _write_manifest(self, folder: Path, files: list[str]) -> None:
        record = {
            "written_by": self.command,
            "note": "Files mtaffect wrote in this folder; --overwrite removes only these. Other files are yours.",
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": files,
        }
        tmp = folder / (MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, folder / MANIFEST_NAME)


def _remove(path: Path) -> None:
    """A file, or a whole folder for a ``dir/`` manifest entry; absent is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _parents(name: str) -> list[str]:
    parts = name.rstrip("/").split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _remove_empty_parents(root: Path, names: Iterable[str]) -> None:
    """Remove the folders ``names`` lived in if nothing else is left in them (deepest first)."""
    folders = {prefix for name in names for prefix in _parents(name)}
    for folder in sorted(folders, key=lambda f: f.count("/"), reverse=True):
        with contextlib.suppress(OSError):
            (root / folder).rmdir()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _short(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
