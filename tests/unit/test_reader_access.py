"""What the Iceberg REST catalog tells a reader about a table's files, per deployment choice."""

from __future__ import annotations

from datagrove.tables.reader_access import ReaderAccess, VendingPolicy, read_only_policy
from datagrove.tables.storage import S3Options

S3 = S3Options(endpoint="http://s3.local", region="eu-west-1", access_key_id="AK", secret_access_key="SK")


def test_vended_credentials_may_only_read_the_one_tables_prefix() -> None:
    policy = read_only_policy("s3://bucket/root/warehouse/datagrove.db/ds_1")
    assert [s["Action"] for s in policy["Statement"]] == [["s3:GetObject"], ["s3:ListBucket"]]
    read, listing = policy["Statement"]
    assert read["Resource"] == ["arn:aws:s3:::bucket/root/warehouse/datagrove.db/ds_1/*"]
    assert listing["Resource"] == ["arn:aws:s3:::bucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["root/warehouse/datagrove.db/ds_1/*"]}}


def test_local_storage_needs_nothing_and_a_bucket_without_a_role_gives_no_keys_unless_told() -> None:
    assert ReaderAccess(None, VendingPolicy()).config("/data/t", session_name="u") == {}
    plain = ReaderAccess(S3, VendingPolicy()).config("s3://b/t", session_name="u")
    assert plain["s3.endpoint"] == "http://s3.local" and "s3.secret-access-key" not in plain
    trusted = ReaderAccess(S3, VendingPolicy(server_credentials=True)).config("s3://b/t", session_name="u")
    assert (trusted["s3.access-key-id"], trusted["s3.secret-access-key"]) == ("AK", "SK")
