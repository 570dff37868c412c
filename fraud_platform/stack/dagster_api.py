"""The few calls the first run makes to the running Dagster, over its GraphQL endpoint: what
is materialized, a backfill launched and followed. Going through the webserver (not an
in-process instance) makes the work the daemon's, visible in the UI as a backfill and its runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from fraud_platform.stack.process import StackError

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""

BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill {
      status
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed
          }
        }
      }
    }
  }
}"""

PARTITION_STATS = """
{ assetNodes { assetKey { path } groupName
    partitionStats { numMaterialized numFailed numPartitions } } }"""


@dataclass(frozen=True)
class BackfillState:
    status: str  # REQUESTED while running; COMPLETED_SUCCESS, COMPLETED_FAILED, FAILED, ...
    targeted: int  # asset partitions
    materialized: int
    failed: int

    @property
    def complete(self) -> bool:
        """Every targeted asset partition materialized: the daemon marks the backfill
        completed on its next tick, up to 30 s later, with nothing left to do."""
        return self.targeted > 0 and self.materialized == self.targeted and self.failed == 0

    @property
    def finished(self) -> bool:
        return self.complete or self.status not in ("REQUESTED", "CANCELING", "FAILING")

    @property
    def succeeded(self) -> bool:
        completed = self.status in ("COMPLETED", "COMPLETED_SUCCESS") and self.failed == 0
        return completed or self.complete


class DagsterApi:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout

    def query(self, query: str, **variables) -> dict:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            timeout=self.timeout,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise StackError(f"Dagster answered: {body['errors'][0]['message']}")
        return body["data"]

    def materialized(self) -> dict[str, tuple[str, int]]:
        """Each partitioned asset's (group, partitions materialized)."""
        nodes = self.query(PARTITION_STATS)["assetNodes"]
        return {
            "/".join(n["assetKey"]["path"]): (
                n["groupName"],
                n["partitionStats"]["numMaterialized"],
            )
            for n in nodes
            if n["partitionStats"]
        }

    def launch_backfill(self, title: str, ranges: dict[str, tuple[str, str]], tags: dict) -> str:
        """One asset backfill of each asset (`group/name`) over its (first, last) day."""
        params = {
            "title": title,
            "partitionsByAssets": [
                {
                    "assetKey": {"path": key.split("/")},
                    "partitions": {"range": {"start": first, "end": last}},
                }
                for key, (first, last) in ranges.items()
            ],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        answer = self.query(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        if answer["__typename"] != "LaunchBackfillSuccess":
            raise StackError(f"Dagster refused the backfill: {answer.get('message', answer)}")
        return answer["backfillId"]

    def backfill(self, backfill_id: str) -> BackfillState:
        data = self.query(BACKFILL, id=backfill_id)["partitionBackfillOrError"]
        counts = (data.get("assetBackfillData") or {}).get("assetBackfillStatuses") or []
        total = [
            sum(c.get(f, 0) for c in counts)
            for f in ("numPartitionsTargeted", "numPartitionsMaterialized", "numPartitionsFailed")
        ]
        return BackfillState(data["status"], *total)
