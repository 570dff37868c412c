"""Counts of what the validator did, as Prometheus text, and the DLQ-rate alert.

Counts are kept per outcome (valid, duplicate, and each dead-letter reason). The DLQ rate is
measured over a sliding window of recent messages; above the threshold (design: 0.1%) an alert
is logged once per crossing and the `fraud_ingestion_dlq_alert` gauge reads 1.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("fraud_platform.ingestion")


class IngestionMetrics:
    def __init__(self, alert_threshold: float = 0.001, window: int = 10_000) -> None:
        self.alert_threshold = alert_threshold
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (topic, reason) -> count
        self._window: deque[tuple[int, int]] = deque()  # (messages, dead-lettered) per batch
        self._window_size = window
        self._window_totals = [0, 0]
        self.alerting = False
        self._lock = threading.Lock()

    def record_batch(self, outcomes: Counter[tuple[str, str]]) -> None:
        """Count one committed batch: `outcomes` maps (topic, reason) to a count."""
        messages = sum(outcomes.values())
        dead = sum(n for (topic, _), n in outcomes.items() if topic.startswith("dlq-"))
        with self._lock:
            self.outcomes.update(outcomes)
            self._window.append((messages, dead))
            self._window_totals[0] += messages
            self._window_totals[1] += dead
            while self._window_totals[0] - self._window[0][0] >= self._window_size:
                old_messages, old_dead = self._window.popleft()
                self._window_totals[0] -= old_messages
                self._window_totals[1] -= old_dead
            rate = self.dlq_rate
        if rate > self.alert_threshold and not self.alerting:
            log.warning(
                "ALERT dlq rate %.3f%% over the last %d messages is above %.3f%%",
                rate * 100,
                self._window_totals[0],
                self.alert_threshold * 100,
            )
        self.alerting = rate > self.alert_threshold

    @property
    def dlq_rate(self) -> float:
        messages, dead = self._window_totals
        return dead / messages if messages else 0.0

    def totals(self) -> dict[str, int]:
        by_topic: Counter[str] = Counter()
        with self._lock:
            for (topic, _), n in self.outcomes.items():
                by_topic[topic] += n
        return dict(by_topic)

    def prometheus(self) -> str:
        with self._lock:
            lines = [
                "# HELP fraud_ingestion_messages_total Messages, by destination and reason.",
                "# TYPE fraud_ingestion_messages_total counter",
            ]
            for (topic, reason), n in sorted(self.outcomes.items()):
                lines.append(
                    f'fraud_ingestion_messages_total{{topic="{topic}",reason="{reason}"}} {n}'
                )
            lines += [
                "# HELP fraud_ingestion_dlq_rate Dead-lettered share of the recent window.",
                "# TYPE fraud_ingestion_dlq_rate gauge",
                f"fraud_ingestion_dlq_rate {self.dlq_rate:.6f}",
                "# HELP fraud_ingestion_dlq_alert 1 while the DLQ rate is above the threshold.",
                "# TYPE fraud_ingestion_dlq_alert gauge",
                f"fraud_ingestion_dlq_alert {int(self.alerting)}",
            ]
        return "\n".join(lines) + "\n"

    def serve(self, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
        """Serve /metrics in a daemon thread; returns the server (shutdown() stops it)."""
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                body = metrics.prometheus().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
        return server
