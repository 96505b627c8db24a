"""The plain transaction-log loader and CLI: the generated month as a CSV, hand-made bad CSVs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from seg_pipeline.features.lifetime_value import clv_summary
from seg_pipeline.features.transactions import (
    Columns,
    TransactionLogError,
    customer_scores,
    main,
    purchase_features,
    read_transactions,
)
from tests.conftest import MONTH_END

# Completed order lines of the staged month, one row per order (latest delivery of each line).
ORDERS_AS_LOG = """
copy (
    select customer_id, order_date as date, sum(line_amount) as amount, sum(quantity) as quantity
    from (
        select * from stg_orders
        qualify row_number() over (
            partition by order_id, line_number order by arrival_date desc
        ) = 1
    )
    where order_status = 'completed'
    group by customer_id, order_id, order_date
    order by date, customer_id
) to '{path}' (header, delimiter ',')
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_generated_orders_as_a_transaction_log(loaded_month: Path, tmp_path: Path) -> None:
    """The month's orders written as a plain CSV give the warehouse's CLV summary, and scores
    that behave."""
    csv = tmp_path / "orders.csv"
    out = tmp_path / "scores.parquet"
    with duckdb.connect(str(loaded_month), read_only=True) as conn:
        conn.execute(ORDERS_AS_LOG.format(path=csv))
        warehouse_summary = clv_summary(conn, MONTH_END)
    assert main(["--csv", str(csv), "--as-of", MONTH_END.isoformat(), "--out", str(out)]) == 0
    scores = pl.read_parquet(out)

    assert scores.height == warehouse_summary.height > 500
    joined = scores.join(warehouse_summary, on="customer_id", suffix="_wh")
    assert joined.height == scores.height
    assert (joined["frequency"] == joined["frequency_wh"]).all()
    assert (joined["recency"] == joined["recency_wh"]).all()
    assert (joined["T"] == joined["T_wh"]).all()
    assert ((joined["monetary_value"] - joined["monetary_value_wh"]).abs() < 1e-6).all()

    assert (scores["as_of_date"] == MONTH_END).all()
    assert scores["prob_alive"].is_between(0, 1).all()
    assert (scores["clv"] >= 0).all() and scores["clv"].sum() > 0
    assert (scores["expected_purchases_90d"] >= scores["expected_purchases_30d"]).all()
    assert (scores["expected_purchases_365d"] >= scores["expected_purchases_90d"]).all()
    assert (scores["count_purchase_days"] == scores["frequency"] + 1).all()
    assert (scores["recency_days"] == scores["T"] - scores["recency"]).all()
    assert (scores["count_items"] >= scores["count_transactions"]).all()


def test_tiny_log_hand_computed(tmp_path: Path) -> None:
    csv = _write(
        tmp_path / "t.csv",
        "client;day;value;units\n"
        "a;03/01/2025;10.00;1\n"
        "a;03/01/2025;5.00;\n"  # same day: one purchase day of 15
        "a;13/01/2025;20.00;2\n"
        " b ;10/01/2025;7.50;1\n"
        "c;20/01/2025;1.00;1\n",  # after as_of: ignored
    )
    tx = read_transactions(
        csv, Columns("client", "day", "value", "units"), date_format="%d/%m/%Y", separator=";"
    )
    assert tx["line"].to_list() == [2, 3, 4, 5, 6]
    assert tx["customer_id"].to_list()[3] == "b"
    features = {r["customer_id"]: r for r in purchase_features(tx, date(2025, 1, 15)).to_dicts()}
    a = features["a"]
    assert (a["count_transactions"], a["count_purchase_days"], a["count_items"]) == (3, 2, 3)
    assert a["total_spend"] == pytest.approx(35.0)
    assert a["avg_purchase_day_value"] == pytest.approx(17.5)
    assert (a["recency_days"], a["tenure_days"], a["avg_days_between_purchases"]) == (2, 12, 10)
    assert features["b"]["avg_days_between_purchases"] is None
    assert set(features) == {"a", "b"}


def test_default_as_of_is_the_last_date_and_iso_datetimes_parse(tmp_path: Path) -> None:
    rows = ["customer_id,date,amount"]
    for c in range(12):
        for k in range(1 + c % 4):
            rows.append(f"c{c},2025-0{1 + k}-{10 + c}T10:00:00,{10 + c + k}.5")
    tx = read_transactions(_write(tmp_path / "ok.csv", "\n".join(rows) + "\n"))
    scores, fit = customer_scores(tx)
    assert scores["as_of_date"][0] == tx["date"].max()
    assert scores.height == 12 and fit.n_repeat_customers == 9
    assert scores["count_items"].is_null().all()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("customer,date,amount\nc1,2025-01-01,3\n", ["missing column(s) 'customer_id'"]),
        ("customer_id,date,amount\n", ["no transactions"]),
        (
            "customer_id,date,amount\nc1,2025-01-01,3\nc2,2025-02-30,4\n",
            ["line 3, column 'date'", "'2025-02-30' is not a date"],
        ),
        (
            'customer_id,date,amount\nc1,2025-01-01,12\nc2,2025-01-02,"1,000.00"\n',
            ["line 3, column 'amount'", "'1,000.00' is not a number"],
        ),
        (
            "customer_id,date,amount\nc1,2025-01-01,-5\n",
            ["line 2, column 'amount'", "amount -5 is negative"],
        ),
        (
            "customer_id,date,amount,quantity\nc1,2025-01-01,5,0\n,2025-01-01,5,1\n",
            ["line 2, column 'quantity'", "line 3, column 'customer_id'", "2 of 2 rows"],
        ),
        ("customer_id,date,amount\nc1,2025-01-01,5,7,8\n", ["cannot be read as CSV"]),
        (
            "customer_id,date,amount\n" + "c1,2025-01-01,5\n" * 3,
            ["too little history", "1 customers"],
        ),
    ],
)
def test_bad_csvs_are_rejected_with_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    csv = _write(tmp_path / "bad.csv", text)
    out = tmp_path / "out.csv"
    assert main(["--csv", str(csv), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    for fragment in expected:
        assert fragment in err
    assert not out.exists()


def test_many_bad_rows_are_counted_and_the_first_ten_quoted(tmp_path: Path) -> None:
    text = "customer_id,date,amount\n" + "".join(f"c{i},2025-01-01,x{i}\n" for i in range(25))
    with pytest.raises(TransactionLogError) as info:
        read_transactions(_write(tmp_path / "many.csv", text))
    message = str(info.value)
    assert "25 of 25 rows cannot be used" in message
    assert message.count("column 'amount'") == 10 and "and 15 more rows" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TransactionLogError, match="file not found"):
        read_transactions(tmp_path / "nope.csv")
