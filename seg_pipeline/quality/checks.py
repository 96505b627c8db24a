"""Data-quality gates: each table's Great Expectations suite as a Dagster asset check.

``validate_window`` runs a suite over the partitions [start, end] of its table, in one GX
validation per set of columns the expectations read, each over the whole window: those columns
(plus the derived columns they use, computed by DuckDB) are read through the warehouse into a
pandas DataFrame and validated by GX's pandas engine (GX's SQL data source gives empty metric
results on DuckDB 2.0). The table-structure expectations are validated on a frame with the
table's columns and no rows; the row-count rule once per day on that day's row count.
``report_metadata`` turns the results into check metadata with personal values masked.
``build_quality_checks`` wraps both in one partitioned, blocking asset check per table.

What keeps a 1M-row window at about a second of validation (it took 14-43 s):

- no large parameters: a ``value_set`` of ~100,000 customer ids was copied by GX's pydantic
  models hundreds of times per validation; referential integrity is a derived column now;
- vectorised dtypes: the window comes through Arrow (pyarrow strings, not Python objects) with
  dates, decimals and small integers cast to datetime64[ns], float64 and int64
  (:func:`seg_pipeline.quality.suites.read_cast`), else GX's ``between`` loops in Python;
- regexes RE2 can run (no ``\\s``, no capturing groups), else pandas loops in Python;
- one GX context per process, BASIC result format, and no fingerprint of each batch;
- one frame per set of columns (:func:`split_by_columns`): at 10M rows, an in-set rule on a
  column with nulls took 4.8 s on the whole window's frame and 0.9 s on its own column, and
  only one part's frame is in memory at a time;
- uniqueness of a key computed by DuckDB
  (:func:`seg_pipeline.quality.suites.unique_keys_in_sql`), not by hashing strings in pandas.

``great_expectations`` is imported inside the functions that validate, never at module import:
it takes seconds to import and loading the definitions must stay fast.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    DailyPartitionsDefinition,
    MetadataValue,
    asset_check,
)

from seg_pipeline.assets_common import WAREHOUSE_POOL
from seg_pipeline.metadata import markdown_table
from seg_pipeline.partitions import window_dates
from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.quality.suites import (
    ERROR,
    HISTORY_DAYS,
    QUALITY_TABLES,
    QUALITY_TABLES_BY_NAME,
    SAMPLE_VALUES,
    WARN,
    QualityTable,
    daily_row_counts,
    derived_columns,
    expectation_columns,
    load_suite,
    mask_if_personal,
    row_count_ratio,
    row_count_rules,
    row_parameters,
    select_sql,
    split_suite,
    suite_columns,
    suite_labels,
    table_column_types,
    unique_keys_in_sql,
)
from seg_pipeline.resources import Warehouse, bind_params


@dataclass
class ExpectationOutcome:
    """One expectation's result over the window, ready for metadata (values already masked)."""

    label: str
    severity: str
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed: Any = None
    sample: list[Any] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


@dataclass
class QualityReport:
    """A suite's outcome on one window of partitions."""

    table: str
    start: date
    end: date
    rows: int
    outcomes: list[ExpectationOutcome]
    row_count_notes: list[str]
    seconds: float

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def severity(self) -> str:
        return ERROR if any(o.severity == ERROR for o in self.failed) else WARN

    def outcome(self, label: str) -> ExpectationOutcome:
        return next(o for o in self.outcomes if o.label == label)


def _plain(value: Any) -> Any:
    """JSON-friendly version of a GX/pandas/numpy value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else round(value, 4)  # NaN -> None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _exception_message(info: Any) -> str | None:
    """The first error message in a GX exception_info (flat, or keyed by metric)."""
    if not isinstance(info, dict):
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            message = str(entry.get("exception_message") or "expectation raised an error")
            return message.splitlines()[0][:300]
    return None


def _outcome(label: str, severity: str, column: str | None, result: Any) -> ExpectationOutcome:
    """ExpectationOutcome from a GX ExpectationValidationResult."""
    message = _exception_message(result.exception_info)
    if message:
        return ExpectationOutcome(label, severity, False, error=message)
    details = result.result or {}
    sample = [
        _plain(mask_if_personal(column, v))
        for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_VALUES]
    ]
    observed = details.get("observed_value")
    return ExpectationOutcome(
        label=label,
        severity=severity,
        success=bool(result.success),
        unexpected_count=_plain(details.get("unexpected_count")),
        unexpected_percent=_plain(details.get("unexpected_percent")),
        observed=_plain(mask_if_personal(column, observed)) if observed is not None else None,
        sample=sample,
    )


# Expectations on the table's structure: validated on a frame with the table's columns and no
# rows, so the window's frame holds only the columns the other expectations read.
SCHEMA_TYPES = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)
# BASIC gives what the metadata shows (success, unexpected count and percentage, a few
# unexpected values) without SUMMARY's per-value counts or COMPLETE's index lists.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_VALUES}

_GX_BATCHES: Any = None


def _batch_definition() -> Any:
    """One ephemeral GX context, pandas data source and batch definition per process: a new
    context makes a temporary directory and takes a second or more.

    GX also fingerprints every pandas batch below 1 GB (an MD5 over
    ``pandas.util.hash_pandas_object`` of the whole frame, twice per validation: about 1.5 s of
    a 1M-row window, half the validation). The fingerprint only labels the batch in GX's own
    result metadata, which the checks do not keep; the threshold is set to 0 so GX skips it
    as it already does for frames over 1 GB. Nothing an expectation computes depends on it.
    """
    global _GX_BATCHES
    if _GX_BATCHES is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        pandas_execution_engine.HASH_THRESHOLD = 0

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        _GX_BATCHES = (
            context.data_sources.add_or_update_pandas("warehouse")
            .add_dataframe_asset("window")
            .add_batch_definition_whole_dataframe("rows")
        )
    return _GX_BATCHES


def _gx_validate(frame: Any, suite_dict: dict[str, Any], parameters: dict[str, Any]) -> list:
    """Validate a pandas DataFrame with a suite dict; the GX results in no particular order."""
    from great_expectations.core import ExpectationSuite

    suite = ExpectationSuite(
        name=suite_dict["name"],
        expectations=suite_dict["expectations"],
        meta=suite_dict.get("meta", {}),
    )
    if len(suite.expectations) != len(suite_dict["expectations"]):
        # GX logs and drops an expectation it cannot build (unknown type, bad kwargs); a gate
        # that silently checks less than its file says is worse than a failing one.
        raise ValueError(
            f"suite {suite_dict['name']}: GX built {len(suite.expectations)} of "
            f"{len(suite_dict['expectations'])} expectations; see the log for the invalid one"
        )
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    validation = batch.validate(
        suite, expectation_parameters=parameters, result_format=RESULT_FORMAT
    )
    return list(validation.results)


def _labelled(suite: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``suite`` whose expectations carry their unique label in ``meta.label``."""
    labels = suite_labels(suite)
    return {
        **suite,
        "expectations": [
            {**e, "meta": {**e.get("meta", {}), "label": label}}
            for e, label in zip(suite["expectations"], labels, strict=True)
        ],
    }


def _split_schema(suite: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(suite without the structure expectations, suite of only those)."""
    parts = []
    for is_schema in (False, True):
        kept = [e for e in suite["expectations"] if (e["type"] in SCHEMA_TYPES) == is_schema]
        parts.append(
            {
                **suite,
                "name": f"{suite['name']}.schema" if is_schema else suite["name"],
                "expectations": kept,
            }
        )
    return parts[0], parts[1]


def split_by_columns(suite: dict[str, Any]) -> list[dict[str, Any]]:
    """``suite`` as one sub-suite per set of columns its expectations read, each with only the
    derived columns it uses. Each part is read and validated on its own frame: GX's pandas
    engine filters and copies the whole frame for many expectations, so a frame of only the
    columns at hand is faster, and one part's frame at a time keeps memory to the largest."""
    derived = {d["name"]: d for d in derived_columns(suite)}
    parts: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for expectation in suite["expectations"]:
        parts.setdefault(tuple(sorted(expectation_columns(expectation))), []).append(expectation)
    meta = suite.get("meta", {})
    return [
        {
            **suite,
            "expectations": expectations,
            "meta": {**meta, "derived_columns": [derived[c] for c in columns if c in derived]},
        }
        for columns, expectations in parts.items()
    ]


def read_window(
    conn: duckdb.DuckDBPyConnection,
    spec: QualityTable,
    suite: dict[str, Any],
    types: dict[str, str],
    start: date,
    end: date,
    sql_params: dict[str, Any] | None = None,
) -> Any:
    """The window's rows as a pandas DataFrame: only the table columns ``suite``'s expectations
    name, plus its derived columns (computed by DuckDB from the columns they declare, with
    ``sql_params`` bound where their SQL names them), through Arrow (pyarrow-backed strings,
    datetime64[ns]; DuckDB's ``.df()`` builds Python string objects and takes about four times
    as long)."""
    named = {c for e in suite["expectations"] for c in expectation_columns(e)}
    columns = [c for c in suite_columns(suite) if c in types and c in named]
    # A derived column over a missing column is left out: GX then reports the missing column
    # on the expectations that use it, as it does for a missing table column.
    derived = [d for d in derived_columns(suite) if set(d["columns"]) <= set(types)]
    sql = select_sql(spec, columns, types, derived)
    values = {"start_date": start, "end_date": end, **(sql_params or {})}
    table = conn.sql(sql, params=bind_params(sql, values)).to_arrow_table()
    return table.to_pandas(coerce_temporal_nanoseconds=True)


def _outcomes(results: list, by_label: dict[str, dict[str, Any]]) -> dict[str, ExpectationOutcome]:
    outcomes = {}
    for result in results:
        label = result.expectation_config.meta["label"]
        expectation = by_label[label]
        cols = expectation_columns(expectation)
        outcomes[label] = _outcome(
            label, expectation["meta"]["severity"], cols[0] if len(cols) == 1 else None, result
        )
    return outcomes


def validate_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    start: date,
    end: date,
    suite: dict[str, Any] | None = None,
    now: datetime | None = None,
    lateness_days: int | None = None,
    policy: QualityPolicy | None = None,
) -> QualityReport:
    """Run ``table``'s suite over partitions [start, end]; see the module docstring.

    ``policy`` (default ``QualityPolicy()``; the check passes the run's) gives the lateness and
    the quarantine share the suite's rules use; ``lateness_days`` overrides its lateness.
    """
    import pandas as pd

    started = time.perf_counter()
    spec: QualityTable = QUALITY_TABLES_BY_NAME[table]
    suite = _labelled(suite or load_suite(table))
    policy = policy or QualityPolicy()
    if lateness_days is None:
        lateness_days = policy.max_lateness_days
    share_params = {
        "max_quarantine_share": policy.threshold(spec.source),
        "min_rows_for_share": policy.min_rows_for_share,
    }
    row_suite, partition_suite = split_suite(suite)
    row_suite, schema_suite = _split_schema(row_suite)
    row_suite = unique_keys_in_sql(row_suite)
    by_label = {e["meta"]["label"]: e for e in suite["expectations"]}
    types = table_column_types(conn, spec.table)

    outcomes: dict[str, ExpectationOutcome] = {}
    if schema_suite["expectations"]:
        empty = pd.DataFrame(columns=list(types))
        params = row_parameters(schema_suite, start, end, lateness_days, now=now)
        outcomes |= _outcomes(_gx_validate(empty, schema_suite, params), by_label)

    rows = 0
    if row_suite["expectations"]:
        params = row_parameters(row_suite, start, end, lateness_days, now=now)
        for part in split_by_columns(row_suite):
            frame = read_window(conn, spec, part, types, start, end, share_params)
            rows = len(frame)
            outcomes |= _outcomes(_gx_validate(frame, part, params), by_label)
            del frame

    notes: list[str] = []
    if partition_suite["expectations"]:
        counts = daily_row_counts(conn, spec, start - timedelta(days=HISTORY_DAYS), end)
        rows = rows or sum(n for day, n in counts.items() if start <= day <= end)
        rules = row_count_rules(counts, start, end, ratio=row_count_ratio(suite))
        notes = [r.note for r in rules]
        per_label: dict[str, list[tuple[Any, Any]]] = {}
        for rule in rules:
            day_frame = pd.DataFrame(index=pd.RangeIndex(rule.row_count))
            params = {"min_row_count": rule.min_row_count}
            for result in _gx_validate(day_frame, partition_suite, params):
                per_label.setdefault(result.expectation_config.meta["label"], []).append(
                    (rule, result)
                )
        for label, day_results in per_label.items():
            failed_days = [(rule, r) for rule, r in day_results if not r.success]
            outcomes[label] = ExpectationOutcome(
                label=label,
                severity=by_label[label]["meta"]["severity"],
                success=not failed_days,
                unexpected_count=len(failed_days),
                unexpected_percent=round(100 * len(failed_days) / len(day_results), 4),
                observed=[rule.note for rule, _ in failed_days] or "every day above its minimum",
            )

    ordered = [outcomes[label] for label in by_label if label in outcomes]
    return QualityReport(
        table=table,
        start=start,
        end=end,
        rows=rows,
        outcomes=ordered,
        row_count_notes=notes,
        seconds=time.perf_counter() - started,
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def report_metadata(report: QualityReport) -> dict[str, Any]:
    """Check metadata: a summary, one markdown row per expectation, the results as JSON."""
    rows = [
        (
            o.label,
            o.severity,
            "yes" if o.success else "NO",
            _cell(o.unexpected_count),
            _cell(o.unexpected_percent),
            o.error or _cell(o.sample or (o.observed if not o.success else "")),
        )
        for o in report.outcomes
    ]
    failed = report.failed
    meta: dict[str, Any] = {
        "partition_window": f"{report.start.isoformat()}..{report.end.isoformat()}",
        "rows_validated": report.rows,
        "expectations_passed": f"{len(report.outcomes) - len(failed)}/{len(report.outcomes)}",
        "failed_expectations": ", ".join(f"{o.label} [{o.severity}]" for o in failed) or "none",
        "expectations": MetadataValue.md(
            markdown_table(
                ["expectation", "severity", "passed", "unexpected", "unexpected %", "details"],
                rows,
                max_width=160,
            )
        ),
        "results": MetadataValue.json([o.as_dict() for o in report.outcomes]),
        "validation_seconds": round(report.seconds, 3),
        "suite": f"expectations/{report.table}.json",
    }
    if report.row_count_notes:
        meta["row_count_rule"] = MetadataValue.md(
            "\n".join(f"- {n}" for n in report.row_count_notes)
        )
    return meta


def check_result(report: QualityReport) -> AssetCheckResult:
    severity = AssetCheckSeverity.ERROR if report.severity == ERROR else AssetCheckSeverity.WARN
    return AssetCheckResult(
        passed=report.passed,
        severity=severity,
        metadata=report_metadata(report),
        description=(
            f"{len(report.failed)} expectation(s) failed"
            if report.failed
            else "all expectations passed"
        ),
    )


def build_quality_check(
    spec: QualityTable, partitions_def: DailyPartitionsDefinition
) -> AssetChecksDefinition:
    """The partitioned asset check that runs ``expectations/<table>.json`` on its asset."""
    suite = load_suite(spec.table)  # fail at definition time on a broken suite file
    meta = suite.get("meta", {})

    @asset_check(
        asset=AssetKey(spec.asset),
        name=f"{spec.table}_expectations",
        blocking=bool(meta.get("blocking", True)),
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=meta.get("description", f"Great Expectations suite of {spec.table}."),
        metadata={"suite": f"expectations/{spec.table}.json"},
    )
    def _check(
        context: AssetCheckExecutionContext, warehouse: Warehouse, quality: QualityPolicy
    ) -> AssetCheckResult:
        start, end = window_dates(context)
        with warehouse.connection() as conn:
            report = validate_window(conn, spec.table, start, end, policy=quality)
        context.log.info(
            f"{spec.table} {start}..{end}: {report.rows} rows, "
            f"{len(report.failed)} failed expectation(s) in {report.seconds:.2f}s"
        )
        return check_result(report)

    return _check


def build_quality_checks(
    partitions_def: DailyPartitionsDefinition,
    tables: Sequence[QualityTable] = QUALITY_TABLES,
) -> list[AssetChecksDefinition]:
    """One asset check per raw and staging table; add to ``Definitions(asset_checks=...)``."""
    return [build_quality_check(spec, partitions_def) for spec in tables]
