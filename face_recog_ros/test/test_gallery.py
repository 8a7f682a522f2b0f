"""Gallery store: names, samples, persistence, bad files and crash safety (real files, real
kills)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from face_recog_ros.gallery.model import Gallery, NameTaken, UnknownPerson
from face_recog_ros.gallery.names import InvalidName, validate_name
from face_recog_ros.gallery.errors import (GalleryCorrupt, GalleryError, GalleryMismatch,
                                           GalleryNotRegular, GalleryVersionError)
from face_recog_ros.gallery.file_format import FORMAT_VERSION
from face_recog_ros.gallery.store import GalleryNotSaved, GalleryStore, load_gallery, save_gallery

DIM = 128
SPACE = "test-model-v1"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def filled(rng: np.random.Generator) -> Gallery:
    g = Gallery(SPACE, DIM)
    g.add("Alice", unit(rng, 3))
    g.add("Bob", unit(rng, 1))
    g.add("José", unit(rng, 5))
    return g


def temp_files(path: Path) -> list[str]:
    return [p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.tmp-")]


# ---------------------------------------------------------------- name validation
@pytest.mark.parametrize(
    "bad",
    ["", "   ", "../x", "/etc/passwd", "a/b", "a\\b", "a\x00b", "\n", "a\nb", "tab\there",
     "bell\x07", "x" * 65, ".", "..", " .. ", "unknown", "Unknown", " UNKNOWN ", "unknown_3",
     "Unknown_12", 42, None, "alice\u200b", "\u202eevil", "a\u200db", "\ufeffbob",
     "a\u2066b\u2069", "\u2028"],
)
def test_validate_name_rejects(bad: object) -> None:
    with pytest.raises(InvalidName) as err:
        validate_name(bad)  # type: ignore[arg-type]
    assert str(err.value)
    assert isinstance(err.value, ValueError)


def test_validate_name_messages_say_what_is_wrong() -> None:
    cases = {"": "empty", "x" * 65: "64", "../x": "path", "a\x00b": "control",
             "unknown": "reserved", "unknown_7": "reserved", "..": "not allowed",
             "alice\u200b": "U\\+200B .ZERO WIDTH SPACE",
             "\u202eevil": "U\\+202E .RIGHT-TO-LEFT OVERRIDE"}
    for name, words in cases.items():
        with pytest.raises(InvalidName, match=words):
            validate_name(name)


@pytest.mark.parametrize(
    "good, canonical",
    [
        ("Alice", "Alice"),
        ("  Bob  ", "Bob"),
        ("x" * 64, "x" * 64),
        ("José", "José"),
        ("Jose\u0301", "José"),
        ("Dr. Who", "Dr. Who"),
        ("...", "..."),
        ("unknown_person", "unknown_person"),
        ("unknown_", "unknown_"),
        ("李小龙", "李小龙"),
    ],
)
def test_validate_name_accepts(good: str, canonical: str) -> None:
    assert validate_name(good) == canonical


# ---------------------------------------------------------------- in-memory operations
def test_add_counts_normalises_and_lists(rng: np.random.Generator) -> None:
    g = Gallery(SPACE, DIM)
    assert len(g) == 0 and g.num_samples == 0 and g.names() == []
    assert g.matrix().shape == (0, DIM) and g.owners().shape == (0,)
    raw = rng.normal(size=(2, DIM)) * 7.0
    assert g.add("  Alice ", raw) == 2
    assert g.add("Alice", rng.normal(size=DIM)) == 3  # one 1-D sample appends
    assert g.add("Bob", unit(rng, 4)) == 4
    assert len(g) == 2 and g.num_samples == 7
    assert g.names() == ["Alice", "Bob"]
    assert "Alice" in g and " Alice" in g and "alice" not in g and "../x" not in g and 3 not in g
    np.testing.assert_allclose(np.linalg.norm(g.matrix(), axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        g.embeddings("Alice")[:2], raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-6
    )
    assert g.matrix().dtype == np.float32 and g.matrix().flags.c_contiguous
    assert g.owners().tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert [(p.name, p.samples) for p in g.people()] == [("Alice", 3), ("Bob", 4)]
    for p in g.people():
        for stamp in (p.enrolled_at, p.updated_at):
            assert datetime.fromisoformat(stamp).utcoffset() == timezone.utc.utcoffset(None)


def test_add_overwrite_replaces_samples(rng: np.random.Generator) -> None:
    g = Gallery(SPACE, DIM)
    g.add("Alice", unit(rng, 5))
    new = unit(rng, 2)
    assert g.add("Alice", new, overwrite=True) == 2
    np.testing.assert_array_equal(g.embeddings("Alice"), new)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((1, DIM)),
        np.full((1, DIM), np.nan),
        np.full((1, DIM), np.inf),
        np.ones((1, DIM + 1)),
        np.ones((0, DIM)),
        np.ones((2, 2, DIM)),
        np.array([["a"] * DIM]),
    ],
)
def test_add_rejects_bad_embeddings(bad: np.ndarray) -> None:
    g = Gallery(SPACE, DIM)
    with pytest.raises(ValueError):
        g.add("Alice", bad)
    assert len(g) == 0


def test_add_rejects_bad_name(rng: np.random.Generator) -> None:
    g = Gallery(SPACE, DIM)
    with pytest.raises(InvalidName):
        g.add("../etc", unit(rng, 1))
    assert len(g) == 0


def test_sample_cap_keeps_most_recent(rng: np.random.Generator) -> None:
    g = Gallery(SPACE, DIM, max_samples_per_person=4)
    samples = unit(rng, 7)
    g.add("Alice", samples[:3])
    assert g.add("Alice", samples[3:]) == 4
    np.testing.assert_array_equal(g.embeddings("Alice"), samples[3:])
    unlimited = Gallery(SPACE, DIM, max_samples_per_person=None)
    assert unlimited.add("Alice", unit(rng, 300)) == 300
    assert Gallery(SPACE, DIM).max_samples_per_person == 50


def test_remove_and_unknown_person(rng: np.random.Generator) -> None:
    g = filled(rng)
    assert g.remove(" Bob ") == 1
    assert g.names() == ["Alice", "José"] and g.owners().tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    with pytest.raises(UnknownPerson, match="'Bob' is not enrolled") as err:
        g.remove("Bob")
    assert isinstance(err.value, KeyError)
    for method in (lambda: g.embeddings("nobody"), lambda: g.rename("nobody", "x")):
        with pytest.raises(UnknownPerson):
            method()


def test_rename_keeps_index_and_refuses_existing(rng: np.random.Generator) -> None:
    g = filled(rng)
    alice = g.embeddings("Alice")
    assert g.rename("Alice", "Alicia") == 3
    assert g.names() == ["Alicia", "Bob", "José"]
    np.testing.assert_array_equal(g.embeddings("Alicia"), alice)
    with pytest.raises(NameTaken, match="already enrolled"):
        g.rename("Alicia", "Bob")
    with pytest.raises(InvalidName):
        g.rename("Alicia", "unknown")
    assert g.names() == ["Alicia", "Bob", "José"]
    assert g.rename("Alicia", " Alicia ") == 3  # same canonical name: no-op


def test_rename_merge_combines(rng: np.random.Generator) -> None:
    g = Gallery(SPACE, DIM, max_samples_per_person=5)
    a, b = unit(rng, 3), unit(rng, 3)
    g.add("Bob", b)
    g.add("Robert", a)
    enrolled_bob = g.people()[0].enrolled_at
    assert g.rename("Robert", "Bob", merge=True) == 5
    assert g.names() == ["Bob"]
    np.testing.assert_array_equal(g.embeddings("Bob"), np.concatenate([b, a])[-5:])
    assert g.people()[0].enrolled_at == enrolled_bob


def test_snapshot_is_cached_readonly_and_invalidated(rng: np.random.Generator) -> None:
    g = filled(rng)
    s1 = g.snapshot()
    assert g.snapshot() is s1 and g.matrix() is s1.matrix
    assert s1.starts.tolist() == [0, 3, 4]
    with pytest.raises(ValueError):
        s1.matrix[0, 0] = 2.0
    g.add("Bob", unit(rng, 1))
    s2 = g.snapshot()
    assert s2 is not s1 and s2.generation > s1.generation
    assert s2.starts.tolist() == [0, 3, 5] and s1.starts.tolist() == [0, 3, 4]


# ---------------------------------------------------------------- persistence
def test_round_trip_is_exact_and_private(tmp_path: Path, rng: np.random.Generator) -> None:
    g = filled(rng)
    path = tmp_path / "sub" / "gallery.npz"
    save_gallery(g, path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert temp_files(path) == []
    h = load_gallery(path, SPACE, DIM)
    assert h.names() == g.names() and h.people() == g.people()
    assert h.matrix().tobytes() == g.matrix().tobytes()
    assert np.array_equal(h.owners(), g.owners())
    assert (h.created_at, h.updated_at) == (g.created_at, g.updated_at)
    save_gallery(h, path)
    assert load_gallery(path, SPACE, DIM).matrix().tobytes() == g.matrix().tobytes()
    empty = tmp_path / "empty.npz"
    save_gallery(Gallery(SPACE, DIM), empty)
    assert len(load_gallery(empty, SPACE, DIM)) == 0


def test_save_mode_ignores_umask(tmp_path: Path, rng: np.random.Generator) -> None:
    old = os.umask(0)
    try:
        save_gallery(filled(rng), tmp_path / "g.npz")
    finally:
        os.umask(old)
    assert ((tmp_path / "g.npz").stat().st_mode & 0o777) == 0o600


def test_open_missing_file_gives_empty_gallery(tmp_path: Path) -> None:
    g, warning = GalleryStore(tmp_path / "none.npz").open(SPACE, DIM)
    assert len(g) == 0 and warning is None
    assert not (tmp_path / "none.npz").exists()


def _write_npz(path: Path, meta: dict | bytes, embeddings: np.ndarray | None = None,
               owners: np.ndarray | None = None) -> None:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    arrays = {"meta": np.frombuffer(raw, dtype=np.uint8)}
    if embeddings is not None:
        arrays["embeddings"] = embeddings
    if owners is not None:
        arrays["owners"] = owners
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _meta(**overrides: object) -> dict:
    meta = {
        "format": "face_recog_ros.gallery",
        "version": FORMAT_VERSION,
        "embedding_space": SPACE,
        "dim": DIM,
        "created_at": "x",
        "updated_at": "x",
        "people": [{"name": "Alice", "samples": 2, "enrolled_at": "x", "updated_at": "x"}],
    }
    meta.update(overrides)
    return meta


def _bad_files(
    tmp_path: Path, rng: np.random.Generator
) -> dict[str, tuple[Path, type[GalleryError]]]:
    """Each kind of unusable file and the error it must produce."""
    files: dict[str, tuple[Path, type[GalleryError]]] = {}

    def make(label: str, error: type[GalleryError]) -> Path:
        path = tmp_path / f"{label}.npz"
        files[label] = (path, error)
        return path

    good = tmp_path / "good.npz"
    save_gallery(filled(rng), good)
    data = good.read_bytes()
    make("truncated", GalleryCorrupt).write_bytes(data[: len(data) // 2])
    make("truncated_tiny", GalleryCorrupt).write_bytes(data[:10])
    make("empty_file", GalleryCorrupt).write_bytes(b"")
    make("random_bytes", GalleryCorrupt).write_bytes(rng.bytes(5000))
    corrupt_zip = bytearray(data)
    corrupt_zip[len(data) // 3: len(data) // 3 + 64] = rng.bytes(64)
    make("flipped_bytes", GalleryCorrupt).write_bytes(bytes(corrupt_zip))
    with open(make("plain_npy", GalleryCorrupt), "wb") as f:
        np.save(f, unit(rng, 2))
    with open(make("pickled", GalleryCorrupt), "wb") as f:
        np.savez(f, meta=np.array([{"evil": 1}], dtype=object))
    two = unit(rng, 2)
    _write_npz(make("bad_json", GalleryCorrupt), b"{not json", two, np.zeros(2, np.int32))
    _write_npz(make("not_ours", GalleryCorrupt), {"format": "something-else", "version": 1}, two,
               np.zeros(2, np.int32))
    _write_npz(
        make("owner_out_of_range", GalleryCorrupt), _meta(), two, np.array([0, 1], np.int32)
    )
    _write_npz(
        make("count_mismatch", GalleryCorrupt), _meta(), unit(rng, 3), np.zeros(3, np.int32)
    )
    _write_npz(make("not_unit", GalleryCorrupt), _meta(), two * 3, np.zeros(2, np.int32))
    _write_npz(make("missing_arrays", GalleryCorrupt), _meta())
    _write_npz(
        make("bad_name", GalleryCorrupt),
        _meta(people=[{"name": "../x", "samples": 2, "enrolled_at": "x", "updated_at": "x"}]),
        two,
        np.zeros(2, np.int32),
    )
    other = Gallery("other-model-v2", DIM)
    other.add("Alice", unit(rng, 1))
    save_gallery(other, make("other_model", GalleryMismatch))
    other_dim = Gallery(SPACE, 512)
    other_dim.add("Alice", unit(rng, 1, 512))
    save_gallery(other_dim, make("other_dim", GalleryMismatch))
    _write_npz(
        make("future_version", GalleryVersionError), _meta(version=FORMAT_VERSION + 1, dim="new")
    )
    _write_npz(make("alignment_not_text", GalleryCorrupt),
               _meta(people=[{"name": "Alice", "samples": 2, "enrolled_at": "x",
                              "updated_at": "x", "alignment": 3}]), two, np.zeros(2, np.int32))
    return files


def test_load_bad_files_raise_the_right_error(tmp_path: Path, rng: np.random.Generator) -> None:
    for label, (path, error) in _bad_files(tmp_path, rng).items():
        before = path.read_bytes()
        with pytest.raises(error) as err:
            load_gallery(path, SPACE, DIM)
        assert type(err.value) is error, label
        assert str(path) in str(err.value), label
        assert path.read_bytes() == before, label


def test_mismatch_message_names_both_models(tmp_path: Path, rng: np.random.Generator) -> None:
    path, _ = _bad_files(tmp_path, rng)["other_model"]
    with pytest.raises(GalleryMismatch, match="other-model-v2.*test-model-v1"):
        load_gallery(path, SPACE, DIM)


def test_open_moves_bad_files_aside_unmodified(tmp_path: Path, rng: np.random.Generator) -> None:
    for label, (path, error) in _bad_files(tmp_path, rng).items():
        before = path.read_bytes()
        with pytest.raises(error):
            GalleryStore(path).open(SPACE, DIM, move_aside_bad=False)
        assert path.read_bytes() == before, label
        g, warning = GalleryStore(path).open(SPACE, DIM)
        assert len(g) == 0, label
        assert not path.exists(), label
        aside = [p for p in tmp_path.iterdir() if p.name.startswith(f"{path.name}.bad-")]
        assert len(aside) == 1, label
        assert aside[0].read_bytes() == before, label
        assert warning is not None and str(path) in warning and str(aside[0]) in warning, label


def test_move_aside_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    contents = [b"first bad", b"second bad", b"third bad"]
    for data in contents:  # same second: names must not collide
        path.write_bytes(data)
        GalleryStore(path).open(SPACE, DIM)
    aside = sorted(p.read_bytes() for p in tmp_path.iterdir() if ".bad-" in p.name)
    assert aside == sorted(contents)


def test_open_removes_stale_temp_files(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "g.npz"
    save_gallery(filled(rng), path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".g.npz.tmp-{int(dead.stdout)}-abcd1234"
    stale.write_bytes(b"partial")
    unrelated = tmp_path / ".other.npz.tmp-1-00000000"
    unrelated.write_bytes(b"x")
    g, warning = GalleryStore(path).open(SPACE, DIM)
    assert warning is None and len(g) == 3
    assert not stale.exists() and unrelated.exists()


def test_reload_takes_in_another_writers_changes(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "shared.npz"
    writer_store = GalleryStore(path)
    writer, _ = writer_store.open(SPACE, DIM)
    writer_store.commit(writer, lambda: [writer.add(n, unit(rng, 2)) for n in ("Alice", "Bob")])
    assert not writer_store.reload(writer)  # its own save is not a change
    reader_store = GalleryStore(path)
    reader, _ = reader_store.open(SPACE, DIM)
    assert not reader_store.reload(reader)
    writer_store.commit(writer, lambda: writer.add("Carol", unit(rng, 2)))
    assert reader_store.reload(reader)
    assert reader.names() == writer.names()
    assert reader.matrix().tobytes() == writer.matrix().tobytes()
    assert not reader_store.reload(reader)
    path.write_bytes(b"garbage")
    with pytest.raises(GalleryCorrupt):
        reader_store.reload(reader)
    assert reader.names() == writer.names()  # kept; the bad version is reported once
    assert not reader_store.reload(reader)
    reader_store.commit(reader, lambda: reader.add("Dave", unit(rng, 1)))
    aside = [p for p in tmp_path.iterdir() if ".bad-" in p.name]
    assert [p.read_bytes() for p in aside] == [b"garbage"]  # moved aside, never overwritten
    assert load_gallery(path, SPACE, DIM).names() == ["Alice", "Bob", "Carol", "Dave"]
    path.unlink()
    assert not reader_store.reload(reader)


def test_two_writers_keep_both_sides_changes(tmp_path: Path, rng: np.random.Generator) -> None:
    """Two stores on one file (two processes): each change is merged, none is written over."""
    path = tmp_path / "shared.npz"
    a_store, b_store = GalleryStore(path), GalleryStore(path)
    a, _ = a_store.open(SPACE, DIM)
    a_store.commit(a, lambda: [a.add(n, unit(rng, 2)) for n in ("Alice", "Bob", "Carol")])
    b, _ = b_store.open(SPACE, DIM)
    a_store.commit(a, lambda: a.add("Dave", unit(rng, 1)))  # b has not seen these
    a_store.commit(a, lambda: a.remove("Bob"))
    b_store.commit(b, lambda: b.add("Erin", unit(rng, 1)))  # merges a's changes before writing
    b_store.commit(b, lambda: b.rename("Carol", "Caroline"))
    a_store.commit(a, lambda: a.add("Alice", unit(rng, 1)))  # merges b's changes before writing
    on_disk = load_gallery(path, SPACE, DIM)
    assert sorted(on_disk.names()) == ["Alice", "Caroline", "Dave", "Erin"]
    assert on_disk.people()[on_disk.names().index("Alice")].samples == 3
    assert b_store.reload(b)
    for g in (a, b):
        assert sorted(g.names()) == sorted(on_disk.names())
        assert g.snapshot().matrix.shape == on_disk.snapshot().matrix.shape


def test_writers_apply_changes_to_one_person_in_order(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Each commit takes in the file first (under the writers' lock), so changes never
    interleave."""
    path = tmp_path / "shared.npz"
    a_store, b_store = GalleryStore(path), GalleryStore(path)
    a, _ = a_store.open(SPACE, DIM)
    a_store.commit(a, lambda: a.add("Alice", unit(rng, 2)))
    b, _ = b_store.open(SPACE, DIM)
    a_store.commit(a, lambda: a.add("Alice", unit(rng, 1)))
    b_store.commit(b, lambda: b.add("Alice", unit(rng, 2)))
    assert load_gallery(path, SPACE, DIM).people()[0].samples == 5  # 2 + 1 + 2
    b_store.commit(b, lambda: b.remove("Alice"))
    assert "Alice" not in load_gallery(path, SPACE, DIM)
    a_store.commit(a, lambda: a.add("Alice", unit(rng, 1)))  # after the forget: a fresh enrolment
    assert load_gallery(path, SPACE, DIM).people()[0].samples == 1


def test_merge_resolves_changes_made_on_both_sides(rng: np.random.Generator) -> None:
    """What a reader with unsaved changes (or a filesystem without locks) meets: nothing
    acknowledged is dropped. Enrolments of one name on both sides keep every sample; an enrolment
    made after a forget (in time) survives it, and a forget made after an enrolment removes it.
    """
    base = filled(rng)
    theirs, ours = Gallery(SPACE, DIM, node_id="theirs"), Gallery(SPACE, DIM, node_id="ours")
    for g in (theirs, ours):
        g.join(base.state())
    theirs.add("Alice", unit(rng, 1))  # both enrol Alice
    ours.add("Alice", unit(rng, 2))
    theirs.remove("Bob")  # they forget Bob, then we enrol more of him
    ours.add("Bob", unit(rng, 1))
    ours.add("José", unit(rng, 1))  # we enrol more of José, then they forget him
    theirs.remove("José")
    theirs.add("Zoe", unit(rng, 1))  # they enrol someone new
    assert ours.join(theirs.state())
    counts = {p.name: p.samples for p in ours.people()}
    assert counts == {"Alice": 6, "Bob": 1, "Zoe": 1}
    assert not ours.join(ours.state()) and not ours.join(theirs.state())
    assert theirs.join(ours.state()) and theirs.digest() == ours.digest()


def test_failed_save_undoes_the_change(tmp_path: Path, rng: np.random.Generator) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    store = GalleryStore(folder / "g.npz")
    g, _ = store.open(SPACE, DIM)
    store.commit(g, lambda: g.add("Alice", unit(rng, 2)))
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write a read-only folder (root)")
        for change in (lambda: g.add("Bob", unit(rng, 1)), lambda: g.remove("Alice"),
                       lambda: g.rename("Alice", "Alicia")):
            with pytest.raises(GalleryNotSaved, match="could not be saved.*undone"):
                store.commit(g, change)
            assert g.names() == ["Alice"] and g.people()[0].samples == 2
    finally:
        folder.chmod(0o700)
    assert load_gallery(folder / "g.npz", SPACE, DIM).names() == ["Alice"]


def test_special_files_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, Path("/dev/zero")):
        with pytest.raises(GalleryNotRegular, match="must be a regular file"):
            GalleryStore(path).open(SPACE, DIM)
    link = tmp_path / "zero.npz"
    link.symlink_to("/dev/zero")
    with pytest.raises(GalleryNotRegular, match="character device"):
        GalleryStore(link).open(SPACE, DIM)
    store = GalleryStore(tmp_path / "g.npz")
    g, _ = store.open(SPACE, DIM)
    (tmp_path / "g.npz").unlink(missing_ok=True)
    os.mkfifo(tmp_path / "g.npz")  # swapped in at run time
    with pytest.raises(GalleryNotRegular):
        store.reload(g)


# ---------------------------------------------------------------- crash safety
_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from face_recog_ros.gallery.model import Gallery
    from face_recog_ros.gallery.store import save_gallery

    path = sys.argv[1]
    while True:
        g = Gallery("crash-model", 128)
        for k in range(150):
            g.add(f"p{k:03d}", np.random.default_rng(k).normal(size=(20, 128)))
            save_gallery(g, path)
            if k == 0:
                print("ready", flush=True)
    """
)


def _expected_versions() -> np.ndarray:
    g = Gallery("crash-model", 128)
    for k in range(150):
        g.add(f"p{k:03d}", np.random.default_rng(k).normal(size=(20, 128)))
    return g.matrix()


def test_sigkill_during_save_never_leaves_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "gallery.npz"
    expected = _expected_versions()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    chooser = random.Random(20240601)
    kills_mid_save = 0
    for _ in range(30):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(chooser.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        leftovers = temp_files(path)
        assert len(leftovers) <= 1, leftovers  # at most the one that was in flight
        kills_mid_save += len(leftovers)
        g = load_gallery(path, "crash-model", 128)  # must be complete, whatever the timing
        n = len(g)
        assert 1 <= n <= 150 and g.names() == [f"p{k:03d}" for k in range(n)]
        assert g.matrix().tobytes() == expected[: 20 * n].tobytes()
        reopened, warning = GalleryStore(path).open("crash-model", 128)
        assert warning is None and len(reopened) == n
        assert temp_files(path) == []
    assert kills_mid_save > 0, "no kill landed during a save; the test did not exercise anything"


def test_alignment_is_recorded_per_person(tmp_path: Path, rng: np.random.Generator) -> None:
    """Samples aligned another way are the same embedding space (usable) but worth re-enrolling."""
    gallery = Gallery(SPACE, DIM)
    gallery.add("Alice", unit(rng, 2), alignment="landmarks")
    gallery.add("Bob", unit(rng, 1), alignment="keypoints")
    gallery.add("Carol", unit(rng, 1), alignment="landmarks")
    gallery.add("Carol", unit(rng, 1), alignment="keypoints")
    save_gallery(gallery, tmp_path / "g.npz")
    loaded = load_gallery(tmp_path / "g.npz", SPACE, DIM)
    assert {p.name: p.alignment for p in loaded.people()} == {
        "Alice": "landmarks", "Bob": "keypoints", "Carol": "mixed"}
    assert loaded.aligned_otherwise("landmarks") == ["Bob", "Carol"]
    loaded.add("Bob", unit(rng, 1), overwrite=True, alignment="landmarks")
    loaded.rename("Alice", "Carol", merge=True)
    assert loaded.aligned_otherwise("landmarks") == ["Carol"]


def test_galleries_saved_before_alignment_was_recorded_still_load(
        tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "old.npz"
    _write_npz(path, _meta(version=1), unit(rng, 2), np.zeros(2, np.int32))  # no "alignment"
    gallery = load_gallery(path, SPACE, DIM)
    assert gallery.people()[0].alignment == ""
    assert gallery.aligned_otherwise("landmarks") == ["Alice"]
