"""The code location loads, and its assets carry what the UI and backfills need."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import AssetKey, Definitions, build_schedule_context
from dagster._core.definitions.backfill_policy import BackfillPolicyType

from seg_pipeline.assets_common import DAILY_FRESHNESS, code_version
from seg_pipeline.definitions import build_definitions
from seg_pipeline.resources import read_sql
from seg_pipeline.settings import Settings

EXPECTED_ASSETS = {
    "raw_crm_customers",
    "raw_orders",
    "raw_web_events",
    "raw_reviews",
    "raw_campaign_sends",
    "stg_crm_customers",
    "stg_orders",
    "stg_web_events",
    "stg_reviews",
    "stg_campaign_sends",
    "review_topic_model",
    "review_nlp",
    "web_session_fragments",
    "customer_feature_state",
    "customer_features",
    "clv_model",
    "customer_clv",
    "segmentation_model",
    "customer_segments",
    "segment_migrations",
    "segment_profiles",
    "model_drift",
    "predictive_models",
    "customer_scores",
    "recommendations",
    "audiences",
    "campaign_exports",
    "campaign_lift",
    "uplift_models",
    "uplift_scores",
}


def _defs() -> Definitions:
    return build_definitions(Settings.from_env({"SEG_PARTITIONS_START": "2026-01-01"}))


def test_definitions_load_with_every_asset() -> None:
    defs = _defs()
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == EXPECTED_ASSETS
    assert defs.resolve_job_def("daily_pipeline") is not None


def test_every_asset_is_described_owned_and_backfills_in_one_run() -> None:
    graph = _defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name in {
            "raw",
            "staging",
            "privacy",
            "features",
            "segmentation",
            "predictive",
            "activation",
            "monitoring",
        }, key
        assert node.description and len(node.description) > 40, key
        assert "duckdb" in node.kinds, key
        assert node.owners == ["team:data-engineering"], key
        assert node.partitions_def is not None, key
        assert node.backfill_policy.policy_type == BackfillPolicyType.SINGLE_RUN, key
        assert node.pools == {"duckdb_warehouse"}, key
        # a missed day shows as overdue; a changed SQL file or function shows as unsynced
        assert node.freshness_policy == DAILY_FRESHNESS, key
        assert node.code_version and len(node.code_version) == 12, key


def test_code_versions_follow_the_sql_files_and_functions() -> None:
    graph = _defs().resolve_asset_graph()
    assert graph.get(AssetKey("stg_orders")).code_version == code_version(
        read_sql("staging/stg_orders")
    )
    versions = [graph.get(k).code_version for k in graph.get_all_asset_keys()]
    assert len(set(versions)) == len(versions)  # no two assets compute the same


def test_staging_lineage_points_at_its_raw_table_and_the_crm() -> None:
    graph = _defs().resolve_asset_graph()
    parents = graph.get(AssetKey("stg_orders")).parent_keys
    assert parents == {AssetKey("raw_orders"), AssetKey("stg_crm_customers")}
    assert AssetKey("customer_pii") not in graph.get_all_asset_keys()  # the vault holds them


def test_schedule_requests_yesterdays_partition() -> None:
    defs = _defs()
    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    assert schedule.cron_schedule == "30 2 * * *"
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 15, 2, 30, tzinfo=UTC)
    )
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2026-03-14"]
    assert requests[0].tags.get("seg/warehouse") == "duckdb"
