"""Alerts on failed runs: a JSON POST to a webhook, every alert recorded, no personal data.

Two sensors (both running by default; harmless without a webhook):

- :func:`build_run_failure_alert_sensor`, a Dagster ``run_failure_sensor``: for each run that
  fails, it builds an alert (:func:`build_alert`), records it and POSTs it to
  ``SEG_ALERT_WEBHOOK_URL``. It watches every run of the instance
  (``monitor_all_code_locations``), not only the runs launched from this code location: the
  instance (``DAGSTER_HOME``) is this project's own, and runs started with ``dagster asset
  materialize`` (the documented backfill) carry no code location, so a location-scoped sensor
  would never see them fail. Dagster owns this sensor's cursor (it moves past each failure
  event once), so a failure is handled once even across daemon restarts.
- :func:`build_alert_redelivery_sensor`: every few minutes, POSTs again the alerts whose
  delivery failed (webhook down, timeout, non-2xx answer), for up to
  :data:`REDELIVERY_WINDOW`; after that the alert is marked ``gave_up``. A run-failure sensor
  cannot do this itself: its function runs only for new failure events and may not set its
  own cursor.

Where alerts are recorded, and why there: ``<data dir>/alerts/alerts.jsonl``, one JSON line
per delivery attempt (``{"alert": {...}, "delivery": {"status": ..., "attempt": ..., ...}}``;
statuses ``pending`` (written just before the POST), ``sent``, ``failed``, ``not_sent`` (no
webhook set), ``gave_up``). A file, because
it is the redelivery queue (the latest line of a run says whether it still waits), it survives
a wiped or migrated Dagster instance, it is append-only (an audit trail: ``grep <run id>``,
``jq``), and the alert is written before it is sent, so a crash between the two cannot lose it.
For the UI, the failed run's own event log gets an engine event with the delivery status
(open the run: "Failure alert sent to the webhook ..."), and each sensor tick logs what it did.
Reads and appends hold an ``flock`` on ``alerts.jsonl.lock``, so the two sensors (or two
daemons) never send one alert twice.

No personal data in an alert. A run's error messages can hold values from the data (a
customer id, an e-mail of a failed row, a file path with a person's name), so an alert carries
only what the pipeline's code names: run id, job name, the partition tags (only values that are
``YYYY-MM-DD`` days), the failed step keys (op names), the error's class name, and a short
message passed through :func:`scrub_message`, which keeps words and drops every token that
could be a value: quoted spans, anything with a digit (ids, phones, dates, pids), an ``@``
(e-mails), a ``/`` or ``\\`` (paths, URLs), ``=``, long hexadecimal runs, and capitalised words
inside a sentence (names). The full error stays in the run's event log, one click away
(``run_path``: ``/runs/<run id>``), for those allowed to read it. The webhook URL itself is
treated as a credential: logs and records name only its scheme and host.

HTTP uses only the standard library (``urllib.request``) with a timeout of
:data:`WEBHOOK_TIMEOUT_SECONDS`, honours the environment's proxy variables, and does not follow
redirects (a redirected POST would send the alert somewhere not configured). Nothing a webhook
does (refused, slow, 500, redirect) raises out of a sensor evaluation.
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dagster import (
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from dagster._core.events import DagsterEvent, EngineEventData, JobFailureData
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster._utils.error import SerializableErrorInfo

from seg_pipeline.settings import ALERT_WEBHOOK_ENV, Settings

RUN_FAILURE_ALERT_SENSOR = "run_failure_alert_sensor"
ALERT_REDELIVERY_SENSOR = "alert_redelivery_sensor"
ALERT_FILE = "alerts.jsonl"
WEBHOOK_TIMEOUT_SECONDS = 5.0
ALERT_SENSOR_INTERVAL_SECONDS = 30
REDELIVERY_INTERVAL_SECONDS = 120
# A webhook down longer than this gets no stale flood when it comes back: the alert is marked
# gave_up (it stays in the record and the run's event log).
REDELIVERY_WINDOW = timedelta(hours=24)
MAX_MESSAGE_CHARS = 200
MAX_STEPS = 20

_log = logging.getLogger(__name__)

SENT, FAILED, NOT_SENT, GAVE_UP = "sent", "failed", "not_sent", "gave_up"
# written before the first POST: a crash while sending leaves an alert to retry, not none
PENDING = "pending"
RETRIED = (PENDING, FAILED)

_PARTITION_TAGS = {
    "key": PARTITION_NAME_TAG,
    "range_start": ASSET_PARTITION_RANGE_START_TAG,
    "range_end": ASSET_PARTITION_RANGE_END_TAG,
}
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NAME_OF_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]-]{0,199}")
_QUOTED = re.compile(r"""'[^'\n]*'|"[^"\n]*"|`[^`\n]*`|‘[^’\n]*’|“[^”\n]*”|«[^»\n]*»""")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{8,}")
_CAPITALISED = re.compile(r"[A-Z][a-z]+(?:['’-][A-Za-z]+)*")
_EDGE_PUNCTUATION = "()[]{},.;:!?"


def scrub_message(text: str | None, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` reduced to words that cannot be personal data, at most ``limit`` characters.

    Quoted spans become ``<value>``; so does every token holding a digit, ``@``, ``/``, ``\\``,
    ``=``, a quote character, or a run of 8+ hexadecimal characters, and every capitalised word
    that does not start a sentence (a name). Repeated placeholders collapse into one. What is
    left is the sentence the code wrote ("landing file for <value> is missing: <value>").
    """
    if not text:
        return ""
    words: list[str] = []
    sentence_start = True
    for token in _QUOTED.sub(" <value> ", text).split():
        core = token.strip(_EDGE_PUNCTUATION)
        lead = token[: len(token) - len(token.lstrip(_EDGE_PUNCTUATION))]
        trail = token[len(lead) + len(core) :]
        if core and core != "<value>" and _unsafe(core, sentence_start):
            core = "<value>"
        previous = words[-1].strip(_EDGE_PUNCTUATION) if words else ""
        if core == "<value>" and previous == "<value>" and not lead:
            words[-1] = words[-1].rstrip(_EDGE_PUNCTUATION) + trail.rstrip("(")
        else:
            words.append(f"{lead}{core}{trail}")
        sentence_start = token.endswith((".", ":", "!", "?", ";"))
    scrubbed = " ".join(words)
    if len(scrubbed) > limit:
        scrubbed = scrubbed[: limit - 1].rsplit(" ", 1)[0] + "…"
    return scrubbed


def _unsafe(word: str, sentence_start: bool) -> bool:
    return (
        any(c.isdigit() or c in "@/\\='\"`‘’“”«»" for c in word)
        or bool(_HEX_RUN.search(word))
        or (not sentence_start and bool(_CAPITALISED.fullmatch(word)))
    )


def _root_cause(error: SerializableErrorInfo | None) -> SerializableErrorInfo | None:
    """The innermost cause of ``error`` (Dagster wraps a step's exception in its own error)."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error


def _error_text(error: SerializableErrorInfo) -> str:
    """The message of ``error`` without the ``module.Class: `` prefix Dagster puts before it."""
    message = error.message or ""
    head, sep, rest = message.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        return rest
    return message


def _code_name(value: str | None) -> str | None:
    """``value`` if it looks like a name from code (an op, a job), else ``None``."""
    return value if value and _NAME_OF_CODE.fullmatch(value) else None


def _utc(timestamp: float | None) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)
    return moment.isoformat(timespec="seconds")


def build_alert(
    instance: DagsterInstance,
    run: DagsterRun,
    failure_event: DagsterEvent | None,
    step_failures: Sequence[DagsterEvent],
) -> dict[str, Any]:
    """The alert for failed run ``run``: only names from code, days and scrubbed text.

    The error is that of the first failed step (its innermost cause), or, for a run that
    failed outside any step (killed worker, launch error), the run's own failure.
    """
    partition = {
        field: run.tags[tag]
        for field, tag in _PARTITION_TAGS.items()
        if _DAY.fullmatch(run.tags.get(tag, ""))
    }
    steps: list[str] = []
    for event in step_failures:
        name = _code_name(event.step_key) or "<step>"
        if name not in steps:
            steps.append(name)
    error_class, message = "RunFailure", ""
    first = step_failures[0] if step_failures else None
    if first is not None and first.step_failure_data.error is not None:
        root = _root_cause(first.step_failure_data.error)
        error_class, message = root.cls_name or error_class, _error_text(root)
    elif failure_event is not None:
        data = failure_event.event_specific_data
        root = _root_cause(data.error) if isinstance(data, JobFailureData) else None
        if root is not None:
            error_class, message = root.cls_name or error_class, _error_text(root)
        else:
            reason = data.failure_reason if isinstance(data, JobFailureData) else None
            error_class = reason.value if reason is not None else error_class
            message = failure_event.message or ""
    record = instance.get_run_record_by_id(run.run_id)
    job = _code_name(run.job_name) or "<job>"
    alert: dict[str, Any] = {
        "source": "seg-pipeline",
        "kind": "run_failure",
        "run_id": run.run_id,
        "job_name": job,
        "partition": partition,
        "failed_steps": steps[:MAX_STEPS],
        "error": {
            "class": _code_name(error_class) or "<error>",
            "message": scrub_message(message),
            "step": steps[0] if steps else None,
        },
        "run_path": f"/runs/{run.run_id}",
        "failed_at": _utc(record.end_time if record else None),
        "alerted_at": _utc(None),
    }
    days = partition.get("key") or "...".join(
        d for d in (partition.get("range_start"), partition.get("range_end")) if d
    )
    error = alert["error"]
    text = f"seg-pipeline: run {run.run_id[:8]} of {job}"
    text += f" ({days})" if days else ""
    text += f" failed at step {steps[0]}" if steps else " failed"
    text += f": {error['class']}"
    text += f" - {error['message']}" if error["message"] else ""
    # "text": what chat webhooks (Slack, Mattermost, Teams workflows) show
    alert["text"] = f"{text} (/runs/{run.run_id})"
    return alert


def webhook_target(url: str | None) -> str:
    """``url`` named for logs and records: its scheme and host only (the rest may be a token)."""
    if not url:
        return "no webhook"
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx answer becomes an HTTPError: a failed delivery


_OPENER = urllib.request.build_opener(_NoRedirects())


def post_alert(
    url: str, alert: Mapping[str, Any], timeout: float = WEBHOOK_TIMEOUT_SECONDS
) -> tuple[bool, str]:
    """POST ``alert`` as JSON to ``url``: (delivered, what happened). Never raises for what
    the webhook or the network does; a 2xx answer is a delivery."""
    request = urllib.request.Request(
        url,
        data=json.dumps(alert).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "seg-pipeline-alerts"},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code}"
    except urllib.error.URLError as error:
        reason = error.reason
        detail = getattr(reason, "strerror", None) or type(reason).__name__
        return False, f"{type(reason).__name__}: {detail}"
    except Exception as error:  # timeouts, resets, malformed answers: never break the sensor
        return False, type(error).__name__
    return 200 <= status < 300, f"HTTP {status}"


class AlertRecord:
    """The JSON-lines record of alerts and delivery attempts under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ALERT_FILE

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive hold of the record (an ``flock``, freed by the kernel if we die)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def entries(self) -> list[dict[str, Any]]:
        """Every line of the record, oldest first (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        entries = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return entries

    def latest(self) -> dict[str, dict[str, Any]]:
        """The latest entry per run id."""
        return {e["alert"]["run_id"]: e for e in self.entries() if "alert" in e}

    def append(self, alert: Mapping[str, Any], delivery: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"alert": alert, "delivery": delivery}) + "\n")


def _attempt(url: str | None, alert: Mapping[str, Any], attempt: int) -> dict[str, Any]:
    """Send ``alert`` (when there is a webhook) and describe the delivery."""
    at = _utc(None)
    if not url:
        return {
            "status": NOT_SENT,
            "attempt": attempt,
            "at": at,
            "detail": f"{ALERT_WEBHOOK_ENV} is not set: recorded only",
            "target": webhook_target(None),
        }
    delivered, detail = post_alert(url, alert)
    return {
        "status": SENT if delivered else FAILED,
        "attempt": attempt,
        "at": at,
        "detail": detail,
        "target": webhook_target(url),
    }


def _report_on_run(instance: DagsterInstance, run_id: str, delivery: Mapping[str, Any]) -> None:
    """An engine event in the failed run's log: the UI shows the alert's fate on the run."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return
    status = delivery["status"]
    message = {
        SENT: f"Failure alert sent to the webhook ({delivery['detail']}).",
        FAILED: (
            f"Failure alert could not be delivered ({delivery['detail']}); "
            f"{ALERT_REDELIVERY_SENSOR} retries it."
        ),
        NOT_SENT: f"Failure alert recorded, not sent: {ALERT_WEBHOOK_ENV} is not set.",
        GAVE_UP: "Failure alert never delivered; gave up retrying.",
    }[status]
    instance.report_engine_event(
        message,
        run,
        EngineEventData(
            metadata={
                "alert status": status,
                "alert attempt": delivery["attempt"],
                "alert target": delivery["target"],
                "alert record": f"alerts/{ALERT_FILE} in the data folder",
            }
        ),
    )


def alert_on_failed_run(
    settings: Settings,
    instance: DagsterInstance,
    run: DagsterRun,
    failure_event: DagsterEvent | None,
    step_failures: Sequence[DagsterEvent],
) -> dict[str, Any] | None:
    """Record and send the alert of failed run ``run`` once: the delivery written to the
    record, or ``None`` when the run was alerted on before."""
    record = AlertRecord(settings.alerts_dir)
    with record.locked():
        if run.run_id in record.latest():
            return None
        alert = build_alert(instance, run, failure_event, step_failures)
        url = settings.alert_webhook_url
        if url:
            record.append(
                alert,
                {"status": PENDING, "attempt": 0, "at": _utc(None), "detail": "sending",
                 "target": webhook_target(url)},
            )  # fmt: skip
        delivery = _attempt(url, alert, 1)
        record.append(alert, delivery)
    _report_on_run_safely(instance, run.run_id, delivery)
    return delivery


def redeliver(
    settings: Settings, instance: DagsterInstance | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Send again every recorded alert whose latest delivery failed; those older than
    :data:`REDELIVERY_WINDOW` are marked gave_up instead. Counts per outcome."""
    record = AlertRecord(settings.alerts_dir)
    counts = {SENT: 0, FAILED: 0, GAVE_UP: 0}
    if not record.path.exists():
        return counts
    now = now or datetime.now(UTC)
    reported: list[tuple[str, dict[str, Any]]] = []
    with record.locked():
        for run_id, entry in record.latest().items():
            delivery, alert = entry.get("delivery", {}), entry["alert"]
            if delivery.get("status") not in RETRIED:
                continue
            attempt = int(delivery.get("attempt", 0)) + 1
            alerted = datetime.fromisoformat(alert.get("alerted_at") or now.isoformat())
            if not settings.alert_webhook_url or now - alerted > REDELIVERY_WINDOW:
                outcome = {
                    "status": GAVE_UP,
                    "attempt": attempt - 1,
                    "at": _utc(None),
                    "detail": "no webhook set any more"
                    if not settings.alert_webhook_url
                    else f"undelivered for more than {REDELIVERY_WINDOW}",
                    "target": webhook_target(settings.alert_webhook_url),
                }
            else:
                outcome = _attempt(settings.alert_webhook_url, alert, attempt)
            record.append(alert, outcome)
            counts[outcome["status"]] += 1
            if outcome["status"] != FAILED:
                reported.append((run_id, outcome))
    if instance is not None:
        for run_id, outcome in reported:
            _report_on_run_safely(instance, run_id, outcome)
    return counts


def _report_on_run_safely(
    instance: DagsterInstance, run_id: str, delivery: Mapping[str, Any]
) -> None:
    try:
        _report_on_run(instance, run_id, delivery)
    except Exception:  # the record has it; the run's log is a convenience
        _log.exception("Could not add the alert's delivery to the log of run %s", run_id)


def build_run_failure_alert_sensor(settings: Settings) -> SensorDefinition:
    """The run-failure sensor: each failed run of the instance alerted on once."""

    @run_failure_sensor(
        name=RUN_FAILURE_ALERT_SENSOR,
        minimum_interval_seconds=ALERT_SENSOR_INTERVAL_SECONDS,
        monitor_all_code_locations=True,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "POSTs an alert without personal data (run, job, days, failed steps, error class, "
            "scrubbed message, /runs/<id>) to SEG_ALERT_WEBHOOK_URL for each failed run, and "
            "records it under <data dir>/alerts/alerts.jsonl (only recorded when no webhook "
            "is set)."
        ),
    )
    def run_failure_alert_sensor(context: RunFailureSensorContext) -> None:
        run = context.dagster_run
        delivery = alert_on_failed_run(
            settings,
            context.instance,
            run,
            context.failure_event,
            context.get_step_failure_events(),
        )
        if delivery is None:
            context.log.info(f"Run {run.run_id} was alerted on before; nothing sent.")
        elif delivery["status"] == NOT_SENT:
            context.log.info(
                f"Run {run.run_id} failed: alert recorded in {ALERT_FILE}, not sent "
                f"({ALERT_WEBHOOK_ENV} is not set)."
            )
        elif delivery["status"] == SENT:
            context.log.info(
                f"Run {run.run_id} failed: alert sent to {delivery['target']} "
                f"({delivery['detail']})."
            )
        else:
            context.log.warning(
                f"Run {run.run_id} failed: alert to {delivery['target']} not delivered "
                f"({delivery['detail']}); recorded, {ALERT_REDELIVERY_SENSOR} retries it."
            )
        # None, not a SkipReason: a returned value ends the tick after this run, None lets
        # Dagster go on with the tick's other failed runs

    return run_failure_alert_sensor


def build_alert_redelivery_sensor(settings: Settings) -> SensorDefinition:
    """The sensor that retries alerts whose delivery failed."""

    @sensor(
        name=ALERT_REDELIVERY_SENSOR,
        minimum_interval_seconds=REDELIVERY_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Retries failure alerts the webhook did not accept (down, timeout, non-2xx), for "
            "up to 24 hours, from <data dir>/alerts/alerts.jsonl."
        ),
    )
    def alert_redelivery_sensor(context: SensorEvaluationContext) -> SkipReason:
        counts = redeliver(settings, context.instance)
        if not any(counts.values()):
            return SkipReason("No undelivered alerts.")
        summary = (
            f"Alerts redelivered: {counts[SENT]}, still failing: {counts[FAILED]}, "
            f"given up: {counts[GAVE_UP]}."
        )
        (context.log.warning if counts[FAILED] or counts[GAVE_UP] else context.log.info)(summary)
        return SkipReason(summary)

    return alert_redelivery_sensor


def build_alert_sensors(settings: Settings) -> list[SensorDefinition]:
    """Both alert sensors, wired to ``settings``' webhook and data folder."""
    return [build_run_failure_alert_sensor(settings), build_alert_redelivery_sensor(settings)]
