"""Command line: ``python -m seg_pipeline.generator --landing DIR --truth DIR ...``.

Only counts are printed; no personal data ever reaches the terminal or logs.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from seg_pipeline.generator.config import SHIFT_KINDS, GeneratorConfig
from seg_pipeline.generator.core import generate


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {s!r}") from e


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the generator CLI."""
    p = argparse.ArgumentParser(
        prog="python -m seg_pipeline.generator",
        description="Generate deterministic daily landing files and planted ground truth.",
    )
    p.add_argument("--landing", type=Path, required=True, help="landing directory")
    p.add_argument("--truth", type=Path, required=True, help="ground-truth directory")
    p.add_argument("--start", type=_date, required=True, help="first day (YYYY-MM-DD)")
    p.add_argument("--end", type=_date, required=True, help="last day, inclusive (YYYY-MM-DD)")
    p.add_argument("--customers", type=int, default=1000, help="customers at the start date")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--messiness", type=float, default=0.02, help="rate of each kind of mess")
    p.add_argument("--web-events-per-day", type=int, default=None, help="target events/day")
    p.add_argument(
        "--holdout-share",
        type=float,
        default=0.2,
        help="share of each campaign's audience held out as a control group",
    )
    p.add_argument(
        "--activation-feed",
        type=Path,
        default=None,
        help="folder of delivery exports: <DIR>/<YYYY-MM-DD>/*.csv are sent the next day",
    )
    p.add_argument(
        "--write-from",
        type=_date,
        default=None,
        help="first day whose files are written (the simulation still starts at --start)",
    )
    p.add_argument(
        "--shift-date",
        type=_date,
        default=None,
        help="day from which the world shifts (data drift; off unless given)",
    )
    p.add_argument(
        "--shift-kind",
        choices=SHIFT_KINDS,
        default="session_rate",
        help="what shifts: a behaviour scaled by --shift-factor, or the persona mix",
    )
    p.add_argument(
        "--shift-factor", type=float, default=2.0, help="multiplier of the behaviour shifted"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the generator CLI and print a per-source row-count summary.

    Parameters
    ----------
    argv
        Arguments without the program name (``None`` uses ``sys.argv``).

    Returns
    -------
    int
        Process exit code (0 on success, 2 on invalid settings).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    config = GeneratorConfig(
        landing_dir=args.landing,
        truth_dir=args.truth,
        start_date=args.start,
        end_date=args.end,
        n_customers=args.customers,
        seed=args.seed,
        messiness=args.messiness,
        web_events_per_day=args.web_events_per_day,
        holdout_share=args.holdout_share,
        activation_feed_dir=args.activation_feed,
        write_from=args.write_from,
        shift_date=args.shift_date,
        shift_kind=args.shift_kind,
        shift_factor=args.shift_factor,
    )
    try:
        summary = generate(config)
    except ValueError as e:
        parser.print_usage()
        print(f"error: {e}")
        return 2
    n_days = (args.end - (args.write_from or args.start)).days + 1
    print(
        f"wrote {summary.files_written} files for {n_days} day(s), "
        f"{summary.n_customers_total} customers, in {summary.seconds:.1f}s"
    )
    for source, per_day in summary.rows.items():
        planted = ", ".join(f"{k}={v}" for k, v in summary.mess[source].items() if v)
        line = f"  {source:<15} {sum(per_day.values()):>12,} rows"
        print(line + (f"  (mess: {planted})" if planted else ""))
    if summary.activation:
        print("  activation feed " + ", ".join(f"{k}={v}" for k, v in summary.activation.items()))
    return 0
