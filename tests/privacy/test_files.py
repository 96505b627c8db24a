"""The file side of erasure on generated landing files: the narrowed search of large text
files finds exactly what the plain scan finds, and removing lines keeps every other byte."""

from __future__ import annotations

import json
import mmap
import shutil
from pathlib import Path

import pytest

from seg_pipeline.generator import GenerationSummary
from seg_pipeline.privacy import files
from seg_pipeline.settings import Settings


def _customer_lines(path: Path) -> list[tuple[bytes, dict]]:
    """The lines of a generated web-events file that parse (the generator plants broken
    ones), with their event."""
    parsed = []
    for line in path.read_bytes().splitlines(keepends=True):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("customer_id"):
            parsed.append((line, event))
    return parsed


def _positions(path: Path, values: list[bytes]) -> list[int]:
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return sorted(files._text_token_positions(path, buf, values))


@pytest.fixture
def web_file(month: tuple[Settings, GenerationSummary], tmp_path: Path) -> Path:
    source = sorted((month[0].landing_dir / "web_events").glob("*.jsonl"))[-1]
    return Path(shutil.copy(source, tmp_path / source.name))


def test_the_narrowed_search_finds_what_the_plain_scan_finds(
    web_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, event = _customer_lines(web_file)[0]
    customer, session = event["customer_id"], event["session_id"]
    # the id, a session, a prefix of the id (no whole token) and a value found nowhere
    values = [customer.encode(), session.encode(), customer[:-1].encode(), b"Cnowhere"]
    plain = _positions(web_file, values)
    monkeypatch.setattr(files, "LARGE_TEXT_BYTES", 0)
    assert _positions(web_file, values) == plain
    assert len(plain) >= 2

    # a unit separator in the file: the narrowing would split lines, the plain scan runs
    with web_file.open("ab") as handle:
        handle.write(f'{{"note": "a\x1fb {customer}"}}\n'.encode())
    assert len(_positions(web_file, values)) == len(plain) + 1


def test_removing_lines_keeps_every_other_byte(
    web_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "LARGE_TEXT_BYTES", 0)
    lines = web_file.read_bytes().splitlines(keepends=True)
    customer = _customer_lines(web_file)[0][1]["customer_id"]
    theirs = [line for line in lines if f'"{customer}"'.encode() in line]
    web_file.chmod(0o640)
    assert files._drop_from_file(web_file, [customer]) == len(theirs)
    assert web_file.read_bytes() == b"".join(x for x in lines if x not in theirs)
    assert web_file.stat().st_mode & 0o777 == 0o640
    assert files._drop_from_file(web_file, [customer]) == 0  # again: nothing more
