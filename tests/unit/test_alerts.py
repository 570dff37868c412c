"""The one alerting interface: file and log always, Slack and e-mail by configuration, each
delivered to a real local server; a failing sink never stops the caller. The streaming
window check and the run-failure sensor alert through it."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest
from aiosmtpd.controller import Controller

from fraud_platform.alerts import Alert, Alerter, Smtp
from sensors.alerts import run_failure_alert, run_failure_alerts


@pytest.fixture
def slack_server():
    """A webhook endpoint on loopback that records what it was posted."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@pytest.fixture
def smtp_server(free_ports):
    """An SMTP server on loopback that keeps every message."""
    messages: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            messages.append(envelope.content)
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_ports())
    controller.start()
    yield controller.port, messages
    controller.stop()


def test_an_alert_reaches_the_file_slack_and_email(tmp_path, slack_server, smtp_server):
    url, posted = slack_server
    port, mails = smtp_server
    smtp = Smtp("127.0.0.1", port, recipients=("oncall@example.com",))
    alerter = Alerter(tmp_path / "alerts.jsonl", slack_webhook=url, smtp=smtp)
    alert = Alert("quality/test", "ERROR", "3 expectations failed", "amount out of range")
    assert alerter.send(alert) == []
    assert alerter.recent() == [alert]
    assert posted == [{"text": alert.text()}]
    (mail,) = mails
    assert b"Subject: [fraud-platform] [ERROR] 3 expectations failed" in mail
    assert b"amount out of range" in mail


def test_a_failing_sink_is_reported_not_raised(tmp_path, free_ports):
    dead = f"http://127.0.0.1:{free_ports()}/nobody-listens"
    alerter = Alerter(tmp_path / "alerts.jsonl", slack_webhook=dead)
    failed = alerter.send(Alert("x", "WARN", "still written to the file"))
    assert len(failed) == 1 and failed[0].startswith("slack: ConnectError")
    assert [a.title for a in alerter.recent()] == ["still written to the file"]


def test_recent_keeps_the_last_24_hours_newest_first(tmp_path):
    alerter = Alerter(tmp_path / "alerts.jsonl")
    now = 1_750_000_000_000
    for hours_ago in (30, 2, 1):
        alerter.send(Alert("x", "INFO", f"{hours_ago}h ago", at_ms=now - hours_ago * 3_600_000))
    assert [a.title for a in alerter.recent(now_ms=now)] == ["1h ago", "2h ago"]
    with pytest.raises(ValueError, match="severity 'LOUD'"):
        Alert("x", "LOUD", "no such severity")


@dg.op
def explode() -> None:
    raise RuntimeError("the lake is gone")


@dg.job
def doomed() -> None:
    explode()


def test_a_failed_run_becomes_an_alert(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    with dg.instance_for_test() as instance:
        result = doomed.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        alert = run_failure_alert(run, "step explode failed")
        assert alert.severity == "ERROR" and "of doomed failed" in alert.title
        context = dg.build_run_status_sensor_context(
            sensor_name=run_failure_alerts.name,
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()
        run_failure_alerts(context)
    (sent,) = Alerter.from_env().recent()
    assert sent.source == "dagster/run_failure" and result.run_id[:8] in sent.title
