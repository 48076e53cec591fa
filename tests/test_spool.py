"""The spool: versioned records, atomic writes, caps by count, bytes, age and record size,
and drop accounting (every drop is counted once, and carried on by dropped records)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_cli_telemetry.delivery import convert
from otel_cli_telemetry.handoff import spool
from otel_cli_telemetry.paths import Paths
from otel_cli_telemetry.schema import RECORD_VERSION


def record_line(n: int = 0, dropped: int = 0, pad: int = 0) -> bytes:
    """A valid spool record (what the hand-off writes), optionally carrying drops."""
    attributes: dict[str, object] = {"cli_telemetry.command": "deploy", "process.exit.code": 0}
    if dropped:
        attributes["cli_telemetry.sdk.dropped"] = dropped
    if pad:
        attributes["app.note"] = "x" * pad
    data = {
        "v": RECORD_VERSION,
        "app": "spoolapp",
        "trace_id": f"{n + 1:032x}",
        "span_id": f"{n + 1:016x}",
        "parent_span_id": None,
        "name": "spoolapp deploy",
        "start_ns": 1_700_000_000_000_000_000 + n,
        "end_ns": 1_700_000_000_100_000_000 + n,
        "status": "UNSET",
        "attributes": attributes,
        "resource": {"service.name": "spoolapp"},
        "phases": [],
        "metrics": [],
    }
    return json.dumps(data).encode()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(str(tmp_path / "state"))


def test_write_is_atomic_and_named_in_capture_order(paths: Paths) -> None:
    for n in range(3):
        assert spool.write(paths, record_line(n))
    names = os.listdir(paths.spool_dir)
    assert len(names) == 3
    assert not [n for n in names if n.startswith(".")], "no temp file may be left behind"
    entries = spool.entries(paths)
    assert [json.loads(Path(e.path).read_bytes())["span_id"] for e in entries] == [
        f"{n + 1:016x}" for n in range(3)
    ]
    assert all(oct(os.stat(e.path).st_mode & 0o777) == "0o600" for e in entries)
    assert oct(os.stat(paths.spool_dir).st_mode & 0o777) == "0o700"


def test_the_format_is_versioned_and_other_versions_are_refused() -> None:
    good = json.loads(record_line())
    assert convert.validate(good)["v"] == RECORD_VERSION
    for bad in ({**good, "v": RECORD_VERSION + 1}, {**good, "v": None}, [good], "text"):
        with pytest.raises(convert.InvalidRecord):
            convert.validate(bad)


@pytest.mark.parametrize(
    "damage",
    [
        {"trace_id": "zz"},
        {"span_id": "0" * 16},
        {"start_ns": "yesterday"},
        {"phases": [{"name": "build"}]},
        {"phases": "build"},
        {"metrics": [{"name": "m", "kind": "gauge", "points": []}]},
        {"attributes": []},
    ],
)
def test_damaged_records_are_invalid_not_crashes(damage: dict[str, object]) -> None:
    with pytest.raises(convert.InvalidRecord):
        convert.validate({**json.loads(record_line()), **damage})


def test_validate_cleans_attribute_values_the_encoder_would_refuse() -> None:
    data = json.loads(record_line())
    data["attributes"].update({"ok.list": [1, 2], "mixed": [1, "a"], "nested": {"a": 1}})
    data["attributes"]["huge"] = 2**70
    cleaned = convert.validate(data)["attributes"]
    assert cleaned["ok.list"] == [1, 2]
    assert "mixed" not in cleaned
    assert "nested" not in cleaned
    assert "huge" not in cleaned


def test_count_ignores_temp_and_foreign_files(paths: Paths) -> None:
    spool.write(paths, record_line())
    Path(paths.spool_dir, ".partial.json.123.tmp").write_bytes(b"{")
    Path(paths.spool_dir, "README").write_text("not a record")
    assert spool.count(paths) == 1
    assert len(spool.entries(paths)) == 1


def test_count_cap_drops_the_oldest_and_counts_it(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "MAX_RECORDS", 5)
    for n in range(8):
        assert spool.write(paths, record_line(n))
    remaining = [json.loads(Path(e.path).read_bytes())["span_id"] for e in spool.entries(paths)]
    assert remaining == [f"{n + 1:016x}" for n in range(3, 8)]
    assert spool.pending_drops(paths) == 3


def test_byte_cap_drops_the_oldest(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(6):
        spool.write(paths, record_line(n, pad=1000))
    size = spool.entries(paths)[0].size
    monkeypatch.setattr(spool, "MAX_BYTES", size * 4 + 10)
    assert spool.enforce_caps(paths) == 2
    assert len(spool.entries(paths)) == 4
    assert spool.pending_drops(paths) == 2


def test_byte_cap_is_checked_on_write_while_the_spool_is_large(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While delivery fails the spool grows; writes then enforce every cap themselves."""
    size = len(record_line(0, pad=500))
    monkeypatch.setattr(spool, "CHECK_CAPS_FROM", 4)
    monkeypatch.setattr(spool, "MAX_BYTES", 4 * size + 50)
    for n in range(100):
        spool.write(paths, record_line(n, pad=500))
        # checked every 16 writes: never more than that past the cap
        assert sum(e.size for e in spool.entries(paths)) <= spool.MAX_BYTES + 16 * size
    assert spool.pending_drops(paths) + spool.count(paths) == 100


def test_age_cap(paths: Paths) -> None:
    spool.write(paths, record_line(0))
    spool.write(paths, record_line(1))
    old = spool.entries(paths)[0].path
    week_ago = time.time() - spool.MAX_AGE_S - 60
    os.utime(old, (week_ago, week_ago))
    assert spool.enforce_caps(paths) == 1
    assert not os.path.exists(old)
    assert spool.pending_drops(paths) == 1


def test_a_record_too_large_is_dropped_and_counted(paths: Paths) -> None:
    assert not spool.write(paths, record_line(pad=spool.MAX_RECORD_BYTES))
    assert spool.count(paths) == 0
    assert spool.pending_drops(paths) == 1


def test_dropped_records_hand_on_the_drops_they_carried(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "MAX_RECORDS", 1)
    spool.write(paths, record_line(0, dropped=7))
    spool.write(paths, record_line(1))  # pushes out the first, which reported 7 drops
    assert spool.pending_drops(paths) == 8


def test_stale_temp_files_are_removed(paths: Paths) -> None:
    spool.write(paths, record_line())
    stale = Path(paths.spool_dir, ".x.json.1.ab.tmp")
    stale.write_bytes(b"{")
    hours_ago = time.time() - 7200
    os.utime(stale, (hours_ago, hours_ago))
    fresh = Path(paths.spool_dir, ".y.json.1.cd.tmp")
    fresh.write_bytes(b"{")
    spool.enforce_caps(paths)
    assert not stale.exists()
    assert fresh.exists(), "a temp file being written right now must be left alone"


def test_claim_takes_the_count_once(paths: Paths) -> None:
    spool.add_drops(paths, 3)
    assert spool.claim_drops(paths) == 3
    assert spool.claim_drops(paths) == 0
    assert spool.pending_drops(paths) == 0


def test_traces_done_marker(paths: Paths) -> None:
    spool.write(paths, record_line())
    (entry,) = spool.entries(paths)
    done = spool.mark_traces_done(entry)
    assert done.traces_done
    assert done.path.endswith(".t.json")
    assert spool.mark_traces_done(done) is done
    assert spool.count(paths) == 1
    assert spool.entries(paths)[0].traces_done


def test_unusable_state_dir_never_raises(tmp_path: Path) -> None:
    """A state dir that cannot exist (its parent is a file): write says False, no exception."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    paths = Paths(str(blocker / "state"))
    assert not spool.write(paths, record_line())
    assert not spool.add_drops(paths, 1)
    assert spool.count(paths) == 0
    assert spool.entries(paths) == []
    assert spool.enforce_caps(paths) == 0
    assert spool.claim_drops(paths) == 0


# -- what the spool accepts (issue 13) ---------------------------------------------------


def test_only_regular_bounded_shallow_files_are_records(paths: Paths, tmp_path: Path) -> None:
    """Anything else under a record's name is set aside (never opened in a way that could
    block) and counted as one drop each; good records are untouched."""
    spool.write(paths, record_line(0))
    folder = Path(paths.spool_dir)
    target = tmp_path / "elsewhere.json"
    target.write_bytes(record_line(1))
    (folder / "00000000000000000001-1-link00.json").symlink_to(target)
    (folder / "00000000000000000002-1-dir000.json").mkdir()
    os.mkfifo(folder / "00000000000000000003-1-fifo00.json")
    with open(folder / "00000000000000000004-1-big000.json", "wb") as handle:
        handle.truncate(spool.MAX_RECORD_BYTES + 1)
    assert spool.count(paths) == 2, "the regular files only (the big one is set aside later)"
    (entry,) = spool.entries(paths)
    assert json.loads(Path(entry.path).read_bytes())["span_id"] == f"{1:016x}"
    assert spool.pending_drops(paths) == 4
    assert target.exists(), "a symlink's target is never touched"
    assert sorted(os.listdir(folder)) == [os.path.basename(entry.path)]


@pytest.mark.parametrize(
    ("raw", "deep"),
    [
        (b"[" * 17 + b"]" * 17, True),
        (b"[" * 16 + b"]" * 16, False),
        (json.dumps({"a": "[" * 100}).encode(), False),  # brackets inside a string
        (json.dumps({"a": '\\"[[[' * 30}).encode(), False),  # escaped quotes
    ],
)
def test_nesting_depth_ignores_strings(raw: bytes, deep: bool) -> None:
    assert (spool.nesting_depth(raw) > spool.MAX_DEPTH) is deep


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _depth_by_regex(raw: bytes) -> int:
    """The reference: strings removed by a regex that follows JSON's escapes, then counted."""
    depth = deepest = 0
    for char in _JSON_STRING.sub(b"", raw):
        if char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in b"]}":
            depth -= 1
    return deepest


_AWKWARD = st.sampled_from(["s", '"[{\\', "\\\\[", 'a\\"b', "\\", '"', "[", "]", "{", "é"])


@settings(max_examples=400, deadline=None)
@given(st.recursive(
    st.integers() | _AWKWARD | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_AWKWARD, inner, max_size=3),
    max_leaves=40,
), st.booleans())
def test_nesting_depth_matches_a_regex_that_follows_escapes(value: object, ascii: bool) -> None:
    """Strings are skipped by splitting on quotes once escaped backslashes and quotes are
    gone (C speed, no regex); the verdict must match a scan that follows JSON's escapes."""
    raw = json.dumps(value, ensure_ascii=ascii).encode()
    assert (spool.nesting_depth(raw) > spool.MAX_DEPTH) is (
        _depth_by_regex(raw) > spool.MAX_DEPTH
    )
    deep = b"[" * 17 + raw + b"]" * 17
    assert spool.nesting_depth(deep) > spool.MAX_DEPTH


def test_unreadable_files_carry_nothing_and_never_raise(paths: Paths) -> None:
    spool.write(paths, record_line(0))
    folder = Path(paths.spool_dir)
    deep = folder / "00000000000000000001-1-deep00.json"
    deep.write_bytes(b'{"a":' * 50_000)
    assert spool.carried_drops(str(deep)) == 0
    with pytest.raises(spool.Unreadable):
        spool.load(str(deep))


def test_the_quarantine_is_bounded_and_cleared_by_disable(paths: Paths) -> None:
    folder = Path(paths.spool_dir)
    folder.mkdir(parents=True)
    for n in range(spool.QUARANTINE_MAX_FILES + 5):
        bad = folder / f"{n:020d}-1-bad000.json"
        bad.write_bytes(b"not json")
        assert spool.quarantine(paths, str(bad))
    assert len(os.listdir(spool.quarantine_dir(paths))) == spool.QUARANTINE_MAX_FILES
    assert spool.pending_drops(paths) == spool.QUARANTINE_MAX_FILES + 5
    spool.clear_quarantine(paths)
    assert os.listdir(spool.quarantine_dir(paths)) == []
