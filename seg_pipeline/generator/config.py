"""Configuration and run summary of the landing-file generator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

# What a shift changes from ``shift_date`` on (GeneratorConfig.shift_kind): a behaviour of every
# customer, scaled by ``shift_factor`` (the per-customer parameter it multiplies in brackets),
# or the persona mix of the customer base.
SHIFT_BEHAVIOURS: dict[str, str] = {
    "order_rate": "lam",  # organic orders per day (0.5: order frequency halves)
    "session_rate": "sess_rate",  # web sessions per day
    "spend": "spend_mean",  # mean order value
}
SHIFT_KINDS: tuple[str, ...] = (*SHIFT_BEHAVIOURS, "persona_mix")


@dataclass(frozen=True)
class GeneratorConfig:
    """What world to simulate and where to write it.

    Parameters
    ----------
    landing_dir
        Root of the landing zone; files go to ``<landing_dir>/<source>/<YYYY-MM-DD>.<ext>``.
    truth_dir
        Where the planted ground truth is written (must not be inside ``landing_dir``).
    start_date
        Go-live: first simulated day; its CRM file is the full initial export.
    end_date
        Last simulated day (inclusive).
    n_customers
        Customers existing at ``start_date``; new sign-ups join daily on top.
    seed
        Seed of everything (catalogue, name pools, behaviour, mess).
    messiness
        Rate of each kind of data-quality problem; 0 gives clean files.
    web_events_per_day
        Optional target number of web events per day (browsing is scaled to hit it).
    persona_shares
        Optional ``(persona, share)`` pairs overriding the default persona mix at start.
    holdout_share
        Share of each generated campaign's selected audience held out as a random control
        group: recorded in the send log (``control_group`` true) but not sent.
    activation_feed_dir
        Optional folder of the pipeline's delivery exports: the CSV files of
        ``<activation_feed_dir>/<YYYY-MM-DD>/`` (columns ``campaign_id``, ``customer_id``,
        ``channel``; others ignored) are sent on the next day to the listed customers, who
        respond with their planted uplift.
    write_from
        Optional first day whose landing files are written; the simulation still starts on
        ``start_date``, so the files written are those of a full run.
    shift_date
        Optional day from which the world changes (data drift, to exercise the pipeline's
        drift monitoring); ``None`` (the default) changes nothing and draws nothing.
    shift_kind
        What changes (:data:`SHIFT_KINDS`): ``order_rate``, ``session_rate`` or ``spend``
        multiply that behaviour of every customer (existing ones from ``shift_date``,
        sign-ups from that day on) by ``shift_factor``; ``persona_mix`` turns a share
        ``shift_share`` of the existing customers, picked by a seeded draw of its own, into
        ``shift_persona`` customers (their behaviour redrawn from that persona; the truth
        folder records the new persona).
    shift_factor
        Multiplier of the behaviour shifted (e.g. 0.5: order frequency halves).
    shift_persona
        The persona a ``persona_mix`` shift turns customers into.
    shift_share
        Share of the existing customers a ``persona_mix`` shift changes.
    """

    landing_dir: Path
    truth_dir: Path
    start_date: date
    end_date: date
    n_customers: int = 1000
    seed: int = 42
    messiness: float = 0.02
    web_events_per_day: int | None = None
    persona_shares: tuple[tuple[str, float], ...] | None = None
    holdout_share: float = 0.2
    activation_feed_dir: Path | None = None
    write_from: date | None = None
    shift_date: date | None = None
    shift_kind: str = "session_rate"
    shift_factor: float = 2.0
    shift_persona: str = "bargain_hunter"
    shift_share: float = 0.3

    def validate(self) -> None:
        """Raise ``ValueError`` for inconsistent settings."""
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        if self.n_customers < 1:
            raise ValueError("n_customers must be at least 1")
        if not 0.0 <= self.messiness <= 0.5:
            raise ValueError("messiness must be between 0 and 0.5")
        if self.write_from is not None and not (
            self.start_date <= self.write_from <= self.end_date
        ):
            raise ValueError("write_from must lie between start_date and end_date")
        if not 0.0 <= self.holdout_share < 1.0:
            raise ValueError("holdout_share must be at least 0 and below 1")
        if self.web_events_per_day is not None and self.web_events_per_day < 0:
            raise ValueError("web_events_per_day must be non-negative")
        if self.shift_date is not None:
            if not self.start_date < self.shift_date <= self.end_date:
                raise ValueError("shift_date must lie after start_date, up to end_date")
            if self.shift_kind not in SHIFT_KINDS:
                raise ValueError(f"shift_kind must be one of {SHIFT_KINDS}")
            if self.shift_factor <= 0:
                raise ValueError("shift_factor must be positive")
            if not 0.0 < self.shift_share <= 1.0:
                raise ValueError("shift_share must be above 0 and at most 1")
        landing = Path(self.landing_dir).resolve()
        truth = Path(self.truth_dir).resolve()
        if truth == landing or landing in truth.parents:
            raise ValueError("truth_dir must not be inside landing_dir")


@dataclass
class GenerationSummary:
    """What :func:`generate` wrote.

    Attributes
    ----------
    rows
        Rows (lines, including planted duplicates, late and malformed rows) per source and day.
    mess
        Planted problems per source and kind (see :data:`MESS_KINDS`).
    files
        Every landing file written.
    seconds
        Wall-clock time of the run.
    n_customers_total
        Customers existing by ``end_date`` (initial plus sign-ups).
    activation
        The activation feed read: files, rows, rows left out (invalid, duplicate, unknown
        customer) and sends made.
    """

    rows: dict[str, dict[date, int]] = field(default_factory=dict)
    mess: dict[str, dict[str, int]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    n_customers_total: int = 0
    activation: dict[str, int] = field(default_factory=dict)

    @property
    def files_written(self) -> int:
        """Number of landing files written."""
        return len(self.files)

    def total_rows(self, source: str) -> int:
        """Rows written for ``source`` over all days."""
        return sum(self.rows.get(source, {}).values())
