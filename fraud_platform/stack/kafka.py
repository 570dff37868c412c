"""Apache Kafka 4.x as one KRaft node (broker and controller in one JVM), jars from Maven."""

from __future__ import annotations

import base64
import uuid

from fraud_platform.config import LOOPBACK
from fraud_platform.stack.prerequisites import STACK_DIR, java_home, resolve_jars, run_command
from fraud_platform.stack.process import StackError
from fraud_platform.stack.service import Service
from fraud_platform.topics import ensure_topics

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class KafkaService(Service):
    name = "kafka"
    start_timeout = 120.0

    @property
    def ports(self) -> dict[str, int]:
        ports = self.settings.ports
        return {
            "FRAUD_KAFKA_PORT": ports.kafka,
            "FRAUD_KAFKA_CONTROLLER_PORT": ports.kafka_controller,
        }

    def prepare(self) -> None:
        self.java = java_home() / "bin" / "java"
        self.jars = self.settings.home / "jars" / "kafka"
        resolve_jars(
            STACK_DIR / "maven" / "kafka-broker.pom.xml", self.jars, transitive=True, what="Kafka"
        )
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        (self.dir / "server.properties").write_text(self._server_properties())
        if not (data / "meta.properties").exists():
            self._format_storage()

    def _server_properties(self) -> str:
        ports = self.settings.ports
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{ports.kafka_controller}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{ports.kafka},"
            f"CONTROLLER://{LOOPBACK}:{ports.kafka_controller}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{ports.kafka}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            # Topics exist only as declared in fraud_platform.topics, never by accident.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _format_storage(self) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        done = run_command(
            [
                str(self.java),
                "-cp",
                f"{self.jars}/*",
                "kafka.tools.StorageTool",
                "format",
                # One argument: an id may start with "-" (1 in 64), which argparse would
                # take for an option and refuse the command.
                f"--cluster-id={cluster_id}",
                "-c",
                str(self.dir / "server.properties"),
                "--standalone",
            ],
            timeout=120,
        )
        if done.returncode != 0:
            raise StackError(
                f"formatting the Kafka storage in {self.dir / 'data'} failed "
                f"({(done.stderr or done.stdout).strip()[:300]}); delete that folder and rerun"
            )

    def command(self) -> list[str]:
        return [
            str(self.java),
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp",
            f"{self.jars}/*",
            "kafka.Kafka",
            str(self.dir / "server.properties"),
        ]

    def healthy(self) -> bool:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {"bootstrap.servers": f"{LOOPBACK}:{self.settings.ports.kafka}", "log_level": 0}
        )
        try:
            return bool(admin.list_topics(timeout=2).brokers)
        except Exception:  # KafkaException while the broker is still starting
            return False

    def after_start(self) -> None:
        ensure_topics(f"{LOOPBACK}:{self.settings.ports.kafka}")
