"""The playbook: which customers each campaign targets, on which channel, with what holdout.

A playbook is a YAML file kept in the repository (path in config, ``SEG_PLAYBOOK``)::

    seed: 1                        # of the treated/holdout split
    campaigns:
      - id: winback_email          # lower-case letters, digits, underscores
        description: Win-back offer for long-standing customers likely to leave
        channel: email             # email, sms or push
        segments: [At-risk long-timers]   # optional: any of these segment names
        when: [churn_risk > 0.6]   # optional: all of these conditions on the day's scores
        holdout_share: 0.1         # random share kept out of the send (default 0.1)
        frequency_cap: {max_messages: 3, days: 7}   # messages of any campaign
        measurement_window_days: 14
        cooldown_days: 14          # not selected again by this campaign (default: the window)
        rank_by: churn_risk        # optional, with max_audience: the highest first
        max_audience: 5000

Conditions compare a numeric field of ``customer_scores`` (or ``response``, the response
probability on the campaign's channel, or ``uplift``, what a send on it adds to the probability
of an order: ``uplift_scores``) with a number; ``rank_by: uplift`` targets the customers a send
moves most instead of those most likely to buy anyway. Everything is validated when the
definitions load: a mistake is a :class:`PlaybookError` naming the file and line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dagster import ConfigurableResource
from pydantic import Field

CHANNELS = ("email", "sms", "push")
# Numeric columns of customer_scores and uplift_scores a condition or rank_by may name;
# ``response`` is the response probability on the campaign's own channel, ``uplift`` the
# uplift of a send on it.
SCORE_FIELDS = (
    "churn_risk",
    "churn_risk_decile",
    "purchase_propensity",
    "expected_days_to_next_order",
    "response_email",
    "response_sms",
    "response_push",
    "response",
    "uplift_email",
    "uplift_sms",
    "uplift_push",
    "uplift",
    "expected_clv",
    "prob_alive",
)
OPERATORS = ("<=", ">=", "!=", "<", ">", "=")
_CONDITION = re.compile(
    r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|!=|<|>|=)\s*"
    r"(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$"
)
# Whole-string match (fullmatch): the id names export files, so "a\n" or "../x" must fail.
_CAMPAIGN_ID = re.compile(r"[a-z][a-z0-9_]{0,47}")
_LINE = "__line__"
CAMPAIGN_KEYS = {
    "id",
    "description",
    "channel",
    "segments",
    "when",
    "holdout_share",
    "frequency_cap",
    "measurement_window_days",
    "cooldown_days",
    "rank_by",
    "max_audience",
}
DEFAULT_HOLDOUT_SHARE = 0.1
DEFAULT_WINDOW_DAYS = 14
DEFAULT_CAP = {"max_messages": 3, "days": 7}


class PlaybookError(ValueError):
    """A playbook that cannot be used, with the file and line of the mistake."""


@dataclass(frozen=True)
class Condition:
    """``field op value`` on the day's scores."""

    field: str
    op: str
    value: float
    text: str


@dataclass(frozen=True)
class Campaign:
    """One playbook entry."""

    id: str
    channel: str
    line: int
    description: str = ""
    segments: tuple[str, ...] = ()
    segment_lines: tuple[int, ...] = ()
    conditions: tuple[Condition, ...] = ()
    holdout_share: float = DEFAULT_HOLDOUT_SHARE
    cap_messages: int = DEFAULT_CAP["max_messages"]
    cap_days: int = DEFAULT_CAP["days"]
    window_days: int = DEFAULT_WINDOW_DAYS
    cooldown_days: int = DEFAULT_WINDOW_DAYS
    rank_by: str | None = None
    max_audience: int | None = None

    def score_column(self, field: str) -> str:
        """The audience_candidates column ``field`` names for this campaign."""
        return f"{field}_{self.channel}" if field in ("response", "uplift") else field


@dataclass(frozen=True)
class Playbook:
    """The validated playbook and its version (a hash of the file's bytes)."""

    path: str
    version: str
    seed: int
    campaigns: tuple[Campaign, ...]


class _LineLoader(yaml.SafeLoader):
    """Safe YAML loading that remembers the (1-based) line of every mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping


def _scalar_lines(node: yaml.Node, key: str) -> list[int]:
    """Lines of the items of the sequence under ``key`` of a mapping node."""
    for k, v in getattr(node, "value", []):
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            if isinstance(v, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in v.value]
            return [v.start_mark.line + 1]
    return []


def load_playbook(path: Path | str) -> Playbook:
    """Read and validate the playbook at ``path``; :class:`PlaybookError` names the line of
    every mistake it finds."""
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise PlaybookError(f"{path}: cannot read the playbook: {exc.strerror}") from exc
    text = raw_bytes.decode("utf-8", errors="replace")
    try:
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PlaybookError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    errors: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("campaigns"), list):
        raise PlaybookError(f"{path}:1: a playbook is a mapping with a 'campaigns' list")
    unknown = set(data) - {"seed", "campaigns", _LINE}
    if unknown:
        errors.append(f"{path}:1: unknown top-level keys {sorted(unknown)}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        errors.append(f"{path}:1: seed must be an integer, not {seed!r}")
        seed = 0
    campaign_nodes = next(
        (v.value for k, v in root.value if k.value == "campaigns"), []
    )  # the sequence items, for item lines
    campaigns: list[Campaign] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(data["campaigns"]):
        node = campaign_nodes[i] if i < len(campaign_nodes) else None
        line = node.start_mark.line + 1 if node is not None else 1
        campaign = _campaign(entry, node, line, f"{path}", errors)
        if campaign is None:
            continue
        if campaign.id in seen:
            errors.append(
                f"{path}:{line}: campaign id '{campaign.id}' is already used on line "
                f"{seen[campaign.id]}"
            )
        seen[campaign.id] = line
        campaigns.append(campaign)
    if not campaigns and not errors:
        errors.append(f"{path}:1: the playbook has no campaigns")
    if errors:
        raise PlaybookError("invalid playbook:\n" + "\n".join(errors))
    version = hashlib.sha256(raw_bytes).hexdigest()[:12]
    return Playbook(path=str(path), version=version, seed=seed, campaigns=tuple(campaigns))


def _campaign(
    entry: Any, node: yaml.Node | None, line: int, path: str, errors: list[str]
) -> Campaign | None:
    """One campaign entry, or None with its mistakes appended to ``errors``."""
    where = f"{path}:{line}"
    if not isinstance(entry, dict):
        errors.append(f"{where}: a campaign is a mapping (id, channel, ...), not {entry!r}")
        return None
    before = len(errors)
    unknown = set(entry) - CAMPAIGN_KEYS - {_LINE}
    if unknown:
        errors.append(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(CAMPAIGN_KEYS)})")
    cid = entry.get("id")
    if not isinstance(cid, str) or not _CAMPAIGN_ID.fullmatch(cid):
        errors.append(
            f"{where}: id {cid!r} must be lower-case letters, digits and underscores, "
            "starting with a letter (at most 48)"
        )
        cid = str(cid)
    label = f"{where}: campaign '{cid}'"
    channel = entry.get("channel")
    if channel not in CHANNELS:
        errors.append(f"{label}: unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
    segments = entry.get("segments", [])
    if isinstance(segments, str):
        segments = [segments]
    if not isinstance(segments, list) or not all(isinstance(s, str) and s for s in segments):
        errors.append(f"{label}: segments must be a list of segment names")
        segments = []
    segment_lines = _scalar_lines(node, "segments") if node is not None else []
    if len(segment_lines) != len(segments):
        segment_lines = [line] * len(segments)
    when = entry.get("when", [])
    if isinstance(when, str):
        when = [when]
    condition_lines = _scalar_lines(node, "when") if node is not None else []
    conditions = []
    for k, text in enumerate(when if isinstance(when, list) else [when]):
        at = f"{path}:{condition_lines[k] if k < len(condition_lines) else line}"
        condition = _condition(text, at, cid, errors)
        if condition is not None:
            conditions.append(condition)
    holdout = _number(entry, "holdout_share", DEFAULT_HOLDOUT_SHARE, label, errors)
    if not 0 < holdout <= 0.5:
        errors.append(f"{label}: holdout_share {holdout} must be above 0 and at most 0.5")
    window = _integer(entry, "measurement_window_days", DEFAULT_WINDOW_DAYS, label, errors)
    cooldown = _integer(entry, "cooldown_days", window, label, errors)
    cap = entry.get("frequency_cap", DEFAULT_CAP)
    if not isinstance(cap, dict) or set(cap) - {"max_messages", "days", _LINE}:
        errors.append(f"{label}: frequency_cap is {{max_messages: N, days: D}}, not {cap!r}")
        cap = DEFAULT_CAP
    cap_messages = _integer(cap, "max_messages", DEFAULT_CAP["max_messages"], label, errors)
    cap_days = _integer(cap, "days", DEFAULT_CAP["days"], label, errors)
    rank_by = entry.get("rank_by")
    if rank_by is not None and rank_by not in SCORE_FIELDS:
        errors.append(f"{label}: rank_by: unknown score field {rank_by!r}")
    max_audience = entry.get("max_audience")
    if max_audience is not None and (
        not isinstance(max_audience, int) or isinstance(max_audience, bool) or max_audience < 1
    ):
        errors.append(f"{label}: max_audience must be a positive integer, not {max_audience!r}")
    if (max_audience is None) != (rank_by is None):
        errors.append(f"{label}: rank_by and max_audience go together (the top N by a score)")
    description = entry.get("description", "")
    if len(errors) > before:
        return None
    return Campaign(
        id=cid,
        channel=channel,
        line=line,
        description=str(description),
        segments=tuple(segments),
        segment_lines=tuple(segment_lines),
        conditions=tuple(conditions),
        holdout_share=holdout,
        cap_messages=cap_messages,
        cap_days=cap_days,
        window_days=window,
        cooldown_days=cooldown,
        rank_by=rank_by,
        max_audience=max_audience,
    )


def _condition(text: Any, where: str, cid: str, errors: list[str]) -> Condition | None:
    match = _CONDITION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        errors.append(
            f"{where}: campaign '{cid}': malformed condition {text!r} (expected "
            "'<score field> <op> <number>' with op one of " + " ".join(OPERATORS) + ")"
        )
        return None
    field = match["field"]
    if field not in SCORE_FIELDS:
        errors.append(
            f"{where}: campaign '{cid}': unknown score field {field!r} in {text!r} "
            f"(known: {', '.join(SCORE_FIELDS)})"
        )
        return None
    return Condition(field=field, op=match["op"], value=float(match["value"]), text=text.strip())


def _number(entry: dict, key: str, default: float, label: str, errors: list[str]) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(f"{label}: {key} must be a number, not {value!r}")
        return default
    return float(value)


def _integer(entry: dict, key: str, default: int, label: str, errors: list[str]) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        errors.append(f"{label}: {key} must be a positive integer, not {value!r}")
        return default
    return value


class PlaybookFile(ConfigurableResource):
    """The playbook the audiences follow (validated when the definitions load)."""

    path: str = Field(description="Path of the playbook YAML file")

    def load(self) -> Playbook:
        return load_playbook(self.path)
