"""The staging models: which SQL file builds which table from which source, with what rules.

One place for the list: the staging assets, the quality checks (one suite per staging table
that has row rules) and the tests derive their tables from :data:`MODELS`, and :data:`MODELS`
derives one ``stg_<source>`` model per source in :data:`seg_pipeline.sources.SOURCES`. No
Dagster here, so anything may import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from seg_pipeline.sources import CRM_CUSTOMERS, SOURCES, Source


@dataclass(frozen=True, kw_only=True)
class StagingModel:
    """One staging SQL file (``sql/staging/<name>.sql``) and where its rows go.

    Parameters
    ----------
    name
        Asset name and SQL file name.
    source
        The source whose raw table the SQL reads.
    table
        The table written (default: ``name``).
    row_rules
        The SQL marks rows that break a row rule (``_rule``/``_reason``): they go to the
        quarantine, and the table has a Great Expectations suite. False for tables that only
        reshape rows another staging model already checked.
    deps
        Staging assets that must run first (beside the raw table).
    group
        Dagster asset group.
    preview
        Whether the materialization metadata shows a preview of rows.
    """

    name: str
    source: Source
    table: str = ""
    row_rules: bool = True
    deps: tuple[str, ...] = ()
    group: str = "staging"
    preview: bool = True

    def __post_init__(self) -> None:
        if not self.table:
            object.__setattr__(self, "table", self.name)

    @property
    def raw_table(self) -> str:
        return self.source.raw_table

    @property
    def sql_name(self) -> str:
        return f"staging/{self.name}"

    @property
    def dated(self) -> bool:
        """Rows carry their real day beside the arrival day (``is_late``)."""
        return self.row_rules and self.source.event_time is not None

    @property
    def quarantine_source(self) -> Source | None:
        """The source whose rows it quarantines (None: no row rules)."""
        return self.source if self.row_rules else None


def _source_model(source: Source) -> StagingModel:
    deps = () if source is CRM_CUSTOMERS else (CRM_CUSTOMERS.staging_table,)
    return StagingModel(name=source.staging_table, source=source, deps=deps)


# The CRM first: every other staging model looks its customers up in stg_crm_customers. (Clear
# personal values have no staging model: the CRM load seals them into the vault.)
MODELS: tuple[StagingModel, ...] = (
    _source_model(CRM_CUSTOMERS),
    *(_source_model(s) for s in SOURCES if s is not CRM_CUSTOMERS),
)
MODELS_BY_NAME: dict[str, StagingModel] = {m.name: m for m in MODELS}
