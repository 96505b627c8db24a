"""Lifetime value and RFM features from a plain transaction log (CSV), without the pipeline.

A user with nothing but their own purchase history, one row per transaction::

    customer_id,date,amount,quantity
    c1,2025-01-03,25.90,2
    c1,2025-02-11,12.00,1
    c2,2025-01-20,99.00,

runs::

    python -m seg_pipeline.features.transactions --csv my.csv --out clv.csv

and gets one row per customer: the RFM summary (frequency, recency, T, monetary value), basic
purchase features, and the BG/NBD + Gamma-Gamma scores (probability alive, expected purchases in
30/90/365 days, expected order value, CLV). See ``docs/own_transactions.md``.

Plain functions (:func:`read_transactions`, :func:`customer_scores`) do the work; the CLI only
parses arguments, prints a summary and writes the file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from seg_pipeline.features.clv import (
    BetaGeoModel,
    CLVParams,
    GammaGammaModel,
    score_customers,
    summary_from_transactions,
)

# Date formats tried in order when --date-format is not given (the time part is dropped).
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f")
MAX_REPORTED = 10
FEATURE_COLUMNS = [
    "customer_id", "first_purchase_date", "last_purchase_date", "recency_days", "tenure_days",
    "count_transactions", "count_purchase_days", "total_spend", "avg_transaction_value",
    "avg_purchase_day_value", "max_transaction_value", "count_items",
    "avg_days_between_purchases", "purchases_per_month",
]  # fmt: skip
MIN_CUSTOMERS = 10
MIN_REPEAT_CUSTOMERS = 3


class TransactionLogError(ValueError):
    """The transaction log cannot be used; the message names the file, line and column."""


@dataclass(frozen=True)
class Columns:
    """Names of the columns in the CSV (``quantity`` is optional)."""

    customer: str = "customer_id"
    date: str = "date"
    amount: str = "amount"
    quantity: str = "quantity"


def read_transactions(
    path: str | Path,
    columns: Columns = Columns(),
    date_format: str | None = None,
    separator: str = ",",
) -> pl.DataFrame:
    """Read and validate a transaction log.

    Parameters
    ----------
    path
        CSV file with a header line.
    columns
        Column names of customer, date, amount and (optional) quantity.
    date_format
        strftime format of the dates (default: ``YYYY-MM-DD``, optionally followed by a time).
    separator
        Field separator.

    Returns
    -------
    polars.DataFrame
        ``customer_id`` (string), ``date`` (date), ``amount`` (float, >= 0), ``quantity``
        (int, null when the column is absent or the cell empty) and ``line`` (line number in
        the file, the header being line 1).

    Raises
    ------
    TransactionLogError
        Missing file or columns, unreadable CSV, or rows with a missing customer, an
        unparseable date, an amount that is not a number or is negative, or a quantity that is
        not a positive integer. Every bad row is counted; the first ten are quoted with their
        line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise TransactionLogError(f"{path}: file not found")
    try:
        raw = pl.read_csv(path, infer_schema=False, separator=separator, encoding="utf8")
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TransactionLogError(f"{path}: cannot be read as CSV: {first}") from exc
    raw = raw.rename({c: c.strip() for c in raw.columns})
    required = [columns.customer, columns.date, columns.amount]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise TransactionLogError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; the header has "
            f"{', '.join(repr(c) for c in raw.columns) or 'no columns'} (choose other names "
            "with --customer-col, --date-col, --amount-col)"
        )
    if raw.height == 0:
        raise TransactionLogError(f"{path}: no transactions (only a header)")

    text = {c: pl.col(c).str.strip_chars() for c in raw.columns}
    has_quantity = columns.quantity in raw.columns
    formats = (date_format,) if date_format else DATE_FORMATS
    parsed_date = pl.coalesce(
        *(
            text[columns.date].str.to_datetime(fmt, strict=False).dt.date()
            if "%H" in fmt
            else text[columns.date].str.to_date(fmt, strict=False)
            for fmt in formats
        )
    )
    frame = raw.with_row_index("line", offset=2).select(
        "line",
        text[columns.customer].alias("customer_id"),
        text[columns.date].alias("_date_text"),
        parsed_date.alias("date"),
        text[columns.amount].alias("_amount_text"),
        text[columns.amount].cast(pl.Float64, strict=False).alias("amount"),
        (text[columns.quantity] if has_quantity else pl.lit(None, pl.String)).alias("_qty_text"),
        (
            text[columns.quantity].cast(pl.Int64, strict=False)
            if has_quantity
            else pl.lit(None, pl.Int64)
        ).alias("quantity"),
    )
    empty = {"", None}
    checks = [
        (
            columns.customer,
            pl.col("customer_id").is_null() | (pl.col("customer_id") == ""),
            lambda r: "customer id is empty",
        ),
        (
            columns.date,
            pl.col("date").is_null(),
            lambda r: (
                "date is empty"
                if r["_date_text"] in empty
                else f"{r['_date_text']!r} is not a date ({date_format or 'YYYY-MM-DD'})"
            ),
        ),
        (
            columns.amount,
            pl.col("amount").is_null() | ~pl.col("amount").is_finite(),
            lambda r: (
                "amount is empty"
                if r["_amount_text"] in empty
                else f"{r['_amount_text']!r} is not a number (use a dot as decimal separator, "
                "no currency sign or thousands separator)"
            ),
        ),
        (
            columns.amount,
            pl.col("amount") < 0,
            lambda r: (
                f"amount {r['_amount_text']} is negative (net refunds into their "
                "purchase or leave them out)"
            ),
        ),
    ]
    if has_quantity:
        checks.append(
            (
                columns.quantity,
                (pl.col("_qty_text").is_not_null() & (pl.col("_qty_text") != ""))
                & (pl.col("quantity").is_null() | (pl.col("quantity") <= 0)),
                lambda r: f"quantity {r['_qty_text']!r} is not a positive integer",
            )
        )
    problems: list[tuple[int, str, str]] = []
    bad_lines: set[int] = set()
    for column, predicate, message in checks:
        bad = frame.filter(predicate.fill_null(False))
        bad_lines.update(bad["line"].to_list())
        problems += [(r["line"], column, message(r)) for r in bad.head(MAX_REPORTED).to_dicts()]
    if problems:
        problems.sort()
        quoted = "\n".join(
            f"  {path}, line {line}, column {column!r}: {message}"
            for line, column, message in problems[:MAX_REPORTED]
        )
        more = len(bad_lines) - len({p[0] for p in problems[:MAX_REPORTED]})
        raise TransactionLogError(
            f"{path}: {len(bad_lines)} of {frame.height} rows cannot be used:\n{quoted}"
            + (f"\n  ... and {more} more rows" if more > 0 else "")
        )
    return frame.select("customer_id", "date", "amount", "quantity", "line")


def purchase_features(transactions: pl.DataFrame, as_of_date: date) -> pl.DataFrame:
    """Basic RFM features per customer from validated transactions up to ``as_of_date``.

    Transactions on the same day are one purchase day (as for the CLV models).

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``first_purchase_date``, ``last_purchase_date``, ``recency_days``
        (as_of_date - last purchase), ``tenure_days`` (as_of_date - first purchase),
        ``count_transactions``, ``count_purchase_days``, ``total_spend``,
        ``avg_transaction_value``, ``avg_purchase_day_value``, ``max_transaction_value``,
        ``count_items`` (null without quantities), ``avg_days_between_purchases`` (null with
        fewer than two purchase days), ``purchases_per_month``.
    """
    end = pl.lit(as_of_date)
    return (
        transactions.filter(pl.col("date") <= as_of_date)
        .group_by("customer_id")
        .agg(
            pl.col("date").min().alias("first_purchase_date"),
            pl.col("date").max().alias("last_purchase_date"),
            pl.len().alias("count_transactions"),
            pl.col("date").n_unique().alias("count_purchase_days"),
            pl.col("amount").sum().alias("total_spend"),
            pl.col("amount").mean().alias("avg_transaction_value"),
            pl.col("amount").max().alias("max_transaction_value"),
            pl.when(pl.col("quantity").is_not_null().any())
            .then(pl.col("quantity").sum())
            .alias("count_items"),
        )
        .with_columns(
            (end - pl.col("last_purchase_date")).dt.total_days().alias("recency_days"),
            (end - pl.col("first_purchase_date")).dt.total_days().alias("tenure_days"),
            (pl.col("total_spend") / pl.col("count_purchase_days")).alias("avg_purchase_day_value"),
            pl.when(pl.col("count_purchase_days") > 1)
            .then(
                (pl.col("last_purchase_date") - pl.col("first_purchase_date")).dt.total_days()
                / (pl.col("count_purchase_days") - 1)
            )
            .alias("avg_days_between_purchases"),
        )
        .with_columns(
            (
                pl.col("count_purchase_days")
                * 30.4375
                / (pl.col("tenure_days") + 1).cast(pl.Float64)
            ).alias("purchases_per_month")
        )
        .select(FEATURE_COLUMNS)
        .sort("customer_id")
    )


@dataclass(frozen=True)
class FitResult:
    """The fitted models and what they were fitted on."""

    params: CLVParams
    n_customers: int
    n_repeat_customers: int
    bgnbd_log_likelihood: float
    gg_log_likelihood: float
    converged: bool


def fit_models(summary: pl.DataFrame, penalizer: float = 0.0) -> FitResult:
    """Fit BG/NBD on every customer of ``summary`` and Gamma-Gamma on the repeat buyers.

    Raises
    ------
    TransactionLogError
        Fewer than 10 customers, or fewer than 3 customers with repeat purchases of positive
        value (the models cannot be identified).
    """
    x = summary["frequency"].to_numpy().astype(float)
    m = summary["monetary_value"].to_numpy().astype(float)
    repeaters = int(((x > 0) & (m > 0)).sum())
    if summary.height < MIN_CUSTOMERS or repeaters < MIN_REPEAT_CUSTOMERS:
        raise TransactionLogError(
            f"too little history to fit the models: {summary.height} customers, {repeaters} "
            f"with repeat purchases on different days (need at least {MIN_CUSTOMERS} and "
            f"{MIN_REPEAT_CUSTOMERS})"
        )
    bg = BetaGeoModel(penalizer=penalizer).fit(
        x, summary["recency"].to_numpy().astype(float), summary["T"].to_numpy().astype(float)
    )
    gg = GammaGammaModel(penalizer=penalizer).fit(x, m)
    p, g = bg.params_, gg.params_
    return FitResult(
        params=CLVParams(p["r"], p["alpha"], p["a"], p["b"], g["p"], g["q"], g["gamma"]),
        n_customers=bg.n_customers_,
        n_repeat_customers=gg.n_customers_,
        bgnbd_log_likelihood=bg.log_likelihood_,
        gg_log_likelihood=gg.log_likelihood_,
        converged=bg.converged_ and gg.converged_,
    )


def customer_scores(
    transactions: pl.DataFrame,
    as_of_date: date | None = None,
    horizon_days: int = 365,
    annual_discount_rate: float = 0.1,
    penalizer: float = 0.0,
) -> tuple[pl.DataFrame, FitResult]:
    """RFM features, CLV summary and model scores per customer, and the fit.

    Parameters
    ----------
    transactions
        Output of :func:`read_transactions` (``customer_id``, ``date``, ``amount``,
        ``quantity``).
    as_of_date
        End of the history used (inclusive); default the last transaction date. Later rows
        are ignored.
    horizon_days, annual_discount_rate
        CLV horizon and yearly discount rate.
    penalizer
        L2 penalty on the log-parameters of both models.

    Returns
    -------
    (polars.DataFrame, FitResult)
        One row per customer with a transaction on or before ``as_of_date``:
        ``as_of_date``, the :func:`purchase_features` columns, ``frequency``, ``recency``,
        ``T``, ``monetary_value``, ``prob_alive``, ``expected_purchases_30d``,
        ``expected_purchases_90d``, ``expected_purchases_365d``, ``expected_avg_order_value``,
        ``clv``; and the fitted models.
    """
    if transactions.height == 0:
        raise TransactionLogError("no transactions")
    if as_of_date is None:
        as_of_date = transactions["date"].max()
    summary = summary_from_transactions(transactions, as_of_date)
    if summary.height == 0:
        raise TransactionLogError(f"no transactions on or before {as_of_date}")
    fit = fit_models(summary, penalizer)
    scored = score_customers(summary, fit.params, horizon_days, annual_discount_rate)
    features = purchase_features(transactions, as_of_date)
    out = (
        features.join(scored, on="customer_id", how="inner", validate="1:1")
        .with_columns(pl.lit(as_of_date, pl.Date).alias("as_of_date"))
        .sort("customer_id")
    )
    return out.select("as_of_date", *[c for c in out.columns if c != "as_of_date"]), fit


def write_scores(frame: pl.DataFrame, out: Path) -> None:
    """Write ``frame`` as CSV or Parquet, chosen by the suffix of ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        frame.write_parquet(out)
    elif out.suffix.lower() == ".csv":
        frame.write_csv(out)
    else:
        raise TransactionLogError(f"{out}: the output must end in .csv or .parquet")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m seg_pipeline.features.transactions",
        description="RFM features and BG/NBD + Gamma-Gamma lifetime value from a transaction "
        "log (CSV with a header: customer_id, date, amount[, quantity]).",
    )
    parser.add_argument("--csv", required=True, type=Path, help="the transaction log")
    parser.add_argument(
        "--as-of", type=date.fromisoformat, help="end of history, YYYY-MM-DD (default: last date)"
    )
    parser.add_argument(
        "--out", type=Path, help="output .csv or .parquet (default: <csv name>.clv.csv)"
    )
    parser.add_argument("--horizon-days", type=int, default=365, help="CLV horizon (365)")
    parser.add_argument("--discount-rate", type=float, default=0.1, help="yearly rate (0.1)")
    parser.add_argument("--penalizer", type=float, default=0.0, help="L2 penalty (0)")
    parser.add_argument("--customer-col", default="customer_id")
    parser.add_argument("--date-col", default="date")
    parser.add_argument("--amount-col", default="amount")
    parser.add_argument("--quantity-col", default="quantity", help="optional column")
    parser.add_argument("--date-format", help="strftime format, e.g. %%d/%%m/%%Y")
    parser.add_argument("--separator", default=",", help="field separator (,)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 on unusable input)."""
    args = _parse_args(argv)
    out = args.out or args.csv.with_name(f"{args.csv.stem}.clv.csv")
    columns = Columns(args.customer_col, args.date_col, args.amount_col, args.quantity_col)
    try:
        transactions = read_transactions(args.csv, columns, args.date_format, args.separator)
        scores, fit = customer_scores(
            transactions, args.as_of, args.horizon_days, args.discount_rate, args.penalizer
        )
        write_scores(scores, out)
    except TransactionLogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    as_of = scores["as_of_date"][0]
    later = transactions.filter(pl.col("date") > as_of).height
    p = fit.params
    print(
        f"read {transactions.height:,} transactions of "
        f"{transactions['customer_id'].n_unique():,} customers from {args.csv} "
        f"({transactions['date'].min()} .. {transactions['date'].max()})"
    )
    if later:
        print(f"ignored {later:,} transactions after --as-of {as_of}")
    print(
        f"BG/NBD on {fit.n_customers:,} customers: r={p.r:.4g} alpha={p.alpha:.4g} "
        f"a={p.a:.4g} b={p.b:.4g}; Gamma-Gamma on {fit.n_repeat_customers:,} repeat buyers: "
        f"p={p.p:.4g} q={p.q:.4g} gamma={p.gamma:.4g}"
        + ("" if fit.converged else " (optimiser did not report convergence)")
    )
    print(
        f"as of {as_of}: mean probability alive {scores['prob_alive'].mean():.3f}, "
        f"expected purchases next 365 days {scores['expected_purchases_365d'].sum():,.1f}, "
        f"total CLV ({args.horizon_days} days) {scores['clv'].sum():,.2f}"
    )
    print(f"wrote {scores.height:,} customers to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
