import copy
import json

import pytest

from fraud_platform.contracts import CONTRACTS, DEAD_LETTER, TRANSACTION, ContractError, decode_any
from fraud_platform.contracts.compatibility import check_all, problems
from fraud_platform.contracts.registry import SCHEMA_DIR, versions


def test_every_schema_file_is_registered_once():
    registered = {f"{c.name}.v{c.version}" for c in CONTRACTS.values()}
    on_disk = {p.stem for p in SCHEMA_DIR.glob("*.avsc")}
    assert registered == on_disk
    assert len(CONTRACTS) == len(registered)


def test_round_trip_with_the_schema_id_in_the_header():
    record = {"transaction_id": "txn_1", "amount": 127.5, "timestamp": 1_734_000_000_000}
    data = TRANSACTION.encode(record)
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == TRANSACTION.schema_id
    contract, decoded = decode_any(data)
    assert contract is TRANSACTION
    assert decoded["amount"] == 127.5 and decoded["user_id"] is None and decoded["declined"] is None


def test_the_card_fields_hold_only_the_last_four_digits_and_the_token():
    assert {"card_last4", "card_token"} <= set(TRANSACTION.field_names)
    assert not any("card_number" in n or n == "pan" for n in TRANSACTION.field_names)


def test_an_older_version_reads_as_the_latest():
    v1 = versions("transaction")[0]
    assert TRANSACTION.version == 2
    decoded = TRANSACTION.decode(v1.encode({"transaction_id": "t-1", "card_last4": "1111"}))
    assert decoded["transaction_id"] == "t-1" and decoded["card_last4"] == "1111"
    assert "card_token" in decoded and decoded["card_token"] is None  # v2's new field
    assert decode_any(v1.encode({}))[0] is v1  # decode_any still says which version wrote it


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x05\x00\x00\x00\x01abc", "magic byte"),
        (b"\x00\x00\x00\x03\xe7abc", "schema id 999 is not registered"),
        (TRANSACTION.encode({}) + b"\x00", "bytes left after"),
    ],
)
def test_bad_frames_say_what_is_wrong(data, message):
    with pytest.raises(ContractError, match=message):
        decode_any(data)


def test_decode_checks_the_contract_name():
    envelope = DEAD_LETTER.encode(
        {
            "reason": "x",
            "detail": "y",
            "source_topic": "t",
            "source_partition": 0,
            "source_offset": 1,
            "rejected_at": 0,
        }
    )
    with pytest.raises(ContractError, match="expected a transaction message, got dead_letter"):
        TRANSACTION.decode(envelope)


def test_registered_versions_are_backward_compatible():
    assert check_all() == []


def _next_version(change) -> dict:
    schema = copy.deepcopy(TRANSACTION.schema)
    change(schema["fields"])
    return schema


def _replace(fields: list[dict], field: dict) -> None:
    fields[[f["name"] for f in fields].index(field["name"])] = field


def test_compatible_changes_pass():
    def add_optional(fields):
        fields.append({"name": "card_network", "type": ["null", "string"], "default": None})

    def widen(fields):
        fields.append({"name": "x", "type": "long", "default": 0})

    assert problems(TRANSACTION.schema, _next_version(add_optional)) == []
    assert problems(TRANSACTION.schema, _next_version(widen)) == []
    assert problems({"type": "int"}, {"type": "double"}) == []


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (
            lambda f: f.append({"name": "risk", "type": "double"}),
            "risk: new field without a default",
        ),
        (
            lambda f: _replace(f, {"name": "amount", "type": ["null", "int"], "default": None}),
            "amount: writer type double matches no branch",
        ),
        (
            lambda f: _replace(f, {"name": "declined", "type": "string", "default": "no"}),
            "declined: boolean cannot be read as string",
        ),
    ],
)
def test_incompatible_changes_fail_the_check(change, found):
    assert any(found in p for p in problems(TRANSACTION.schema, _next_version(change)))


def test_enum_symbols_cannot_be_removed():
    old = {"type": "enum", "name": "D", "symbols": ["approve", "review", "decline"]}
    new = {"type": "enum", "name": "D", "symbols": ["approve", "decline"]}
    assert problems(old, new) == ["<root>: enum symbols ['review'] removed without a default"]


def test_registry_ids_are_stable():
    registry = json.loads((SCHEMA_DIR / "registry.json").read_text())["schemas"]
    assert registry["1"] == "transaction.v1" and registry["5"] == "dead_letter.v1"


def test_the_cli_check_passes_on_the_registered_schemas():
    from click.testing import CliRunner

    from fraud_platform.cli import main

    result = CliRunner().invoke(main, ["contracts", "check"])
    assert result.exit_code == 0, result.output
    assert "every version backward compatible" in result.output
