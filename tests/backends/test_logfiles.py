"""Replica log files: tails without reading whole files, and following what was appended since an offset."""

from __future__ import annotations

from pathlib import Path

import pytest

from tide.backends import logfiles
from tide.backends.logfiles import LogText, lines_after, read_replica_logs, tail_lines_of


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(text)


def test_tail_of_a_file_larger_than_one_block(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    write(path, "".join(f"line {i:06d} " + "x" * 100 + "\n" for i in range(5000)))  # ~0.5 MB, 8 blocks
    tail = tail_lines_of(path, 3)
    assert tail.text.splitlines()[0].startswith("line 004997") and len(tail.text.splitlines()) == 3
    assert tail.end == path.stat().st_size
    assert tail_lines_of(path, 10_000).text.count("\n") == 5000  # more lines than there are: all of them
    write(path, "no newline yet")
    assert tail_lines_of(path, 1).text == "no newline yet\n"


def test_follow_returns_only_whole_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    write(path, "one\ntwo\n")
    start = tail_lines_of(path, 10)
    assert lines_after(path, start.end) == LogText("", start.end)
    write(path, "three\nfou")  # "fou" is still being written
    got = lines_after(path, start.end)
    assert got.text == "three\n"
    write(path, "r\n")
    assert lines_after(path, got.end).text == "four\n"


def test_a_replaced_shorter_log_is_followed_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    write(path, "a long first life of this log\n")
    end = tail_lines_of(path, 5).end
    path.write_text("new\n")
    assert lines_after(path, end) == LogText("new\n", 4)


def test_one_endless_line_is_returned_in_pieces_not_held_forever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logfiles, "FOLLOW_MAX_BYTES", 8)
    path = tmp_path / "r.log"
    write(path, "0123456789abcdef")
    first = lines_after(path, 0)
    assert (first.text, first.end) == ("01234567\n", 8)


def test_per_deployment_listing_new_replicas_from_their_start(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write(logs / "chat" / "chat-r1.log", "r1 started\nr1 ready\n")
    tails = read_replica_logs(logs, "chat", 1)
    assert {k: v.text for k, v in tails.items()} == {"chat-r1": "r1 ready\n"}
    write(logs / "chat" / "chat-r1.log", "r1 served\n")
    write(logs / "chat" / "chat-r2.log", "r2 started\n")  # appeared after the first look
    followed = read_replica_logs(logs, "chat", 1, after={"chat-r1": tails["chat-r1"].end})
    assert {k: v.text for k, v in followed.items()} == {"chat-r1": "r1 served\n", "chat-r2": "r2 started\n"}
    assert read_replica_logs(logs, "nothing-here", 5) == {}
