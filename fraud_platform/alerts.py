"""One alerting interface for every part of the platform: quality checks, the streaming
job's window checks, failed Dagster runs.

An alert always goes to the log and to a JSON-lines file (the data-quality dashboard shows
the last 24 hours from it); Slack (an incoming-webhook URL) and e-mail (an SMTP server) are
added by configuration. A sink that fails is logged and skipped: alerting must never be the
reason a pipeline stops.

Configuration (environment): FRAUD_ALERTS_FILE, FRAUD_ALERTS_SLACK_WEBHOOK,
FRAUD_ALERTS_SMTP_HOST, FRAUD_ALERTS_SMTP_PORT, FRAUD_ALERTS_SMTP_USER,
FRAUD_ALERTS_SMTP_PASSWORD, FRAUD_ALERTS_EMAIL_FROM, FRAUD_ALERTS_EMAIL_TO (comma-separated).
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import time
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from pathlib import Path

log = logging.getLogger("fraud_platform.alerts")
SEVERITIES = ("INFO", "WARN", "ERROR")


@dataclass(frozen=True)
class Alert:
    source: str  # what raised it: "quality/batch_feature_drift", "dagster/run_failure"
    severity: str  # INFO, WARN or ERROR
    title: str
    detail: str = ""
    at_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert severity {self.severity!r} is not one of {SEVERITIES}")

    def text(self) -> str:
        return f"[{self.severity}] {self.source}: {self.title}" + (
            f"\n{self.detail}" if self.detail else ""
        )


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    sender: str = "fraud-platform@localhost"
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Alerter:
    file: Path
    slack_webhook: str = ""
    smtp: Smtp | None = None

    @classmethod
    def from_env(cls) -> Alerter:
        from fraud_platform.config import Settings

        env = os.environ.get
        default_file = Settings.from_env().home / "alerts" / "alerts.jsonl"
        smtp = None
        if env("FRAUD_ALERTS_SMTP_HOST"):
            smtp = Smtp(
                host=env("FRAUD_ALERTS_SMTP_HOST", ""),
                port=int(env("FRAUD_ALERTS_SMTP_PORT", "25")),
                user=env("FRAUD_ALERTS_SMTP_USER", ""),
                password=env("FRAUD_ALERTS_SMTP_PASSWORD", ""),
                sender=env("FRAUD_ALERTS_EMAIL_FROM", Smtp.sender),
                recipients=tuple(
                    a.strip() for a in env("FRAUD_ALERTS_EMAIL_TO", "").split(",") if a.strip()
                ),
            )
        return cls(
            file=Path(env("FRAUD_ALERTS_FILE", str(default_file))),
            slack_webhook=env("FRAUD_ALERTS_SLACK_WEBHOOK", ""),
            smtp=smtp,
        )

    def send(self, alert: Alert) -> list[str]:
        """Deliver to every configured sink; returns the sinks that failed, each with why."""
        level = {"INFO": logging.INFO, "WARN": logging.WARNING}.get(alert.severity, logging.ERROR)
        log.log(level, "%s", alert.text())
        failed = []
        for name, sink in self._sinks():
            try:
                sink(alert)
            except Exception as error:
                log.exception("alert sink %s failed", name)
                failed.append(f"{name}: {type(error).__name__}: {error}")
        return failed

    def _sinks(self):
        yield "file", self._to_file
        if self.slack_webhook:
            yield "slack", self._to_slack
        if self.smtp is not None and self.smtp.recipients:
            yield "email", self._to_email

    def _to_file(self, alert: Alert) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with self.file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(alert)) + "\n")

    def _to_slack(self, alert: Alert) -> None:
        import httpx

        httpx.post(self.slack_webhook, json={"text": alert.text()}, timeout=10).raise_for_status()

    def _to_email(self, alert: Alert) -> None:
        smtp = self.smtp
        message = EmailMessage()
        message["Subject"] = f"[fraud-platform] [{alert.severity}] {alert.title}"
        message["From"] = smtp.sender
        message["To"] = ", ".join(smtp.recipients)
        message.set_content(alert.text())
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            if smtp.user:
                client.starttls()
                client.login(smtp.user, smtp.password)
            client.send_message(message)

    def recent(self, hours: float = 24, now_ms: int | None = None) -> list[Alert]:
        """The alerts of the last `hours` from the file sink, newest first."""
        if not self.file.exists():
            return []
        since = (now_ms or int(time.time() * 1000)) - int(hours * 3_600_000)
        alerts = [Alert(**json.loads(line)) for line in self.file.read_text().splitlines() if line]
        return sorted((a for a in alerts if a.at_ms >= since), key=lambda a: -a.at_ms)
