"""The command line prints counts only, never personal data."""

from __future__ import annotations

import re

from seg_pipeline.generator.cli import main


def test_cli_runs_and_prints_no_personal_data(tmp_path, capsys) -> None:
    code = main(
        [
            "--landing", str(tmp_path / "landing"), "--truth", str(tmp_path / "truth"),
            "--start", "2026-03-01", "--end", "2026-03-02", "--customers", "200",
            "--seed", "9", "--messiness", "0.05", "--web-events-per-day", "2000",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    for source in ("crm_customers", "orders", "web_events", "reviews", "campaign_sends"):
        assert source in out
    assert "@" not in out
    assert not re.search(r"\+\d{1,3} \d", out)  # no phone numbers
    assert (tmp_path / "landing" / "orders" / "2026-03-02.csv").is_file()
    assert (tmp_path / "truth" / "customers.parquet").is_file()


def test_cli_rejects_bad_config(tmp_path, capsys) -> None:
    code = main(
        [
            "--landing", str(tmp_path), "--truth", str(tmp_path / "inside"),
            "--start", "2026-03-01", "--end", "2026-03-01",
        ]
    )  # fmt: skip
    assert code == 2
    assert "truth_dir" in capsys.readouterr().out
