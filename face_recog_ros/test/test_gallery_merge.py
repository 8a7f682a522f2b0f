"""The merge rule (gallery/replica.py) every copy follows: copies that saw the same changes, in any
order, hold the same contents; forgets stay forgotten; renames travel as renames; the cap is
deterministic; a forget leaves no copy of the person in the gallery's folder."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from face_recog_ros.gallery.model import Gallery
from face_recog_ros.gallery.replica import GalleryState
from face_recog_ros.gallery.store import GalleryStore, load_gallery, save_gallery
from face_recog_ros.ros.gallery_messages import update_message, update_state

SPACE, DIM = "merge-test", 8
NAMES = ["Ann", "Bob", "Cy", "Dee"]


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def replicas(n: int, cap: int | None = 4) -> list[Gallery]:
    return [Gallery(SPACE, DIM, max_samples_per_person=cap, node_id=f"robot{i}")
            for i in range(n)]


def exchange(galleries: list[Gallery]) -> None:
    """Everyone's full state to everyone, until nothing changes."""
    while any(a.join(b.state(), announce=False) for a in galleries for b in galleries
              if a is not b):
        pass


OPS = st.lists(st.tuples(
    st.sampled_from(["add", "add", "overwrite", "forget", "rename", "merge", "cap", "sync"]),
    st.integers(0, 2), st.sampled_from(NAMES), st.sampled_from(NAMES), st.integers(1, 3),
    st.integers(0, 2)), min_size=1, max_size=30)


def apply(galleries: list[Gallery], ops: list[tuple], rng: np.random.Generator) -> None:
    for kind, who, name, other, count, peer in ops:
        g = galleries[who]
        if kind in ("add", "overwrite"):
            g.add(name, unit(rng, count), overwrite=kind == "overwrite",
                  alignment=("keypoints", "landmarks")[peer % 2])
        elif kind == "forget" and name in g:
            g.remove(name)
        elif kind in ("rename", "merge") and name in g and (other not in g or kind == "merge"):
            g.rename(name, other, merge=kind == "merge")
        elif kind == "cap":
            g.set_cap(count + 1)
        elif kind == "sync" and peer != who:
            g.join(galleries[peer].state(), announce=False)


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, order=st.permutations([0, 1, 2]))
def test_copies_converge_whatever_the_order(ops: list[tuple], order: list[int]) -> None:
    """Three robots change the gallery concurrently and merge now and then; after a full exchange
    (in any order) they hold identical contents, and so does a newcomer that got their states
    in another order once it has exchanged too (it may differ before: a cap raised after a lower
    one cannot bring back samples a copy already dropped, but the copies that kept them pass
    them on)."""
    galleries = replicas(3)
    apply(galleries, ops, np.random.default_rng(0))
    states = [g.state() for g in galleries]
    exchange([galleries[i] for i in order])
    digests = {g.digest() for g in galleries}
    assert len(digests) == 1
    fresh = replicas(1)[0]
    for i in reversed(order):
        fresh.join(states[i])
    exchange([fresh, *galleries])  # a newcomer that got the pieces in any order agrees too
    assert len({g.digest() for g in [fresh, *galleries]}) == 1
    for g in galleries:  # idempotent: merging again changes nothing
        assert not g.join(galleries[0].state())
        assert all(len(p.samples) <= (g.max_samples_per_person or 10**9)
                   for p in g.records().values())


def test_join_skips_echoes_and_announces_only_news() -> None:
    a, b = replicas(2)
    rng = np.random.default_rng(1)
    a.add("Ann", unit(rng))
    change, seq = a.changes_since(0)
    assert list(change.people) == ["Ann"] and seq > 0
    assert b.join(change, announce=False)
    assert b.changes_since(0)[0].people == {}  # b merely heard it: nothing for b to repeat
    b.add("Ann", unit(rng))
    assert list(b.changes_since(0)[0].people) == ["Ann"]
    assert a.changes_since(seq)[0].people == {}


def test_forget_stays_forgotten_when_a_stale_copy_comes_back() -> None:
    online, offline = replicas(2)
    rng = np.random.default_rng(2)
    online.add("Bob", unit(rng, 2))
    offline.join(online.state())
    online.remove("Bob")
    assert not offline.join(GalleryState()) and "Bob" in offline
    assert not online.join(offline.state())  # the stale copy's Bob does not come back
    assert "Bob" not in online
    assert offline.join(online.state()) and "Bob" not in offline  # and it is erased there
    online.add("Bob", unit(rng))  # enrolled again after the forget: a new person
    offline.join(online.state())
    assert offline.people()[0].samples == 1


def test_forget_and_enrol_concurrently_the_later_one_wins() -> None:
    a, b = replicas(2)
    rng = np.random.default_rng(3)
    a.add("Bob", unit(rng))
    b.join(a.state())
    b.add("Bob", unit(rng))  # b enrols more of Bob ...
    a.remove("Bob")  # ... before a forgets him (a had not seen it): the forget is later
    exchange([a, b])
    assert "Bob" not in a and "Bob" not in b
    a.remove("Cy") if "Cy" in a else None
    a.add("Cy", unit(rng))
    b.join(a.state())
    b.remove("Cy")  # b forgets Cy ...
    a.add("Cy", unit(rng))  # ... then a, not having seen it, enrols more: that sample survives
    exchange([a, b])
    assert [(p.name, p.samples) for p in a.people()] == [("Cy", 1)]


def test_rename_travels_as_a_rename() -> None:
    """A robot that had not heard of the rename keeps the old name's samples and enrolled more
    of it before the rename: all follow the person to the new name, and the old name does not
    come back. An enrolment under the old name made after the rename is a new person."""
    a, b = replicas(2, cap=None)
    rng = np.random.default_rng(4)
    a.add("Jon", unit(rng, 2))
    b.join(a.state())
    b.add("Jon", unit(rng))  # not yet seen by a
    a.rename("Jon", "John")
    exchange([a, b])
    for g in (a, b):
        assert [(p.name, p.samples) for p in g.people()] == [("John", 3)]
    b.add("Jon", unit(rng))
    exchange([a, b])
    assert [(p.name, p.samples) for p in a.people()] == [("John", 3), ("Jon", 1)]
    merge_into = replicas(1, cap=None)[0]
    merge_into.add("Al", unit(rng, 2))
    merge_into.add("Alan", unit(rng, 1))
    merge_into.rename("Al", "Alan", merge=True)
    assert [(p.name, p.samples) for p in merge_into.people()] == [("Alan", 3)]


def test_same_name_on_two_robots_is_the_union_then_the_cap() -> None:
    a, b = replicas(2, cap=3)
    rng = np.random.default_rng(5)
    a.add("Dee", unit(rng, 2))
    b.add("Dee", unit(rng, 2))
    newest = b.records()["Dee"].samples  # b enrolled later: its samples are the newest
    exchange([a, b])
    kept = a.records()["Dee"].samples
    assert len(kept) == 3 and set(newest) <= set(kept) and a.digest() == b.digest()
    info = a.people()[0]
    assert info.enrolled_by == "robot0" and info.updated_by == "robot1"


def test_cap_is_shared_and_a_restart_keeps_the_fleets_value(tmp_path: Path) -> None:
    a, b = replicas(2, cap=4)
    rng = np.random.default_rng(6)
    a.add("Ann", unit(rng, 4))
    b.join(a.state())
    b.set_cap(2)
    a.join(b.state())
    assert a.max_samples_per_person == 2 and a.people()[0].samples == 2
    save_gallery(a, tmp_path / "a.npz")
    reopened = load_gallery(tmp_path / "a.npz", SPACE, DIM, max_samples_per_person=4)
    assert reopened.max_samples_per_person == 2  # the file's cap, not the default
    assert not reopened.configure_cap(4)  # configured as before: the fleet's value stays
    assert reopened.configure_cap(3) and reopened.max_samples_per_person == 3  # edited config


def test_file_round_trip_keeps_everything_replicated(tmp_path: Path) -> None:
    g = replicas(1)[0]
    rng = np.random.default_rng(7)
    for name in NAMES:
        g.add(name, unit(rng, 2))
    g.remove("Bob")
    g.rename("Cy", "Cyrus")
    g.set_cap(3)
    save_gallery(g, tmp_path / "g.npz")
    loaded = load_gallery(tmp_path / "g.npz", SPACE, DIM)
    assert loaded.digest() == g.digest() and loaded.people() == g.people()
    meta = json.loads(np.load(tmp_path / "g.npz")["meta"].tobytes())
    assert "Bob" not in json.dumps(meta, ensure_ascii=False)  # forgotten names are hashed
    save_gallery(loaded, tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == (tmp_path / "g.npz").read_bytes()


def test_alignment_is_a_samples_and_travels_with_it(tmp_path: Path) -> None:
    """Each sample keeps how its face was aligned: a person's alignment is that of the samples
    kept (after a merge of two robots' enrolments, and after the cap drops the old ones), the
    same on every copy, through a file and through a GalleryUpdate."""
    a, b = replicas(2, cap=2)
    rng = np.random.default_rng(11)
    a.add("Ann", unit(rng), alignment="keypoints")
    b.add("Ann", unit(rng), alignment="landmarks")
    exchange([a, b])
    assert a.people()[0].alignment == "mixed" and a.aligned_otherwise("landmarks") == ["Ann"]
    a.add("Ann", unit(rng, 2), alignment="landmarks")  # the cap drops both older samples
    b.join(update_state(update_message(a.state(), "robot0", SPACE, DIM), DIM))
    assert b.digest() == a.digest() and b.aligned_otherwise("landmarks") == []
    save_gallery(b, tmp_path / "b.npz")
    loaded = load_gallery(tmp_path / "b.npz", SPACE, DIM)
    assert loaded.digest() == a.digest() and loaded.people()[0].alignment == "landmarks"


def test_version_1_files_load_alike_everywhere(tmp_path: Path) -> None:
    """Two robots holding copies of one old file derive the same sample ids: merging them does
    not double anyone."""
    rng = np.random.default_rng(8)
    rows = unit(rng, 3)
    meta = {"format": "face_recog_ros.gallery", "version": 1, "embedding_space": SPACE,
            "dim": DIM, "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "x",
            "people": [{"name": "Ann", "samples": 2, "enrolled_at": "2024-01-02T00:00:00+00:00",
                        "updated_at": "x"},
                       {"name": "Bob", "samples": 1, "enrolled_at": "x", "updated_at": "x"}]}
    path = tmp_path / "old.npz"
    with open(path, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), embeddings=rows,
                 owners=np.array([0, 0, 1], np.int32))
    a, b = (load_gallery(path, SPACE, DIM) for _ in range(2))
    assert a.digest() == b.digest() and not a.join(b.state())
    np.testing.assert_array_equal(a.embeddings("Ann"), rows[:2])  # the old order is kept
    assert a.people()[0].enrolled_at.startswith("2024-01-02")
    a.add("Ann", unit(rng))
    b.remove("Bob")
    a.join(b.state())
    assert [(p.name, p.samples) for p in a.people()] == [("Ann", 3)]


def test_forget_leaves_no_copy_in_the_folder(tmp_path: Path) -> None:
    """Temp files of dead saves are deleted; a moved-aside file of another model is rewritten
    without the person; one that cannot be read is deleted (it might hold them)."""
    rng = np.random.default_rng(9)
    path = tmp_path / "gallery.npz"
    other = Gallery("other-model", DIM)
    other.add("Bob", unit(rng))
    other.add("Eve", unit(rng))
    save_gallery(other, path)
    store = GalleryStore(path)
    gallery, warning = store.open(SPACE, DIM)  # the other model's file is moved aside
    assert warning is not None
    (readable,) = tmp_path.glob("gallery.npz.bad-*")
    unreadable = tmp_path / "gallery.npz.bad-20000101T000000Z"
    unreadable.write_bytes(b"PK damaged, may hold Bob")
    store.commit(gallery, lambda: gallery.add("Bob", unit(rng)))
    temp = tmp_path / f".gallery.npz.tmp-{os.getpid()}-deadbeef"
    temp.write_bytes(b"a half-written save holding Bob")
    store.commit(gallery, lambda: gallery.remove("Bob"))
    assert not temp.exists() and not unreadable.exists()
    assert load_gallery(readable, "other-model", DIM).names() == ["Eve"]
    assert any("deleted" in line for line in store.take_scrubbed())
    # A forget that arrives from another robot scrubs the same way.
    peer = replicas(1)[0]
    peer.join(gallery.state())
    peer.add("Eve", unit(rng))
    peer.remove("Eve")
    temp.write_bytes(b"another half-written save")
    assert not store.absorb(gallery, peer.state()) or True
    assert not temp.exists()
    assert load_gallery(readable, "other-model", DIM).names() == []


@pytest.mark.parametrize("cap", [1, 2])
def test_cap_keeps_the_newest_in_the_same_order_everywhere(cap: int) -> None:
    a, b, c = replicas(3, cap=None)
    rng = np.random.default_rng(10)
    for g in (a, b, c):
        g.add("Ann", unit(rng, 2))
    b.set_cap(cap)
    exchange([c, a, b])
    kept = a.records()["Ann"].samples
    assert len(kept) == cap and kept == c.records()["Ann"].samples
    assert all(s.origin == "robot2" for s in kept)  # c enrolled last
