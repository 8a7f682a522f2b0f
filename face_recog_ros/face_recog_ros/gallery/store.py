"""The gallery file bound to the in-memory gallery: one truth shared by every writer.

A :class:`GalleryStore` binds one :class:`~.model.Gallery` to one file (:mod:`.file_format`)
and keeps every acknowledged change:
- :meth:`GalleryStore.commit` applies a change and saves it as one step. When the save fails
  the change is undone and :class:`GalleryNotSaved` raised, so success always means on disk.
- Several processes may write the same file (two nodes, a node and the ``face-recog`` CLI).
  Writers take an advisory lock (``.<name>.lock`` beside the file) and, when the file changed
  since this store last read or wrote it, merge those changes in before writing
  (:meth:`~.model.Gallery.merge`). :meth:`GalleryStore.reload` merges the same way for
  readers that poll. The store remembers the identity and digest of what it wrote under the
  same lock as the write, so its own saves are never mistaken for someone else's.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .file_format import (FileSig, GalleryError, GalleryNotRegular, content_digest, decode, encode,
                          move_aside, read_regular, remove_stale_temps, stat_regular, write_atomic)
from .model import Gallery, Person
from .options import DEFAULT_MAX_SAMPLES_PER_PERSON, GalleryOptions

T = TypeVar("T")


class GalleryNotSaved(GalleryError):
    """A change could not be written; it was undone, so memory and file still agree."""


@dataclass
class _Synced:
    """What this store last read or wrote: the base of the next merge."""

    sig: FileSig | None  # None: the file did not exist
    digest: str | None
    revs: dict[str, str] = field(default_factory=dict)


class GalleryStore:
    """One gallery file and the in-memory gallery it holds; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()  # one save/reload at a time in this process
        self._synced: _Synced | None = None  # None: never read or written by this store
        self._bad_sig: FileSig | None = None  # an unusable file already reported by reload()

    # ------------------------------------------------------------------ opening
    def load(self, embedding_space: str, dim: int, *,
             max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
             options: GalleryOptions | None = None) -> Gallery:
        """Read the file made by model ``embedding_space``/``dim``.

        Raises FileNotFoundError/OSError for I/O problems, and :class:`GalleryCorrupt`,
        :class:`GalleryMismatch`, :class:`GalleryVersionError` or :class:`GalleryNotRegular` for
        unusable contents. Samples above ``max_samples_per_person`` in the file are kept until
        that person changes. ``max_samples_per_person`` and ``options`` are the Gallery's.
        """
        gallery = Gallery(embedding_space, dim, max_samples_per_person=max_samples_per_person,
                          options=options)
        with self._lock:
            data, sig = read_regular(self.path)
            people, created_at, updated_at = decode(self.path, data, embedding_space, int(dim))
            gallery.load_records(people, created_at, updated_at)
            self._synced = _Synced(sig, content_digest(data), _revs(people))
        return gallery

    def open(self, embedding_space: str, dim: int, *, move_aside_bad: bool = True,
             max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
             options: GalleryOptions | None = None) -> tuple[Gallery, str | None]:
        """Load the file or start empty; returns ``(gallery, warning or None)``.

        A missing file gives an empty gallery. An unusable one (corrupt, other model, newer
        format) is renamed to ``<path>.bad-<UTC time>`` - never modified or deleted - and an
        empty gallery is returned with a warning naming both paths; with
        ``move_aside_bad=False`` the :class:`GalleryError` is raised instead. A path that is not
        a regular file raises :class:`GalleryNotRegular` either way. Stale temp files left by
        crashed saves are removed first.
        """
        remove_stale_temps(self.path)
        try:
            return self.load(embedding_space, dim, max_samples_per_person=max_samples_per_person,
                             options=options), None
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
                f"empty gallery. Nothing was deleted: restore it by moving {bad} back to "
                f"{self.path}."
            )
        self._synced = _Synced(None, None)
        return Gallery(embedding_space, dim, max_samples_per_person=max_samples_per_person,
                       options=options), warning

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
            try:
                self._write(gallery)
            except OSError as exc:
                gallery.restore(before)
                raise GalleryNotSaved(f"the gallery {self.path} could not be saved "
                                      f"({_reason(exc)}); the change was undone") from None
            return result

    def _write(self, gallery: Gallery) -> None:
        state = gallery.checkpoint()
        current = stat_regular(self.path)
        if current is not None and current == self._bad_sig:
            move_aside(self.path)  # a bad file reload() reported: kept for the user, not replaced
        data = encode(gallery.embedding_space, gallery.dim, state.people, state.created_at,
                      state.updated_at)
        sig = write_atomic(self.path, data)
        self._synced = _Synced(sig, content_digest(data), _revs(state.people))
        self._bad_sig = None

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
            self._synced = _Synced(sig, digest, synced.revs)
            return False
        try:
            people, created_at, updated_at = decode(
                self.path, data, gallery.embedding_space, gallery.dim
            )
        except GalleryError:
            self._bad_sig = sig
            raise
        changed = gallery.merge(synced.revs, people, created_at=created_at, updated_at=updated_at)
        self._synced = _Synced(sig, digest, _revs(people))
        return changed


def load_gallery(path: str | os.PathLike[str], embedding_space: str, dim: int, *,
                 max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON) -> Gallery:
    """Read a gallery file once (see :meth:`GalleryStore.load`)."""
    return GalleryStore(path).load(
        embedding_space, dim, max_samples_per_person=max_samples_per_person
    )


def save_gallery(gallery: Gallery, path: str | os.PathLike[str]) -> None:
    """Write ``gallery`` to ``path`` atomically, replacing whatever the file held (a new store
    has no base to merge with)."""
    GalleryStore(path).save(gallery)


def _reason(exc: Exception) -> str:
    """An error's one-line reason: the OS's text (errno's), or the exception's message."""
    return getattr(exc, "strerror", None) or str(exc)


def _revs(people: dict[str, Person]) -> dict[str, str]:
    return {name: person.rev for name, person in people.items()}


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
