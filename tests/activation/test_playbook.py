"""Playbook validation: every mistake is an error naming the file and line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from seg_pipeline.activation.playbook import CHANNELS, PlaybookError, load_playbook
from seg_pipeline.definitions import build_definitions
from seg_pipeline.settings import REPO_ROOT, Settings

VALID = """\
seed: 3
campaigns:
  - id: winback_email
    channel: email
    segments: [At-risk long-timers]
    when:
      - churn_risk > 0.6
      - expected_clv >= 20
  - id: deals_push
    channel: push
    rank_by: response
    max_audience: 100
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "playbook.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["playbook.yaml", "playbooks/simulation.yaml"])
def test_the_repository_playbooks_are_valid(name: str) -> None:
    book = load_playbook(REPO_ROOT / name)
    assert book.campaigns and {c.channel for c in book.campaigns} <= set(CHANNELS)
    assert len(book.version) == 12


def test_a_valid_playbook_keeps_lines_defaults_and_conditions(tmp_path: Path) -> None:
    book = load_playbook(write(tmp_path, VALID))
    winback, deals = book.campaigns
    assert book.seed == 3
    assert (winback.line, deals.line) == (3, 9)
    assert winback.segment_lines == (5,)
    assert [(c.field, c.op, c.value) for c in winback.conditions] == [
        ("churn_risk", ">", 0.6),
        ("expected_clv", ">=", 20.0),
    ]
    assert (winback.holdout_share, winback.window_days, winback.cooldown_days) == (0.1, 14, 14)
    assert deals.score_column("response") == "response_push"


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        ("churn_risk > 0.6", "chrun_risk > 0.6", (":7:", "unknown score field 'chrun_risk'")),
        ("churn_risk > 0.6", "churn_risk >> 0.6", (":7:", "malformed condition")),
        ("churn_risk > 0.6", "churn_risk > high", (":7:", "malformed condition")),
        ("channel: email", "channel: fax", (":3:", "unknown channel 'fax'")),
        ("id: deals_push", "id: winback_email", (":9:", "already used on line 3")),
        ("rank_by: response", "rank_by: lifetime", (":9:", "rank_by: unknown score field")),
        ("max_audience: 100", "max_audience: -1", (":9:", "max_audience must be")),
        ("    channel: push", "    channel: push\n    holdout: 0.1", (":9:", "unknown keys")),
        ("    channel: push", "    channel: push\n    holdout_share: 0.9", (":9:", "at most 0.5")),
    ],
)
def test_mistakes_name_their_line(
    tmp_path: Path, change: str, line: str, words: tuple[str, ...]
) -> None:
    path = write(tmp_path, VALID.replace(change, line, 1))
    with pytest.raises(PlaybookError) as error:
        load_playbook(path)
    message = str(error.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("segments: [At-risk long-timers]", "segments: [x"))
    with pytest.raises(PlaybookError, match=r"playbook.yaml:\d+: not valid YAML"):
        load_playbook(path)


def test_definitions_refuse_a_broken_playbook(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("churn_risk > 0.6", "churn_rsk > 0.6"))
    settings = replace(Settings.from_env({"SEG_DATA_DIR": str(tmp_path)}), playbook_path=path)
    with pytest.raises(PlaybookError, match=r"playbook.yaml:7: campaign 'winback_email'"):
        build_definitions(settings)
