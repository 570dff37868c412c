"""Importing external files: the shipped handbook mapping, CSV, and clear errors."""

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from fraud_platform.config import PROJECT_ROOT
from fraud_platform.governance.pci import card_token
from fraud_platform.importing.importer import ImportError_, Mapping, import_to_lake
from fraud_platform.resources import LakeResource

HANDBOOK = PROJECT_ROOT.parent / "shared" / "data" / "handbook" / "handbook_transactions.parquet"


@pytest.fixture(scope="module")
def handbook_sample(tmp_path_factory) -> Path:
    """The first two days of the real handbook file."""
    table = pq.read_table(HANDBOOK)
    sample = table.filter(pc.less(table["TX_TIME_DAYS"], 2))
    path = tmp_path_factory.mktemp("hb") / "handbook_2days.parquet"
    pq.write_table(sample, path)
    return path


def read(lake_root: Path, folder: str) -> pa.Table:
    return ds.dataset(lake_root / folder, format="parquet", partitioning="hive").to_table()


def test_handbook_maps_ids_amounts_and_labels_leaving_the_rest_null(handbook_sample, tmp_path):
    source = pq.read_table(handbook_sample)
    rows, labels, rejected = import_to_lake(
        LakeResource(root=str(tmp_path)), handbook_sample, Mapping.load("handbook")
    )
    assert rows + rejected == labels == source.num_rows

    raw = read(tmp_path, "raw/transactions")
    assert raw.num_rows == rows
    first = source.slice(0, 1).to_pylist()[0]
    row = raw.filter(pc.equal(raw["transaction_id"], f"hb-{first['TRANSACTION_ID']}")).to_pylist()[
        0
    ]
    assert row["user_id"] == f"hb-customer-{first['CUSTOMER_ID']}"
    assert row["merchant_id"] == f"hb-terminal-{first['TERMINAL_ID']}"
    assert row["amount"] == first["TX_AMOUNT"]
    assert row["timestamp"].replace(tzinfo=None) == first["TX_DATETIME"]
    for absent in (
        "currency",
        "lat",
        "lon",
        "country",
        "device",
        "channel",
        "card_last4",
        "declined",
    ):
        assert raw[absent].null_count == raw.num_rows, absent
    assert len(list((tmp_path / "raw" / "transactions").glob("date=2018-04-0*/hour=*"))) == 48

    label_table = read(tmp_path, "labels/fraud_investigations")
    assert pc.sum(label_table["is_fraud"]).as_py() == pc.sum(source["TX_FRAUD"]).as_py()
    types = set(pc.unique(label_table["fraud_type"]).to_pylist()) - {None}
    assert types <= {"amount_outlier", "compromised_merchant", "compromised_card"}
    users = read(tmp_path, "reference/users")
    assert users.num_rows == pc.count_distinct(source["CUSTOMER_ID"]).as_py()
    assert users["home_country"].null_count == users.num_rows

    # Importing again rewrites the same files: nothing doubles.
    import_to_lake(LakeResource(root=str(tmp_path)), handbook_sample, Mapping.load("handbook"))
    assert read(tmp_path, "raw/transactions").num_rows == rows


def test_a_csv_with_its_own_mapping(tmp_path):
    csv = tmp_path / "bank.csv"
    pacsv.write_csv(
        pa.table(
            {
                "id": [1, 2, 3, 4],
                "client": ["c1", "c2", "c3", "c4"],
                "shop": ["s1", "s1", "s2", "s2"],
                "value": [10.5, 99.0, 0.0, 5.0],
                "ccy": ["EUR", "USD", "EUR", "XXX"],
                "at": [
                    "2024-12-12 10:30:45",
                    "2024-12-12 11:00:00",
                    "2024-12-12 11:00:01",
                    "2024-12-12 11:00:02",
                ],
                "pan": ["4111 1111 1111 1111", "not a card", None, None],
            }
        ),
        csv,
    )
    mapping = tmp_path / "bank.yaml"
    mapping.write_text(
        """
name: bank
transaction:
  transaction_id: {column: id, template: "bank-{}"}
  user_id: {column: client}
  merchant_id: {column: shop}
  amount: {column: value}
  currency: {column: ccy}
  timestamp: {column: at}
  card_last4: {column: pan, card_number: true}
"""
    )
    rows, labels, rejected = import_to_lake(
        LakeResource(root=str(tmp_path / "lake")), csv, Mapping.load(str(mapping))
    )
    assert (rows, labels, rejected) == (2, 0, 2)
    # What the validator would refuse is dead-lettered with the reason, never dropped.
    letters = read(tmp_path / "lake", "dead_letters/dlq-schema-errors").sort_by("transaction_id")
    assert letters["transaction_id"].to_pylist() == ["bank-3", "bank-4"]
    assert letters["reason"].to_pylist() == ["amount_out_of_range", "unknown_currency"]
    assert all(value for value in letters["original_value"].to_pylist())
    raw = read(tmp_path / "lake", "raw/transactions").sort_by("transaction_id")
    assert raw["transaction_id"].to_pylist() == ["bank-1", "bank-2"]
    assert raw["currency"].to_pylist() == ["EUR", "USD"]
    assert raw["card_last4"].to_pylist() == ["1111", None]  # never the full number
    assert raw["card_token"].to_pylist() == [card_token("4111111111111111"), None]
    assert "4111" not in str(raw.to_pylist())


def test_a_card_number_in_any_column_is_dead_lettered_masked(tmp_path):
    csv = tmp_path / "bank.csv"
    pan = "4111111111111111"
    pacsv.write_csv(
        pa.table(
            {
                "id": ["1", f"tx-{pan}", "3"],
                "client": ["c1", "c2", pan],
                "shop": ["s1", "s1", "s2"],
                "value": [10.5, 99.0, 5.0],
                "ccy": ["EUR", "EUR", "EUR"],
                "at": ["2024-12-12 10:30:45", "2024-12-12 11:00:00", "2024-12-12 11:00:01"],
            }
        ),
        csv,
    )
    mapping = tmp_path / "bank.yaml"
    mapping.write_text(
        """
name: bank
transaction:
  transaction_id: {column: id}
  user_id: {column: client}
  merchant_id: {column: shop}
  amount: {column: value}
  currency: {column: ccy}
  timestamp: {column: at}
"""
    )
    lake = tmp_path / "lake"
    rows, _, rejected = import_to_lake(
        LakeResource(root=str(lake)), csv, Mapping.load(str(mapping))
    )
    assert (rows, rejected) == (1, 2)
    letters = read(lake, "dead_letters/dlq-schema-errors").sort_by("transaction_id")
    assert letters["reason"].to_pylist() == ["card_number_in_field"] * 2
    assert letters["transaction_id"].to_pylist() == ["3", f"tx-{'*' * 12}1111"]
    assert all(pan.encode() not in value for value in letters["original_value"].to_pylist())
    assert pan not in str(read(lake, "raw/transactions").to_pylist())


def test_mapping_errors_name_the_field_or_column(tmp_path):
    with pytest.raises(ImportError_, match=r"no mapping 'nope'.*handbook"):
        Mapping.load("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntransaction:\n  transaction_id: {column: a}\n  pan: {column: b}\n")
    with pytest.raises(ImportError_, match=r"unknown contract fields: \['pan'\]"):
        Mapping.load(str(bad))
    bad.write_text("name: bad\ntransaction:\n  transaction_id: {column: a}\n")
    with pytest.raises(ImportError_, match="does not map the required field 'user_id'"):
        Mapping.load(str(bad))
    csv = tmp_path / "one.csv"
    pacsv.write_csv(pa.table({"a": ["1"], "u": ["c1"]}), csv)
    bad.write_text(
        "name: bad\ntransaction:\n  transaction_id: {column: a}\n  user_id: {column: u}\n"
        "  merchant_id: {value: m1}\n  amount: {column: a}\n  currency: {column: a}\n"
        "  timestamp: {column: a}\n"
    )
    with pytest.raises(ImportError_, match="the mapping of merchant_id names no source column"):
        import_to_lake(LakeResource(root=str(tmp_path / "lake")), csv, Mapping.load(str(bad)))
