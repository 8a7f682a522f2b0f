"""The gallery file bound to the in-memory gallery: the durable copy, shared by every writer.

A :class:`GalleryStore` binds one :class:`~.model.Gallery` to one file (:mod:`.file_format`)
and keeps every acknowledged change:
- :meth:`GalleryStore.commit` applies a change and saves it as one step. When the save fails
  the change is undone and :class:`GalleryNotSaved` raised, so success always means on disk.
- Several processes may write the same file (two nodes, a node and the ``face-recog`` CLI).
  Writers take an advisory lock (``.<name>.lock`` beside the file) and, when the file changed
  since this store last read or wrote it, merge it in before writing
  (:meth:`~.model.Gallery.join`, the same rule that merges other robots' copies).
  :meth:`GalleryStore.reload` merges the same way for readers that poll, and
  :meth:`GalleryStore.absorb` merges a change from another robot and saves it. The store
  remembers the identity and digest of what it wrote under the same lock as the write, so its
  own saves are never mistaken for someone else's.
- A forget leaves no copy of the person behind in this folder: after a save that holds a new
  forget, temp files of the gallery are deleted, a moved-aside file this code can read (made by
  another model) is rewritten without the forgotten people, and one it cannot read (corrupt, a
  newer format) is deleted, since it may hold them.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import GalleryError, GalleryNotRegular
from .file_format import decode, encode, file_model
from .files import (FileSig, content_digest, move_aside, moved_aside, read_regular,
                    remove_stale_temps, stat_regular, write_atomic)
from .model import Gallery
from .options import DEFAULT_MAX_SAMPLES_PER_PERSON
from .replica import GalleryState

T = TypeVar("T")


class GalleryNotSaved(GalleryError):
    """A change could not be written; it was undone, so memory and file still agree."""


@dataclass
class _Synced:
    """What this store last read or wrote."""

    sig: FileSig | None  # None: the file did not exist
    digest: str | None  # of the file's bytes
    contents: str | None = None  # the gallery's digest() then


class GalleryStore:
    """One gallery file and the in-memory gallery it holds; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()  # one save/reload at a time in this process
        self._synced: _Synced | None = None  # None: never read or written by this store
        self._bad_sig: FileSig | None = None  # an unusable file already reported by reload()
        self._scrubbed_forgets = 0  # forgets whose leftovers were scrubbed
        self._scrubbed: list[str] = []  # what scrubs deleted or rewrote, until taken

    # ------------------------------------------------------------------ opening
    def load(self, embedding_space: str, dim: int, *,
             max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
             node_id: str | None = None) -> Gallery:
        """Read the file made by model ``embedding_space``/``dim``.

        Raises FileNotFoundError/OSError for I/O problems, and :class:`GalleryCorrupt`,
        :class:`GalleryMismatch`, :class:`GalleryVersionError` or :class:`GalleryNotRegular` for
        unusable contents. ``max_samples_per_person`` is the cap of a file that sets none
        (format version 1); ``node_id`` names this process in the changes it makes.
        """
        gallery = Gallery(embedding_space, dim, max_samples_per_person=max_samples_per_person,
                          node_id=node_id)
        with self._lock:
            data, sig = read_regular(self.path)
            contents = decode(self.path, data, embedding_space, int(dim))
            gallery.load(contents.state, contents.created_at, contents.updated_at,
                         contents.configured_cap)
            self._synced = _Synced(sig, content_digest(data), gallery.digest())
            self._scrubbed_forgets = gallery.forgets
        return gallery

    def open(self, embedding_space: str, dim: int, *, move_aside_bad: bool = True,
             max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
             node_id: str | None = None) -> tuple[Gallery, str | None]:
        """Load the file or start empty; returns ``(gallery, warning or None)``.

        A missing file gives an empty gallery. An unusable one (corrupt, other model, newer
        format) is renamed to ``<path>.bad-<UTC time>`` and an empty gallery is returned with a
        warning naming both paths; with ``move_aside_bad=False`` the :class:`GalleryError` is
        raised instead. A path that is not a regular file raises :class:`GalleryNotRegular`
        either way. Stale temp files left by crashed saves are removed first.
        """
        remove_stale_temps(self.path)
        try:
            return self.load(embedding_space, dim, max_samples_per_person=max_samples_per_person,
                             node_id=node_id), None
        except FileNotFoundError:
            warning = None
        except GalleryNotRegular:
            raise
        except GalleryError as err:
            if not move_aside_bad:
                raise
            bad = move_aside(self.path)
            warning = (
                f"gallery {self.path} could not be used ({err}); moved it to {bad} and started an "
                f"empty gallery. Restore it by moving {bad} back to {self.path}; until then a "
                "forget deletes it if this code cannot read it (it may hold that person)."
            )
        self._synced = _Synced(None, None)
        return Gallery(embedding_space, dim, max_samples_per_person=max_samples_per_person,
                       node_id=node_id), warning

    # ------------------------------------------------------------------ writing
    def save(self, gallery: Gallery) -> None:
        """Write ``gallery`` (after merging changes another process wrote since we last synced)."""
        self.commit(gallery, lambda: None)

    def commit(self, gallery: Gallery, change: Callable[[], T]) -> T:
        """Run ``change`` (a mutation of ``gallery``) and save the result as one step.

        Under this store's lock and the file's writers' lock: take in what other writers saved,
        apply the change, write. If the write fails (read-only folder, full disk, ...), the
        change is undone and :class:`GalleryNotSaved` names the reason; exceptions from
        ``change`` itself (bad name, unknown person) pass through with nothing changed.
        """
        return self._commit(gallery, change, always=True)

    def absorb(self, gallery: Gallery, theirs: GalleryState) -> bool:
        """Merge a change that came from another robot and save it (only when it changed
        something here); True when the gallery changed. GalleryNotSaved: undone, as commit."""
        return self._commit(gallery, lambda: gallery.join(theirs, announce=False), always=False)

    def _commit(self, gallery: Gallery, change: Callable[[], T], always: bool) -> T:
        with self._lock, _writers_lock(self.path):
            if self._synced is not None:
                try:
                    self._take_in_outside_changes(gallery)
                except (GalleryError, OSError) as exc:  # a FIFO swapped in, unreadable, corrupt
                    raise GalleryNotSaved(
                        f"the gallery {self.path} could not be saved ({_reason(exc)}); nothing "
                        "was changed") from None
            before = gallery.checkpoint()
            result = change()
            if always or self._synced is None or gallery.digest() != self._synced.contents:
                try:
                    self._write(gallery)
                except OSError as exc:
                    gallery.restore(before)
                    raise GalleryNotSaved(f"the gallery {self.path} could not be saved "
                                          f"({_reason(exc)}); the change was undone") from None
            if gallery.forgets > self._scrubbed_forgets:
                self._scrub(gallery)
            return result

    def _write(self, gallery: Gallery) -> None:
        state = gallery.checkpoint()
        current = stat_regular(self.path)
        if current is not None and current == self._bad_sig:
            move_aside(self.path)  # a bad file reload() reported: kept for the user, not replaced
        data = encode(gallery.embedding_space, gallery.dim, state.state, state.created_at,
                      state.updated_at, state.configured_cap)
        sig = write_atomic(self.path, data)
        self._synced = _Synced(sig, content_digest(data), gallery.digest())
        self._bad_sig = None

    def _scrub(self, gallery: Gallery) -> None:
        """Leave no forgotten person in this folder (see the module docstring). Runs under the
        writers' lock, so no save is in flight and every temp file is a dead save's."""
        done = [f"deleted {p}" for p in remove_stale_temps(self.path, all_of_them=True)]
        forgets = GalleryState(ops={k: tuple(op for op in ops if op.is_forget)
                                    for k, ops in gallery.checkpoint().state.ops.items()})
        for bad in moved_aside(self.path):
            try:
                data, _ = read_regular(bad)
                space, dim = file_model(bad, data)
                aside = Gallery(space, dim, max_samples_per_person=None)
                contents = decode(bad, data, space, dim)
                aside.load(contents.state, contents.created_at, contents.updated_at,
                           contents.configured_cap)
                if aside.join(forgets):
                    kept = aside.checkpoint()
                    write_atomic(bad, encode(space, dim, kept.state, kept.created_at,
                                             kept.updated_at, kept.configured_cap))
                    done.append(f"rewrote {bad} without the forgotten")
            except (GalleryError, OSError):
                with contextlib.suppress(OSError):
                    os.unlink(bad)
                    done.append(f"deleted {bad} (unreadable; it may hold someone forgotten)")
        self._scrubbed_forgets = gallery.forgets
        self._scrubbed += done

    def take_scrubbed(self) -> list[str]:
        """What forgets deleted or rewrote in this folder since the last call (to log)."""
        with self._lock:
            done, self._scrubbed = self._scrubbed, []
            return done

    # ------------------------------------------------------------------ reading others' changes
    def reload(self, gallery: Gallery) -> bool:
        """Take in changes another process saved to the file; True when ``gallery`` changed.

        Our own saves are recognised and skipped. Local changes are never dropped: the file is
        merged in, not swapped in. A missing file changes nothing. If the new file is unusable
        the :class:`GalleryError` is raised once and the current contents are kept (and the bad
        file moved aside before our next save replaces it).
        """
        with self._lock:
            return self._take_in_outside_changes(gallery)

    def _take_in_outside_changes(self, gallery: Gallery) -> bool:
        current = stat_regular(self.path)
        synced = self._synced or _Synced(None, None)
        if current is None or current == synced.sig or current == self._bad_sig:
            return False
        data, sig = read_regular(self.path)
        digest = content_digest(data)
        if digest == synced.digest:  # same bytes (touched, copied back): nothing new
            self._synced = _Synced(sig, digest, synced.contents)
            return False
        try:
            contents = decode(self.path, data, gallery.embedding_space, gallery.dim)
        except GalleryError:
            self._bad_sig = sig
            raise
        changed = gallery.join(contents.state)
        # The file now holds less than this copy when it changed: the next save writes it.
        self._synced = _Synced(sig, digest, None if changed else gallery.digest())
        return changed


def load_gallery(path: str | os.PathLike[str], embedding_space: str, dim: int, *,
                 max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON) -> Gallery:
    """Read a gallery file once (see :meth:`GalleryStore.load`)."""
    return GalleryStore(path).load(
        embedding_space, dim, max_samples_per_person=max_samples_per_person
    )


def save_gallery(gallery: Gallery, path: str | os.PathLike[str]) -> None:
    """Write ``gallery`` to ``path`` atomically, replacing whatever the file held (a new store
    has not read the file, so there is nothing to merge)."""
    GalleryStore(path).save(gallery)


def _reason(exc: Exception) -> str:
    """An error's one-line reason: the OS's text (errno's), or the exception's message."""
    return getattr(exc, "strerror", None) or str(exc)


@contextlib.contextmanager
def _writers_lock(path: Path) -> Iterator[None]:
    """Advisory lock shared by every process that writes ``path`` (``.<name>.lock`` beside it).

    Filesystems without flock (some network mounts) fall back to no lock: saves stay atomic,
    and concurrent writers there are merged on the next reload instead of at the save. A folder
    where the lock cannot be created (read-only, missing permission) cannot take the save either:
    the write then fails and the change is undone, so no lock is needed.
    """
    try:
        os.makedirs(path.parent, mode=0o700, exist_ok=True)
        fd = os.open(path.parent / f".{path.name}.lock",
                     os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)  # closing releases the lock
