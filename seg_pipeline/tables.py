"""Daily tables: one spec per table, one factory that turns a spec into a Dagster asset.

A daily table is a warehouse table with one partition per day (its ``as_of_date`` or
``arrival_date`` column). Its :class:`DailyTable` spec says how the rows of one day are made,
either by a SQL file (``sql/<name>.sql``, the day bound as ``$as_of_date``) or by a plain
function ``compute(conn, day, settings, **resources) -> frame`` (a polars frame or a DuckDB
relation). :func:`daily_table_asset` owns everything else, the same way for every table: the
warehouse connection, one transaction for the run, the loop over the run's partition window,
the atomic replacement of each day, retention, and the standard metadata (row count, column
schema with descriptions, a preview without personal data).

Tests and benchmarks call :func:`write_day` (one day of one table, no Dagster) or the compute
functions themselves.
"""

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    multi_asset,
)

from seg_pipeline.assets_common import code_version, tables_metadata, warehouse_asset_options
from seg_pipeline.metadata import window_metadata
from seg_pipeline.partitions import days_between, window_dates
from seg_pipeline.resources import (
    Warehouse,
    bind_params,
    query_frame,
    read_sql,
    table_exists,
    transaction,
    write_frame,
)

Frame = pl.DataFrame | duckdb.DuckDBPyRelation
Compute = Callable[..., Frame | None]
Summarize = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True, kw_only=True)
class DailyTable:
    """How one daily table is made.

    Parameters
    ----------
    name
        Asset key and table name.
    group
        Dagster asset group (the pipeline stage).
    description
        What one row is and where it comes from (shown in the UI).
    deps
        Asset keys the rows are read from.
    kinds
        Dagster kinds shown in the UI besides ``duckdb``.
    sql
        ``sql/<sql>.sql`` selects the rows of day ``$as_of_date`` (and any field of the
        ``config`` by name). Exactly one of ``sql`` and ``compute`` is given.
    compute
        ``compute(conn, day, settings, **resources)`` returns the rows of ``day``, or ``None``
        when the day has nothing to hold yet (e.g. no model before the minimum history):
        the day's partition is emptied and the table is not created for it. ``settings``
        is the run config (an instance of ``config``) or ``None``; of the Dagster resources
        named in ``resources`` it gets those its signature names, by keyword. It may read
        tables (its deps and earlier partitions of its own table) and, when a model is
        fitted, save it in the model store; it never writes warehouse tables itself.
    config
        Run config class of the asset (launchpad, ``ops`` config), passed as ``settings``.
    resources
        Resource keys the compute and summarize functions take (e.g. ``models``).
    summarize
        ``summarize(conn, start, end, last, settings, **resources)`` returns extra metadata of
        the run (resources as for ``compute``); ``last`` is the last day's frame when
        ``compute`` returned a polars frame.
    partition_column
        The column holding the partition day.
    preview
        Put a preview of the window's first rows in the metadata (personal columns left out).
    keep_days
        Keep only the latest partition and this many days before it; older ones are deleted
        after the run (working tables that later days build on, e.g. running totals; build
        the tables that read them in the same step, :func:`daily_tables_asset`).
    create_sql
        ``sql/<create_sql>.sql`` creates the table if it does not exist; needed when the rows
        of a day read earlier partitions of the table itself.
    columns
        Column descriptions for the Dagster column schema.
    also_writes
        Other warehouse tables the step creates or writes besides its own (named in the
        asset's ``seg/tables`` metadata, so the erasure job finds them).
    """

    name: str
    group: str
    description: str
    deps: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sql: str | None = None
    compute: Compute | None = None
    config: type[Config] | None = None
    resources: tuple[str, ...] = ()
    summarize: Summarize | None = None
    partition_column: str = "as_of_date"
    preview: bool = True
    keep_days: int | None = None
    create_sql: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    also_writes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.sql is None) == (self.compute is None):
            raise ValueError(f"{self.name}: give exactly one of sql and compute")

    @property
    def code_version(self) -> str:
        """From the SQL files, or the compute function's source (a change in a function it
        calls is not seen: that needs a new version by hand, or a re-run)."""
        texts = [read_sql(n) for n in filter(None, [self.sql, self.create_sql])]
        if self.compute is not None:
            texts.append(inspect.getsource(self.compute))
        return code_version(*texts)

    def rows(
        self,
        conn: duckdb.DuckDBPyConnection,
        day: date,
        settings: Config | None = None,
        **resources: Any,
    ) -> Frame | None:
        """The rows of ``day``, computed but not written (``None``: nothing that day)."""
        if self.compute is not None:
            return self.compute(conn, day, settings, **_named(self.compute, resources))
        sql = read_sql(self.sql or "")
        params = {"as_of_date": day, **(settings.model_dump() if settings else {})}
        return conn.sql(sql, params=bind_params(sql, params))


def _named(function: Callable[..., Any], resources: Mapping[str, Any]) -> dict[str, Any]:
    """The ``resources`` that ``function`` takes by name."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(resources)
    return {k: v for k, v in resources.items() if k in parameters}


def write_day(
    conn: duckdb.DuckDBPyConnection,
    table: DailyTable,
    day: date,
    settings: Config | None = None,
    **resources: Any,
) -> Frame | None:
    """Replace partition ``day`` of ``table`` with its computed rows; returns the rows
    (``None``: the compute had nothing for the day, whose partition is emptied).

    Runs inside the caller's transaction (:func:`seg_pipeline.resources.transaction`).
    """
    if table.create_sql:
        conn.execute(read_sql(table.create_sql))
    rows = table.rows(conn, day, settings, **resources)
    if rows is None:
        if table_exists(conn, table.name):
            column = table.partition_column
            conn.execute(f"DELETE FROM {table.name} WHERE {column} = $day", {"day": day})
        return None
    write_frame(conn, table.name, rows, table.partition_column, day)
    return rows


def _prune(conn: duckdb.DuckDBPyConnection, table: DailyTable) -> None:
    """Delete the partitions older than ``keep_days`` before the table's latest one."""
    if table.keep_days is not None:
        column = table.partition_column
        conn.execute(
            f"DELETE FROM {table.name} WHERE {column} < "
            f"(SELECT max({column}) FROM {table.name}) - {int(table.keep_days)}"
        )


def daily_table_asset(
    table: DailyTable, partitions_def: DailyPartitionsDefinition
) -> AssetsDefinition:
    """The Dagster asset that materializes ``table`` for the partitions of a run."""
    return daily_tables_asset(table.name, [table], partitions_def)


def daily_tables_asset(
    name: str, tables: Sequence[DailyTable], partitions_def: DailyPartitionsDefinition
) -> AssetsDefinition:
    """One Dagster step that materializes ``tables`` together, day by day in their order.

    For tables that only make sense together: a working table whose older partitions are
    pruned (``keep_days``) once the tables built on it have used them, in the same run. Each
    table is still an asset of its own in the lineage graph, with its own metadata. The tables
    share one run config class, passed to those that declare it.
    """
    configs = {t.config for t in tables if t.config is not None}
    if len(configs) > 1:
        raise ValueError(f"{name}: the tables of one step share one config class")
    config = next(iter(configs), None)
    keys = {"warehouse", *(key for t in tables for key in t.resources)}
    options = warehouse_asset_options(tables[0].group, partitions_def)
    specs = [
        AssetSpec(
            key=t.name,
            deps=[AssetKey(d) for d in t.deps],
            kinds={"duckdb", *t.kinds},
            description=t.description,
            group_name=t.group,
            owners=options["owners"],
            metadata=tables_metadata(t.name, *t.also_writes),
            freshness_policy=options["freshness_policy"],
            code_version=t.code_version,
        )
        for t in tables
    ]

    @multi_asset(
        name=name,
        specs=specs,
        required_resource_keys=keys,
        config_schema=config.to_config_schema().as_field().config_type.fields if config else None,
        partitions_def=partitions_def,
        backfill_policy=options["backfill_policy"],
        pool=options["pool"],
    )
    def _daily_tables(context: AssetExecutionContext) -> Iterator[MaterializeResult]:
        warehouse: Warehouse = context.resources.warehouse
        resources = {key: getattr(context.resources, key) for key in keys - {"warehouse"}}
        settings = config(**context.op_execution_context.op_config) if config else None
        start, end = window_dates(context)
        results = []
        with warehouse.connection() as conn, transaction(conn):
            last: dict[str, Frame | None] = {}
            for day in days_between(start, end):
                for table in tables:
                    given = settings if table.config else None
                    last[table.name] = write_day(conn, table, day, given, **resources)
            for table in tables:
                if not table_exists(conn, table.name):  # nothing on any day so far
                    meta = {
                        "dagster/row_count": 0,
                        "dagster/table_name": table.name,
                        "partition_window": f"{start.isoformat()}..{end.isoformat()}",
                    }
                    if table.summarize is not None:
                        given = settings if table.config else None
                        extra = _named(table.summarize, resources)
                        meta.update(table.summarize(conn, start, end, None, given, **extra))
                    results.append(meta)
                    continue
                _prune(conn, table)
                meta = window_metadata(
                    conn,
                    table.name,
                    table.partition_column,
                    start,
                    end,
                    preview=table.preview,
                    descriptions=table.columns,
                )
                if table.summarize is not None:
                    frame = last[table.name]
                    frame = frame if isinstance(frame, pl.DataFrame) else None
                    given = settings if table.config else None
                    extra = _named(table.summarize, resources)
                    meta.update(table.summarize(conn, start, end, frame, given, **extra))
                results.append(meta)
        for table, meta in zip(tables, results, strict=True):
            context.log.info(f"{table.name}: {meta['dagster/row_count']} rows for {start}..{end}")
            yield MaterializeResult(asset_key=table.name, metadata=meta)

    return _daily_tables


def row_of_day(conn: duckdb.DuckDBPyConnection, table: str, day: date) -> dict[str, Any]:
    """The one row a daily table holds for ``day`` (e.g. the model in force that day).

    Raises
    ------
    LookupError
        When the table or its partition ``day`` does not exist yet.
    """
    rows = (
        query_frame(
            conn, f"SELECT * FROM {table} WHERE as_of_date = $as_of_date", {"as_of_date": day}
        )
        if table_exists(conn, table)
        else pl.DataFrame()
    )
    if rows.height != 1:
        raise LookupError(f"{table} has no partition {day}: materialize it first")
    return rows.row(0, named=True)


def sql_summary(name: str) -> Summarize:
    """A ``summarize`` function whose metadata is the one row of ``sql/<name>.sql`` over the
    run's window (``$start_date``, ``$end_date``)."""
    sql = read_sql(name)

    def summarize(
        conn: duckdb.DuckDBPyConnection, start: date, end: date, *_: Any, **__: Any
    ) -> dict[str, Any]:
        rows = query_frame(conn, sql, bind_params(sql, {"start_date": start, "end_date": end}))
        return rows.row(0, named=True) if rows.height else {}

    return summarize
