"""The source systems and the files they deliver to the landing zone.

This module is the contract between whatever writes landing files (the real exports, or
:mod:`seg_pipeline.generator`) and the ``raw_*`` assets that load them.  Each source lands one
file per day at ``<landing>/<source>/<YYYY-MM-DD>.<ext>``; the file for day D holds the rows the
source system exported on D (rows that happened on D, plus late rows from earlier days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from seg_pipeline.names import path_under, plain_name, sql_identifier

# The day a file was delivered (its partition): raw tables call it _partition_date, staging
# tables and everything after arrival_date.
RAW_PARTITION_COLUMN = "_partition_date"
STAGING_PARTITION_COLUMN = "arrival_date"


@dataclass(frozen=True, kw_only=True)
class Source:
    """One source system: its name, file format and the columns its export must carry."""

    name: str
    file_format: str  # "csv", "jsonl" or "parquet"
    columns: tuple[str, ...]
    description: str
    key: tuple[str, ...]
    event_time: str | None = None  # when a row happened; None for snapshot-like exports
    # Columns with clear personal values: sealed into the vault at load, never in the warehouse,
    # whose raw table holds `pseudonyms` (keyed hashes and non-identifying derived values) in
    # their place.
    personal: tuple[str, ...] = ()
    pseudonyms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # The name reaches landing paths and table names, the columns the raw tables' DDL.
        plain_name(self.name, "source name")
        if self.file_format not in ("csv", "jsonl", "parquet"):
            raise ValueError(f"source {self.name}: unknown file format {self.file_format!r}")
        for column in (*self.columns, *self.key, *filter(None, [self.event_time])):
            sql_identifier(column, f"source {self.name}: column")

    @property
    def extension(self) -> str:
        return self.file_format

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """The columns of ``raw_<name>``: the file contract's, with the personal ones replaced
        by their pseudonyms where the first of them stood."""
        if not self.personal:
            return self.columns
        first = min(self.columns.index(c) for c in self.personal)
        kept = [c for c in self.columns if c not in self.personal]
        before = sum(1 for c in self.columns[:first] if c not in self.personal)
        return (*kept[:before], *self.pseudonyms, *kept[before:])

    @property
    def raw_table(self) -> str:
        """The table its files load into, as delivered."""
        return f"raw_{self.name}"

    @property
    def staging_table(self) -> str:
        """The table of its typed, checked rows (``sql/staging/stg_<name>.sql``)."""
        return f"stg_{self.name}"

    def path_for(self, landing_dir: Path | str, day: date) -> Path:
        """Where the file for ``day`` lands (always inside ``landing_dir``)."""
        name = f"{date.isoformat(day)}.{self.extension}"
        # Read only: a source folder may be a link to another disk.
        return path_under(
            landing_dir, self.name, name, what=f"{self.name} landing file", follow_links=False
        )


CRM_CUSTOMERS = Source(
    name="crm_customers",
    file_format="csv",
    columns=(
        "customer_id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "birth_date",
        "gender",
        "country",
        "city",
        "signup_date",
        "marketing_consent",
        "updated_at",
    ),
    description=(
        "CRM change-data-capture export: new and changed customers of the day, one row per "
        "customer version. updated_at is UTC (YYYY-MM-DD HH:MM:SS; an offset, if given, is "
        "applied)."
    ),
    key=("customer_id", "updated_at"),
    personal=("email", "phone", "first_name", "last_name", "birth_date"),
    pseudonyms=("email_hash", "phone_hash", "name_hash", "is_email_valid", "birth_year"),
)

ORDERS = Source(
    name="orders",
    file_format="csv",
    columns=(
        "order_id",
        "line_number",
        "customer_id",
        "ordered_at",
        "product_id",
        "category",
        "quantity",
        "unit_price",
        "discount",
        "channel",
        "status",
    ),
    description=(
        "Shop order export, one row per order line; ordered_at is ISO-8601 local time with its "
        "UTC offset; discount is the money taken off the line."
    ),
    key=("order_id", "line_number"),
    event_time="ordered_at",
)

WEB_EVENTS = Source(
    name="web_events",
    file_format="jsonl",
    columns=(
        "event_id",
        "session_id",
        "customer_id",
        "anonymous_id",
        "occurred_at",
        "event_type",
        "url",
        "product_id",
        "device",
        "referrer",
    ),
    description=(
        "Web analytics events as JSON lines; customer_id is null for anonymous visitors, who "
        "carry an anonymous_id instead; occurred_at is ISO-8601 UTC with a Z suffix."
    ),
    key=("event_id",),
    event_time="occurred_at",
)

REVIEWS = Source(
    name="reviews",
    file_format="jsonl",
    columns=("review_id", "customer_id", "product_id", "reviewed_at", "rating", "review_text"),
    description="Product reviews as JSON lines; reviewed_at is ISO-8601 with UTC offset.",
    key=("review_id",),
    event_time="reviewed_at",
)

CAMPAIGN_SENDS = Source(
    name="campaign_sends",
    file_format="parquet",
    columns=(
        "campaign_id",
        "customer_id",
        "sent_at",
        "channel",
        "opened",
        "clicked",
        "converted",
        "control_group",
    ),
    description=(
        "Marketing platform send log as Parquet: one row per customer a campaign selected, "
        "with what the customer did with the message; control_group rows are the campaign's "
        "random holdout, selected but not sent (never opened, clicked or converted; sent_at "
        "when they would have been sent); sent_at is a UTC timestamp."
    ),
    key=("campaign_id", "customer_id"),
    event_time="sent_at",
)

# Every table list of the pipeline (raw and staging assets, quality suites, tests) derives from
# this one.
SOURCES: tuple[Source, ...] = (CRM_CUSTOMERS, ORDERS, WEB_EVENTS, REVIEWS, CAMPAIGN_SENDS)
SOURCES_BY_NAME: dict[str, Source] = {s.name: s for s in SOURCES}
