"""The Iceberg REST catalog (``/iceberg``) through the engines that use it: PyIceberg's own
``RestCatalog``, Daft and Polars read every dataset the caller may view, exactly as Datagrove's
export and HTTP query answer; permissions, row-level policies and the read-only rule hold; the
responses conform to the protocol's published OpenAPI document; a bucket's readers get short-lived
credentials of their own.

One server for the local-directory tests and one, on moto's S3 with STS, for vended credentials and
token expiry (its tokens live two seconds)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import ForbiddenError, NoSuchTableError

from datagrove.api.iceberg_rest.writes import WRITES
from datagrove.services.auth import EXPIRY_LEEWAY_SECONDS
from tests.e2e.test_pdp import create_person, share
from tests.support.iceberg_rest.spec import Spec
from tests.support.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, MotoServer
from tests.support.server import RunningServer

SCHEMA = {
    "columns": [
        {"type": "STRING", "name": "Region"},
        {"type": "LONG", "name": "Amount"},
        {"type": "DOUBLE", "name": "Ratio"},
        {"type": "DECIMAL", "name": "Price"},
        {"type": "DATE", "name": "Day"},
        {"type": "DATETIME", "name": "At"},
        {"type": "BOOLEAN", "name": "Paid"},
    ]
}
ROWS = (
    "East,10,0.5,1.25,2024-01-01,2024-01-01T10:00:00,true\n"
    "West,20,1.5,2.5,2024-01-02,2024-01-02T11:30:00,false\n"
    "East,30,,3,2024-01-03,2024-01-03T12:00:01,true\n"
    ",40,2.25,,,,\n"
)
APPENDED = "North,50,3.5,4.75,2024-01-05,2024-01-05T09:00:00,false"
NAMESPACE = "datagrove"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(data_dir=tmp_path_factory.mktemp("iceberg-local"), catalog_url=None).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def new_dataset(admin: httpx.Client, name: str) -> str:
    dataset_id: str = admin.post("/v1/datasets", json={"name": name, "schema": SCHEMA}).json()["id"]
    assert admin.put(f"/v1/datasets/{dataset_id}/data", content=ROWS.encode()).status_code == 204
    return dataset_id


@pytest.fixture(scope="module")
def dataset(admin: httpx.Client) -> str:
    """A dataset of every column type, with one more row appended (still buffered when loaded)."""
    dataset_id = new_dataset(admin, "iceberg-" + uuid.uuid4().hex[:8])
    appended = admin.post(
        f"/api/data/v3/datasources/{dataset_id}/uploads", json={"values": APPENDED, "delimiter": ","}
    )
    assert appended.status_code == 200, appended.text
    return dataset_id


def rest_catalog(server: RunningServer, **properties: str) -> RestCatalog:
    """PyIceberg's client of the server's catalog: with the bootstrap client's credentials, or
    with ``token`` (a developer token of another user) when given."""
    credentials = (
        {} if "token" in properties else {"credential": f"{server.client_id}:{server.client_secret}"}
    )
    return RestCatalog(
        "datagrove",
        uri=f"{server.base_url}/iceberg",
        **{"oauth2-server-uri": f"{server.base_url}/iceberg/v1/oauth/tokens"},
        **credentials,
        **properties,
    )


@pytest.fixture(scope="module")
def catalog(server: RunningServer) -> RestCatalog:
    return rest_catalog(server)


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec.load()


def exported(admin: httpx.Client, dataset_id: str) -> list[list[str]]:
    answer = admin.get(f"/v1/datasets/{dataset_id}/data", params={"includeHeader": "false"})
    assert answer.status_code == 200, answer.text
    return list(csv.reader(io.StringIO(answer.text)))


def as_export_text(value: Any) -> str:
    """A value read from the table as the CSV export writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, decimal.Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def test_pyiceberg_lists_loads_and_scans_a_dataset_with_exactly_the_rows_of_its_export(
    catalog: RestCatalog, admin: httpx.Client, dataset: str
) -> None:
    assert catalog.list_namespaces() == [(NAMESPACE,)]
    assert (NAMESPACE, dataset) in catalog.list_tables(NAMESPACE)
    assert catalog.table_exists((NAMESPACE, dataset))
    table = catalog.load_table((NAMESPACE, dataset))
    assert [field.name for field in table.schema().fields] == [c["name"] for c in SCHEMA["columns"]]
    scanned = table.scan().to_arrow()
    rows = [[as_export_text(v) for v in row.values()] for row in scanned.to_pylist()]
    export = exported(admin, dataset)
    assert len(export) == 5  # the appended row is in the files a reader sees
    assert sorted(rows) == sorted(export)
    # A load hands out every row, as an export does: it is in the activity log.
    entries = admin.get("/v1/audit", params={"limit": 200}).json()
    assert any(
        e["objectId"] == dataset and e["eventText"] == "Loaded DataSet as an Iceberg table" for e in entries
    )


def test_a_user_without_access_neither_lists_nor_loads_the_dataset(
    server: RunningServer, admin: httpx.Client, dataset: str
) -> None:
    _, token = create_person(server, admin, "outsider-" + uuid.uuid4().hex[:6])
    outsider = rest_catalog(server, token=token)
    assert (NAMESPACE, dataset) not in outsider.list_tables(NAMESPACE)
    with pytest.raises(NoSuchTableError):
        outsider.load_table((NAMESPACE, dataset))
    assert not outsider.table_exists((NAMESPACE, dataset))
    anonymous = httpx.get(f"{server.base_url}/iceberg/v1/namespaces/{NAMESPACE}/tables/{dataset}")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "NotAuthorizedException"


def test_a_dataset_with_row_level_policies_is_refused_to_a_viewer_with_the_reason(
    server: RunningServer, admin: httpx.Client, catalog: RestCatalog
) -> None:
    dataset_id = new_dataset(admin, "pdp-" + uuid.uuid4().hex[:8])
    viewer_id, token = create_person(server, admin, "viewer-" + uuid.uuid4().hex[:6])
    share(admin, dataset_id, viewer_id)
    viewer = rest_catalog(server, token=token)
    assert viewer.load_table((NAMESPACE, dataset_id)).scan().to_arrow().num_rows == 4  # no policies yet
    assert admin.put(f"/v1/datasets/{dataset_id}", json={"pdpEnabled": True}).status_code == 200
    assert (NAMESPACE, dataset_id) in viewer.list_tables(NAMESPACE)
    with pytest.raises(ForbiddenError, match="row-level policies"):
        viewer.load_table((NAMESPACE, dataset_id))
    assert catalog.load_table((NAMESPACE, dataset_id)).scan().to_arrow().num_rows == 4  # the owner
    share(admin, dataset_id, viewer_id, "CO_OWNER")
    assert viewer.load_table((NAMESPACE, dataset_id)).scan().to_arrow().num_rows == 4


def test_every_write_of_the_protocol_is_refused_with_a_pointer_to_the_stream_api(
    server: RunningServer, admin: httpx.Client, catalog: RestCatalog, dataset: str, spec: Spec
) -> None:
    token = server.oauth_token()
    headers = {"Authorization": f"Bearer {token}"}
    names = {"namespace": NAMESPACE, "table": dataset, "view": "v"}
    for method, path, operation in WRITES:
        assert spec.has_operation(method, path), (method, path)
        url = f"{server.base_url}/iceberg{path.format(**names)}"
        answer = httpx.request(method, url, headers=headers, json={})
        assert answer.status_code == 405, (operation, answer.text)
        assert "Stream" in answer.json()["error"]["message"], operation
        spec.validate("IcebergErrorResponse", answer.json())
        assert httpx.request(method, url, json={}).status_code == 401  # the refusal too needs a token
    assert len(WRITES) == 15
    # The config lists only the read endpoints, so PyIceberg refuses a write before sending it.
    with pytest.raises(Exception, match="does not support endpoint"):
        catalog.drop_table((NAMESPACE, dataset))
    assert catalog.table_exists((NAMESPACE, dataset))


def test_responses_conform_to_the_published_openapi_document(
    server: RunningServer, dataset: str, spec: Spec
) -> None:
    token = server.oauth_token()
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{server.base_url}/iceberg"
    table = f"/v1/namespaces/{NAMESPACE}/tables/{dataset}"
    for path, schema in [
        ("/v1/config", "CatalogConfig"),
        ("/v1/namespaces", "ListNamespacesResponse"),
        (f"/v1/namespaces/{NAMESPACE}", "GetNamespaceResponse"),
        (f"/v1/namespaces/{NAMESPACE}/tables", "ListTablesResponse"),
        (table, "LoadTableResult"),
        ("/v1/namespaces/nope", "IcebergErrorResponse"),
        (f"/v1/namespaces/{NAMESPACE}/tables/{uuid.uuid4()}", "IcebergErrorResponse"),
    ]:
        answer = httpx.get(base + path, headers=headers)
        assert answer.status_code in (200, 404), (path, answer.text)
        spec.validate(schema, answer.json())
    config = httpx.get(base + "/v1/config", headers=headers).json()
    for endpoint in config["endpoints"]:
        method, path = endpoint.split(" ")
        assert spec.has_operation(method, path.replace("/{prefix}", "")), endpoint
    assert httpx.head(base + table, headers=headers).status_code == 204
    assert httpx.head(f"{base}/v1/namespaces/{NAMESPACE}", headers=headers).status_code == 204
    form = {"grant_type": "client_credentials", "client_id": server.client_id, "scope": "catalog"}
    issued = httpx.post(base + "/v1/oauth/tokens", data={**form, "client_secret": server.client_secret})
    assert issued.status_code == 200, issued.text
    spec.validate("OAuthTokenResponse", issued.json())
    refused = httpx.post(base + "/v1/oauth/tokens", data={**form, "client_secret": "wrong"})
    assert refused.status_code == 401
    spec.validate("OAuthError", refused.json())


def test_daft_and_polars_reading_through_the_catalog_answer_the_http_query(
    server: RunningServer,
    admin: httpx.Client,
    catalog: RestCatalog,
    dataset: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import daft
    import polars as pl

    monkeypatch.setenv("POLARS_ICEBERG_PLANNER", "pyiceberg")  # its own planner is another package

    sql = "SELECT Region, SUM(Amount) AS total, COUNT(*) AS n FROM table GROUP BY Region"
    answer = admin.post(f"/v1/datasets/query/execute/{dataset}", json={"sql": sql})
    assert answer.status_code == 200, answer.text
    expected = sorted((row[0] or "", int(row[1]), int(row[2])) for row in answer.json()["rows"])
    assert len(expected) == 4

    table = catalog.load_table((NAMESPACE, dataset))
    by_daft = (
        daft.read_iceberg(table)
        .groupby("Region")
        .agg(daft.col("Amount").sum().alias("total"), daft.col("Amount").count().alias("n"))
        .to_pydict()
    )
    assert (
        sorted(
            (r or "", t, n) for r, t, n in zip(by_daft["Region"], by_daft["total"], by_daft["n"], strict=True)
        )
        == expected
    )
    by_polars = (
        pl.scan_iceberg(table)
        .group_by("Region")
        .agg(pl.col("Amount").sum().alias("total"), pl.len().alias("n"))
        .collect()
    )
    assert sorted((r or "", t, n) for r, t, n in by_polars.iter_rows()) == expected


def test_catalog_tokens_are_our_tokens(server: RunningServer, dataset: str) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    issued = httpx.post(f"{server.base_url}/iceberg/v1/oauth/tokens", data=form).json()
    # The same token works on the rest of the API.
    answer = httpx.get(
        f"{server.base_url}/v1/datasets/{dataset}",
        headers={"Authorization": f"Bearer {issued['access_token']}"},
    )
    assert answer.status_code == 200


# --- S3: vended credentials, token expiry -------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/datagrove-readers"


@pytest.fixture(scope="module")
def s3_server(
    tmp_path_factory: pytest.TempPathFactory, moto: MotoServer
) -> Iterator[tuple[RunningServer, str]]:
    bucket = moto.new_bucket()
    env = {
        **moto.env(bucket),
        "DATAGROVE_ICEBERG_S3_ROLE_ARN": ROLE,
        "DATAGROVE_TOKEN_LIFETIME_SECONDS": "2",
    }
    running = RunningServer(
        data_dir=tmp_path_factory.mktemp("iceberg-s3"), catalog_url=None, extra_env=env
    ).start()
    yield running, bucket
    running.stop()


def test_a_bucket_reader_gets_short_lived_credentials_of_its_own_and_reads_the_table(
    s3_server: tuple[RunningServer, str],
) -> None:
    server, bucket = s3_server
    with server.client() as admin:
        dataset_id = new_dataset(admin, "s3-" + uuid.uuid4().hex[:8])
    token = server.oauth_token()
    answer = httpx.get(
        f"{server.base_url}/iceberg/v1/namespaces/{NAMESPACE}/tables/{dataset_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    assert SECRET_ACCESS_KEY not in answer.text  # the server's own keys never leave it
    config = answer.json()["config"]
    assert config["s3.session-token"] and config["s3.access-key-id"] != ACCESS_KEY_ID
    assert answer.json()["metadata-location"].startswith(f"s3://{bucket}/")
    [vended] = answer.json()["storage-credentials"]
    assert vended["prefix"] == answer.json()["metadata"]["location"]
    table = rest_catalog(server, token=token).load_table((NAMESPACE, dataset_id))
    assert table.scan().to_arrow().num_rows == 4


def test_catalog_tokens_expire(s3_server: tuple[RunningServer, str]) -> None:
    server, _ = s3_server
    form = {
        "grant_type": "client_credentials",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    issued = httpx.post(f"{server.base_url}/iceberg/v1/oauth/tokens", data=form).json()
    assert issued["expires_in"] == 2
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    url = f"{server.base_url}/iceberg/v1/namespaces"
    assert httpx.get(url, headers=headers).status_code == 200
    time.sleep(2 + EXPIRY_LEEWAY_SECONDS + 1)  # the server allows this much clock skew
    expired = httpx.get(url, headers=headers)
    assert expired.status_code == 401
    assert expired.json()["error"]["type"] == "NotAuthorizedException"


def test_the_vendored_document_is_the_one_its_readme_names() -> None:
    readme = (Path(__file__).parents[1] / "support" / "iceberg_rest" / "README.md").read_text()
    assert "Apache License" in readme and "rest-catalog-open-api.yaml" in readme
