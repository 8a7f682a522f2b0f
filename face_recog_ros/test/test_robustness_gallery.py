"""Fuzzing the gallery loader: whatever bytes are on disk, loading raises only GalleryError (or
OSError), never hangs and never allocates what a damaged header claims; open() moves them aside.

A robot that reboots with a damaged gallery must come up (empty, with a warning), not crash in
a loop, and must not destroy the damaged file: it may be the only copy of the enrolments.
"""
from __future__ import annotations

import copy
import io
import json
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from face_recog_ros.gallery.model import Gallery
from face_recog_ros.gallery.names import validate_name
from face_recog_ros.gallery.errors import GalleryCorrupt, GalleryError
from face_recog_ros.gallery.file_format import FORMAT_VERSION
from face_recog_ros.gallery.store import GalleryStore, load_gallery, save_gallery

SPACE = "fuzz-model"
DIM = 8
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
LOAD_TIME_LIMIT_S = 2.0  # a tiny file that takes longer than this to refuse is a hang
MAX_RSS_GROWTH_MB = 256  # peak RSS may not grow by more than this during a fuzz test


def valid_gallery() -> Gallery:
    rng = np.random.default_rng(7)
    g = Gallery(SPACE, DIM)
    g.add("Alice", rng.normal(size=(2, DIM)))
    g.add("Bob", rng.normal(size=(1, DIM)))
    g.add("José", rng.normal(size=(3, DIM)))
    g.add("Zed", rng.normal(size=(1, DIM)))  # name operations, so the fuzz reaches them too
    g.remove("Zed")
    g.add("Ann", rng.normal(size=(1, DIM)))
    g.rename("Ann", "Annie")
    g.remove("Annie")
    return g


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gallery_fuzz")


@pytest.fixture(scope="module")
def good_bytes(workdir: Path) -> bytes:
    path = workdir / "good.npz"
    save_gallery(valid_gallery(), path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def good_parts(good_bytes: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(good_bytes)) as npz:
        return {k: npz[k] for k in npz.files}


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f4", body: bytes = b"") -> bytes:
    """A version 1.0 .npy header claiming ``shape`` (whatever the body actually holds)."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1") + body


def archive(members: dict[str, bytes] | list[tuple[str, bytes]],
            compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, payload in items:
            z.writestr(name, payload)
    return buf.getvalue()


def gallery_file(meta: dict | bytes, good_parts: dict[str, np.ndarray], **arrays: np.ndarray
                 ) -> bytes:
    """A file with ``meta`` and the good file's arrays, ``arrays`` replacing some of them."""
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    members = {f"{k}.npy": npy(v) for k, v in good_parts.items() if k != "meta"}
    members["meta.npy"] = npy(np.frombuffer(raw, np.uint8))
    members.update({f"{k}.npy": npy(v) for k, v in arrays.items()})
    return archive(members)


def load_bytes(workdir: Path, data: bytes) -> Gallery | None:
    """Load ``data`` from a file: the gallery, or None when refused with a documented error.

    Any other exception fails the test; so does taking too long.
    """
    path = workdir / "fuzzed.npz"
    path.write_bytes(data)
    start = time.monotonic()
    try:
        gallery = load_gallery(path, SPACE, DIM)
    except (GalleryError, OSError) as err:
        assert str(path) in str(err) or isinstance(
            err, OSError
        ), f"error does not name the file: {err}"
        gallery = None
    assert time.monotonic() - start < LOAD_TIME_LIMIT_S
    if gallery is not None:
        check_consistent(gallery)
    return gallery


def check_consistent(gallery: Gallery) -> None:
    """What a loaded gallery must satisfy however odd the file was."""
    snap = gallery.snapshot()
    assert snap.matrix.dtype == np.float32 and snap.matrix.shape == (len(snap.owners), DIM)
    np.testing.assert_allclose(
        np.linalg.norm(snap.matrix.astype(np.float64), axis=1), 1.0, atol=2e-3
    )
    counts = (
        np.bincount(snap.owners, minlength=len(snap.names)) if snap.owners.size else np.zeros(0)
    )
    for name, info, count in zip(snap.names, gallery.people(), counts, strict=True):
        assert validate_name(name) == name and info.samples == count >= 1


# ----------------------------------------------------------------- raw bytes
@FUZZ
@given(data=st.binary(max_size=4096), zip_magic=st.booleans())
def test_arbitrary_bytes(workdir: Path, rss_guard: None, data: bytes, zip_magic: bool) -> None:
    assert load_bytes(workdir, (b"PK\x03\x04" if zip_magic else b"") + data) is None


def test_every_truncation_is_refused(workdir: Path, good_bytes: bytes) -> None:
    for n in range(len(good_bytes)):
        assert load_bytes(workdir, good_bytes[:n]) is None, f"a file truncated to {n} bytes loaded"
    assert load_bytes(workdir, good_bytes) is not None


@FUZZ
@given(
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8
    ),
    compressed=st.booleans(),
)
def test_bit_flips(
    workdir: Path,
    good_bytes: bytes,
    good_parts: dict[str, np.ndarray],
    rss_guard: None,
    flips: list[tuple[float, int]],
    compressed: bool,
) -> None:
    """Bit flips anywhere, in the file as saved and in a deflate-compressed copy (corrupt
    compressed streams raise zlib errors inside zipfile, which must not escape)."""
    base = good_bytes
    if compressed:
        base = archive({f"{k}.npy": npy(v) for k, v in good_parts.items()}, zipfile.ZIP_DEFLATED)
    data = bytearray(base)
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    load_bytes(
        workdir, bytes(data)
    )  # CRCs catch most flips; the rest must still load consistently


# ----------------------------------------------------------------- members
@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_swapped_missing_and_foreign_members(
    workdir: Path, good_parts: dict[str, np.ndarray]
) -> None:
    meta, emb, own = (npy(good_parts[k]) for k in ("meta", "embeddings", "owners"))
    raw_json = good_parts["meta"].tobytes()
    refused = {
        "embeddings and owners swapped": {
            "meta.npy": meta,
            "embeddings.npy": own,
            "owners.npy": emb,
        },
        "meta and embeddings swapped": {
            "meta.npy": emb,
            "embeddings.npy": meta,
            "owners.npy": own,
        },
        "meta as raw JSON, not .npy": {
            "meta.npy": raw_json,
            "embeddings.npy": emb,
            "owners.npy": own,
        },
        "embeddings not .npy": {
            "meta.npy": meta,
            "embeddings.npy": b"\x00" * 200,
            "owners.npy": own,
        },
        "no meta": {"embeddings.npy": emb, "owners.npy": own},
        "no embeddings": {"meta.npy": meta, "owners.npy": own},
        "no owners": {"meta.npy": meta, "embeddings.npy": emb},
        "empty archive": {},
        "owners as float": {
            "meta.npy": meta,
            "embeddings.npy": emb,
            "owners.npy": npy(good_parts["owners"].astype(np.float32)),
        },
        "embeddings as float64": {
            "meta.npy": meta,
            "owners.npy": own,
            "embeddings.npy": npy(good_parts["embeddings"].astype(np.float64)),
        },
        "embeddings 3-D": {
            "meta.npy": meta,
            "owners.npy": own,
            "embeddings.npy": npy(good_parts["embeddings"][None]),
        },
        "owners pickled": {
            "meta.npy": meta,
            "embeddings.npy": emb,
            "owners.npy": npy_header((6,), "|O", b"\x80\x04N."),
        },
    }
    for label, members in refused.items():
        assert load_bytes(workdir, archive(members)) is None, label
    # A duplicated member name: zipfile reads the last; the result must be refused or consistent.
    load_bytes(workdir, archive([("meta.npy", meta), ("embeddings.npy", emb), ("owners.npy", own),
                                 ("embeddings.npy", own)]))
    # Unknown extra members are ignored, not read (even a header claiming terabytes).
    extra = archive({**{f"{k}.npy": npy(v) for k, v in good_parts.items()},
                     "huge.npy": npy_header((10**12, 10**3))})
    loaded = load_bytes(workdir, extra)
    assert loaded is not None and loaded.names() == ["Alice", "Bob", "José"]


@FUZZ
@given(owners=st.lists(st.integers(-2**31, 2**31 - 1), min_size=6, max_size=6),
       dtype=st.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_]))
def test_inconsistent_owners(workdir: Path, good_parts: dict[str, np.ndarray], owners: list[int],
                             dtype: type) -> None:
    meta = good_parts["meta"].tobytes()
    array = np.array(owners).astype(dtype)
    gallery = load_bytes(workdir, gallery_file(meta, good_parts, owners=array))
    if gallery is not None:  # only the true grouping (2, 1, 3 rows) can agree with the metadata
        assert sorted(array.tolist()) == [0, 0, 1, 2, 2, 2]


REGISTERS = ["sample_ids", "sample_versions", "sample_born", "sample_enrolled_ms",
             "sample_origins"]


@FUZZ
@given(member=st.sampled_from(REGISTERS),
       values=st.lists(st.integers(-2**63, 2**63 - 1), min_size=0, max_size=100),
       dtype=st.sampled_from([np.uint8, np.int32, np.int64, np.uint64, np.float64]),
       rows=st.sampled_from([None, 6, 5, 7]))
def test_inconsistent_registers(workdir: Path, good_parts: dict[str, np.ndarray], member: str,
                                values: list[int], dtype: type, rows: int | None) -> None:
    """Each sample's register (id, versions, time, origin): any values, types and shapes."""
    array = np.array(values, dtype=np.int64).astype(dtype)
    if rows and array.size >= rows:
        array = array[: array.size - array.size % rows].reshape(rows, -1)
    load_bytes(workdir, gallery_file(good_parts["meta"].tobytes(), good_parts, **{member: array}))


# ----------------------------------------------------------------- metadata
SMALL = st.integers(-3, 10)  # near the real counts, indices and versions
JSON = st.one_of(
    SMALL,
    st.lists(SMALL, max_size=3),
    st.sampled_from(["Alice", "Bob", "../x", "unknown", ""]),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats()
        | st.text(max_size=80),
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=12,
    ),
)
TOP_KEYS = ["format", "version", "embedding_space", "dim", "created_at", "updated_at", "people",
            "cap", "configured_cap", "nodes", "operations"]
PERSON_KEYS = ["name", "samples", "enrolled_at", "updated_at"]


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.integers(-1, 2), st.sampled_from(TOP_KEYS + PERSON_KEYS), st.booleans(), JSON
        ),
        min_size=1,
        max_size=4,
    )
)
def test_metadata_mutations(workdir: Path, good_parts: dict[str, np.ndarray], rss_guard: None,
                            edits: list[tuple[int, str, bool, object]]) -> None:
    """Keys deleted or replaced by any JSON value: wrong types, huge or negative numbers,
    inconsistent sample counts, names that are paths or reserved."""
    meta = json.loads(good_parts["meta"].tobytes())
    for person, key, delete, value in edits:
        target = meta if person < 0 or key in TOP_KEYS else meta["people"][person] \
            if isinstance(meta.get("people"), list) and person < len(meta["people"]) \
            and isinstance(meta["people"][person], dict) else meta
        if delete:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)
    load_bytes(
        workdir,
        gallery_file(json.dumps(meta).encode(), good_parts),
    )


def alice_meta(people_entries: list[dict]) -> bytes:
    """Metadata of a gallery of SPACE/DIM whose people are ``people_entries``."""
    return json.dumps({"format": "face_recog_ros.gallery", "version": FORMAT_VERSION,
                       "embedding_space": SPACE, "dim": DIM, "people": people_entries}).encode()


def alice(samples: object) -> dict:
    return {"name": "Alice", "samples": samples, "enrolled_at": 0, "updated_at": 0}


@pytest.mark.parametrize("meta", [
    b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the JSON parser's recursion limit
    b'{"format": "face_recog_ros.gallery", "version": 1e999}',
    b'{"format": "face_recog_ros.gallery", "version": NaN}',
    b"\xff\xfe\x00not utf-8",
    alice_meta([alice(-2)] * 2),
    alice_meta([alice(10**30)]),
    *(alice_meta([alice(samples)]) for samples in ([], [6], [1, 5], "6", 6.0)),
], ids=["deep_nesting", "huge_version", "nan_version", "not_utf8", "negative_duplicate",
        "huge_count", "count_empty_list", "count_list", "count_two_list", "count_string",
        "count_float"])
def test_hostile_metadata(workdir: Path, good_parts: dict[str, np.ndarray], meta: bytes) -> None:
    one_person = np.zeros(
        len(good_parts["owners"]), np.int32
    )  # every row Alice's, as the metadata says
    assert load_bytes(workdir, gallery_file(meta, good_parts, owners=one_person)) is None


# ----------------------------------------------------------------- huge claims
@pytest.mark.parametrize("member, payload", [
    ("embeddings.npy", npy_header((10**12, DIM))),
    ("embeddings.npy", npy_header((2**40, 2**20))),
    ("embeddings.npy", npy_header((10**6, DIM), body=b"\x00" * 64)),
    ("embeddings.npy", npy_header((4, DIM), descr="|V1000000000000")),
    ("owners.npy", npy_header((10**12,), descr="<i8")),
    ("meta.npy", npy_header((10**12,), descr="|u1")),
], ids=["1e12_rows", "2^60_elements", "1e6_rows_64_bytes", "huge_itemsize", "owners", "meta"])
def test_huge_header_refused_before_allocating(
    workdir: Path, good_parts: dict[str, np.ndarray], member: str, payload: bytes
) -> None:
    members = {f"{k}.npy": npy(v) for k, v in good_parts.items()}
    members[member] = payload
    tracemalloc.start()
    try:
        assert load_bytes(workdir, archive(members)) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (
        peak < 8 * 2**20
    ), f"refusing a {len(payload)}-byte member allocated {peak / 2**20:.0f} MiB"


def test_decompression_bomb_refused_before_inflating(
    workdir: Path, good_parts: dict[str, np.ndarray]
) -> None:
    """256 MiB of zeros deflate to ~250 KiB; the declared size must be refused, not inflated."""
    members = {f"{k}.npy": npy(v) for k, v in good_parts.items()}
    members["embeddings.npy"] = npy_header((2**23, DIM)) + bytes(2**28)
    data = archive(members, zipfile.ZIP_DEFLATED)
    del members
    assert len(data) < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(GalleryCorrupt, match="claims"):
            (workdir / "bomb.npz").write_bytes(data)
            load_gallery(workdir / "bomb.npz", SPACE, DIM)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"refusing a decompression bomb allocated {peak / 2**20:.0f} MiB"


# ----------------------------------------------------------------- open() moves bad files aside
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    cut=st.floats(0, 1, exclude_max=True),
    flips=st.lists(st.floats(0, 1, exclude_max=True), max_size=3),
)
def test_open_moves_refused_files_aside_unchanged(
    tmp_path_factory: pytest.TempPathFactory, good_bytes: bytes, cut: float, flips: list[float]
) -> None:
    data = bytearray(good_bytes[: max(1, int(cut * len(good_bytes)))])
    for where in flips:
        data[int(where * len(data))] ^= 0x10
    directory = tmp_path_factory.mktemp("open")
    path = directory / "gallery.npz"
    path.write_bytes(bytes(data))
    gallery, warning = GalleryStore(path).open(SPACE, DIM)
    assert len(gallery) == 0 and warning is not None and str(path) in warning
    assert not path.exists()
    (aside,) = directory.iterdir()
    assert aside.name.startswith("gallery.npz.bad-") and str(aside) in warning
    assert aside.read_bytes() == bytes(data)
