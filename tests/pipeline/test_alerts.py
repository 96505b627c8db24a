"""Failure alerts: real runs fail on a real Dagster instance, the registered sensors are
evaluated as the daemon evaluates them (cursor included), and a small HTTP server on loopback
is the webhook. No mocks of Dagster or of HTTP.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    Failure,
    build_sensor_context,
    job,
    op,
)
from dagster._core.definitions.sensor_definition import SensorExecutionData

from seg_pipeline.definitions import build_definitions
from seg_pipeline.ops.alerts import (
    ALERT_REDELIVERY_SENSOR,
    RUN_FAILURE_ALERT_SENSOR,
    AlertRecord,
    redeliver,
    scrub_message,
)
from seg_pipeline.ops.runs import run_daily_range
from seg_pipeline.settings import ALERT_WEBHOOK_ENV, Settings

DAY = date(2026, 1, 1)
# What a failing row could put in an error message: none of it may reach an alert.
EMAIL = "jane.doe@example.com"
CUSTOMER_ID = "CUST-48213"
PHONE = "+44 20 7946 0958"
NAME = "Jane Doe"
HOME = "/home/jdoe/landing/crm_customers/2026-01-01.csv"
PERSONAL = (EMAIL, CUSTOMER_ID, PHONE, NAME, "Jane", "Doe", "jdoe", "48213", "7946")


@dataclass
class Webhook:
    """A webhook on 127.0.0.1 that records every request and answers ``status``."""

    server: ThreadingHTTPServer
    status: int = 204
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/T000/secret-token"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.received.append(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "body": body.decode("utf-8"),
                }
            )
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def _settings(root: Path, webhook_url: str | None) -> Settings:
    """Settings of an empty data folder (no landing files), read as the code location reads
    them."""
    env = {"SEG_DATA_DIR": str(root), "SEG_PARTITIONS_START": DAY.isoformat()}
    if webhook_url:
        env[ALERT_WEBHOOK_ENV] = webhook_url
    return Settings.from_env(env)


class Sensors:
    """The code location's alert sensors, evaluated tick after tick like the daemon does."""

    def __init__(self, defs: Definitions, instance: DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursors: dict[str, str | None] = {}

    def tick(self, name: str = RUN_FAILURE_ALERT_SENSOR) -> SensorExecutionData:
        sensor = self.defs.resolve_sensor_def(name)
        context = build_sensor_context(instance=self.instance, cursor=self.cursors.get(name))
        result = sensor.evaluate_tick(context)
        self.cursors[name] = result.cursor
        return result


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as instance:
        yield instance


def _fail_raw_orders(defs: Definitions, instance: DagsterInstance) -> str:
    """A real daily run of raw_orders for DAY whose landing file is missing: it fails."""
    result = run_daily_range(
        defs, DAY, DAY, instance=instance, raise_on_error=False, assets=["raw_orders"]
    )
    assert not result.success
    return result.run_id


@op
def load_customer_row() -> None:
    raise ValueError(
        f"Row of customer {CUSTOMER_ID} ({EMAIL}, {PHONE}) rejected: name '{NAME}' at {HOME}"
    )


@job
def row_loader() -> None:
    load_customer_row()


@op
def deliberate_failure() -> None:
    raise Failure(description=f"Customer {NAME} <{EMAIL}> has id {CUSTOMER_ID}")


@job
def failure_job() -> None:
    deliberate_failure()


def _notes(instance: DagsterInstance, run_id: str) -> list[str]:
    """What the run's event log says about its failure alert."""
    messages = (e.dagster_event.message for e in instance.all_logs(run_id) if e.dagster_event)
    return [m for m in messages if m and m.startswith("Failure alert")]


def _bodies(hook: Webhook) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in hook.received]


def test_a_failed_daily_run_posts_one_alert_and_a_second_tick_sends_nothing_new(
    tmp_path: Path, webhook: Webhook, instance: DagsterInstance
) -> None:
    defs = build_definitions(_settings(tmp_path, webhook.url))
    sensors = Sensors(defs, instance)
    sensors.tick()  # the first tick only places the cursor (Dagster's run-status sensors)

    run_id = _fail_raw_orders(defs, instance)
    result = sensors.tick()

    assert len(webhook.received) == 1
    request = webhook.received[0]
    assert request["path"] == "/hooks/T000/secret-token"
    assert request["content_type"] == "application/json"
    alert = json.loads(request["body"])
    assert alert["run_id"] == run_id
    assert alert["job_name"] == "daily_pipeline"
    assert alert["partition"] == {"range_start": "2026-01-01", "range_end": "2026-01-01"}
    assert alert["failed_steps"] == ["raw_orders"]
    assert alert["error"] == {
        "class": "LandingFileError",
        "message": "orders: landing file for <value> is missing: <value>",
        "step": "raw_orders",
    }
    assert alert["run_path"] == f"/runs/{run_id}"
    failed_at = datetime.fromisoformat(alert["failed_at"])
    assert timedelta(0) <= datetime.now(UTC) - failed_at < timedelta(minutes=5)
    assert run_id[:8] in alert["text"] and "raw_orders" in alert["text"]
    assert str(tmp_path) not in request["body"]  # the landing path is scrubbed
    assert [r.dagster_run.run_id for r in result.dagster_run_reactions or []] == [run_id]
    assert not (result.dagster_run_reactions or [])[0].error

    # recorded: the pending line written before the POST, then the delivery
    entries = AlertRecord(tmp_path / "alerts").entries()
    assert [e["delivery"]["status"] for e in entries] == ["pending", "sent"]
    assert entries[-1]["delivery"]["detail"] == "HTTP 204"
    assert entries[-1]["delivery"]["target"] == f"http://127.0.0.1:{webhook.server.server_port}"
    assert "secret-token" not in (tmp_path / "alerts" / "alerts.jsonl").read_text()
    # and in the UI: the failed run's own log says the alert went out
    notes = _notes(instance, run_id)
    assert notes == ["Failure alert sent to the webhook (HTTP 204)."]

    again = sensors.tick()
    assert len(webhook.received) == 1  # nothing new
    assert not again.dagster_run_reactions
    assert sensors.tick(ALERT_REDELIVERY_SENSOR).skip_message == "No undelivered alerts."
    assert len(webhook.received) == 1


def test_personal_data_in_error_messages_never_reaches_an_alert(
    tmp_path: Path, webhook: Webhook, instance: DagsterInstance
) -> None:
    defs = build_definitions(_settings(tmp_path, webhook.url))
    sensors = Sensors(defs, instance)
    sensors.tick()
    row_run = row_loader.execute_in_process(instance=instance, raise_on_error=False)
    failure_run = failure_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not row_run.success and not failure_run.success
    # the messages of the runs' own logs do hold the personal data
    step_error = row_run.get_step_failure_events()[0].step_failure_data.error
    assert EMAIL in step_error.cause.message and CUSTOMER_ID in step_error.cause.message

    sensors.tick()

    alerts = {a["run_id"]: a for a in _bodies(webhook)}
    assert set(alerts) == {row_run.run_id, failure_run.run_id}
    row, failure = alerts[row_run.run_id], alerts[failure_run.run_id]
    assert row["job_name"] == "row_loader"
    assert row["failed_steps"] == ["load_customer_row"]
    assert row["error"]["class"] == "ValueError"
    assert row["error"]["message"] == (
        "Row of customer <value> (<value>) rejected: name <value> at <value>"
    )
    assert failure["error"]["class"] == "Failure"
    assert failure["error"]["message"] == "Customer <value> has id <value>"
    record = (tmp_path / "alerts" / "alerts.jsonl").read_text()
    for sent in (*(r["body"] for r in webhook.received), record):
        for value in PERSONAL:
            assert value not in sent, value
        assert "@" not in sent


def test_a_webhook_that_refuses_connections_leaves_a_recorded_failed_delivery_then_a_retry(
    tmp_path: Path, refused_url: str, webhook: Webhook, instance: DagsterInstance
) -> None:
    down = build_definitions(_settings(tmp_path, refused_url))
    sensors = Sensors(down, instance)
    sensors.tick()
    run_id = _fail_raw_orders(down, instance)

    result = sensors.tick()  # no exception out of the sensor, the run's reaction is clean

    assert [r.dagster_run.run_id for r in result.dagster_run_reactions or []] == [run_id]
    assert not (result.dagster_run_reactions or [])[0].error
    latest = AlertRecord(tmp_path / "alerts").latest()[run_id]["delivery"]
    assert latest["status"] == "failed"
    assert latest["detail"] == "ConnectionRefusedError: Connection refused"
    notes = _notes(instance, run_id)
    assert notes == [
        "Failure alert could not be delivered (ConnectionRefusedError: Connection refused); "
        "alert_redelivery_sensor retries it."
    ]
    assert "still failing: 1" in (sensors.tick(ALERT_REDELIVERY_SENSOR).skip_message or "")

    # the webhook is back (the deployment now points at it): the next redelivery tick sends
    # the alert once, and the one after that has nothing left to do
    back = Sensors(build_definitions(_settings(tmp_path, webhook.url)), instance)
    assert "Alerts redelivered: 1" in (back.tick(ALERT_REDELIVERY_SENSOR).skip_message or "")
    assert [a["run_id"] for a in _bodies(webhook)] == [run_id]
    assert AlertRecord(tmp_path / "alerts").latest()[run_id]["delivery"]["attempt"] == 3
    assert back.tick(ALERT_REDELIVERY_SENSOR).skip_message == "No undelivered alerts."
    assert len(webhook.received) == 1


def test_a_webhook_answering_an_error_is_a_failed_delivery_given_up_after_a_day(
    tmp_path: Path, webhook: Webhook, instance: DagsterInstance
) -> None:
    webhook.status = 500
    settings = _settings(tmp_path, webhook.url)
    sensors = Sensors(build_definitions(settings), instance)
    sensors.tick()
    run_id = _fail_raw_orders(build_definitions(settings), instance)
    sensors.tick()
    assert AlertRecord(settings.alerts_dir).latest()[run_id]["delivery"]["detail"] == "HTTP 500"

    later = datetime.now(UTC) + timedelta(hours=25)
    assert redeliver(settings, instance, now=later) == {"sent": 0, "failed": 0, "gave_up": 1}
    assert AlertRecord(settings.alerts_dir).latest()[run_id]["delivery"]["status"] == "gave_up"
    assert len(webhook.received) == 1  # the one failed POST, no more


def test_without_a_webhook_the_alert_is_recorded_and_not_sent(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    defs = build_definitions(_settings(tmp_path, None))
    sensors = Sensors(defs, instance)
    sensors.tick()
    run_id = _fail_raw_orders(defs, instance)

    sensors.tick()

    [entry] = AlertRecord(tmp_path / "alerts").entries()
    assert entry["alert"]["run_id"] == run_id
    assert entry["delivery"]["status"] == "not_sent"
    assert ALERT_WEBHOOK_ENV in entry["delivery"]["detail"]
    notes = _notes(instance, run_id)
    assert notes == [f"Failure alert recorded, not sent: {ALERT_WEBHOOK_ENV} is not set."]
    assert sensors.tick(ALERT_REDELIVERY_SENSOR).skip_message == "No undelivered alerts."


@pytest.mark.parametrize(
    "value",
    ["ftp://hooks.example.com/x", "hooks.example.com/x", "http:///x", "http://host:port/x",
     "http://hooks.example.com/a b"],
)  # fmt: skip
def test_a_webhook_setting_that_is_not_an_http_url_is_refused_without_echoing_it(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ValueError, match=ALERT_WEBHOOK_ENV) as refused:
        _settings(tmp_path, value)
    assert value not in str(refused.value)


def test_a_webhook_setting_is_optional_and_kept_out_of_the_settings_repr(tmp_path: Path) -> None:
    assert _settings(tmp_path, "  ").alert_webhook_url is None
    url = "https://hooks.example.com/services/T0/B0/token"
    assert _settings(tmp_path, url).alert_webhook_url == url
    assert "token" not in repr(_settings(tmp_path, url))


def test_the_scrubber_keeps_the_sentence_and_drops_values() -> None:
    assert scrub_message("Gave up waiting for the warehouse after 2 s: held by pid 1234.") == (
        "Gave up waiting for the warehouse after <value> s: held by pid <value>."
    )
    assert scrub_message("bad key deadbeefcafebabe, user 'o''brien'") == (
        "bad key <value>, user <value>"
    )
    assert len(scrub_message("word " * 200)) <= 200
    assert scrub_message(None) == ""
