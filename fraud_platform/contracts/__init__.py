"""The message contracts: Avro schemas, defined once, used by every producer and consumer.

Messages are framed as Confluent's wire format (magic byte 0, a 4-byte schema id, the Avro
body), so a consumer can tell which version wrote a message. Ids live in schemas/registry.json.
Timestamps are epoch milliseconds in Python (logical types are documentation on the wire).
"""

from fraud_platform.contracts.registry import (
    CONTRACTS,
    DEAD_LETTER,
    ENRICHED_TRANSACTION,
    FRAUD_LABEL,
    MODEL_PREDICTION,
    TRANSACTION,
    Contract,
    ContractError,
    decode_any,
)

__all__ = [
    "CONTRACTS",
    "DEAD_LETTER",
    "ENRICHED_TRANSACTION",
    "FRAUD_LABEL",
    "MODEL_PREDICTION",
    "TRANSACTION",
    "Contract",
    "ContractError",
    "decode_any",
]
