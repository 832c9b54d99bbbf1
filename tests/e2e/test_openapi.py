"""The API description: /openapi.json is a valid OpenAPI 3.1 document covering every API route,
/docs is a reference page served with local assets only, and both are open without a token and
can be turned off."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from datagrove.api.openapi.document import undescribed
from datagrove.app import create_app
from datagrove.settings import Settings
from tests.support.server import RunningServer

#: Paths that are not API (web-design.md): the web pages, their assets and the description itself.
# /iceberg is the Iceberg REST catalog: its routes are described by the protocol's own published
# document (tests/e2e/test_iceberg_rest.py checks them against it).
NOT_API = re.compile(r"^(/|/ui(/.*)?|/static(/.*)?|/docs(/.*)?|/openapi\.json|/iceberg(/.*)?)$")
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(data_dir=tmp_path_factory.mktemp("openapi"), catalog_url=None).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def document(docs_server: RunningServer) -> dict:
    response = httpx.get(f"{docs_server.base_url}/openapi.json", timeout=30)
    assert response.status_code == 200
    return response.json()


def api_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, path) of every route of the app outside the non-API paths; a trailing-slash twin
    counts as its path without the slash."""
    app = create_app(Settings(data_dir=tmp_path))
    found = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        if path is None or NOT_API.match(path):
            continue
        for method in route.methods or ():
            if method in METHODS:
                found.add((method, path.rstrip("/") or "/"))
    return found


def test_the_document_is_open_without_a_token_and_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_api_route_is_in_the_document(document, tmp_path):
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routes = api_routes(tmp_path)
    assert sorted(routes - documented) == []
    assert sorted(documented - routes) == []


def test_every_operation_is_described_with_examples_and_errors(document):
    assert undescribed(document) == []
    for path, item in document["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op["summary"] and op["operationId"], where
            assert not any(code.startswith("422") for code in op["responses"]), where
            for media in op.get("requestBody", {}).get("content", {}).values():
                assert "example" in media, where
            for status, response in op["responses"].items():
                if status.startswith("2"):
                    assert all("example" in media for media in response.get("content", {}).values()), where
                else:
                    assert response["$ref"] == f"#/components/responses/Error{status}", where
            if op["security"]:
                assert "401" in op["responses"], where


def test_the_security_schemes_are_oauth_bearer_and_the_developer_token(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["developerToken"]["name"] == "X-DOMO-Developer-Token"
    assert document["paths"]["/health"]["get"]["security"] == []
    assert document["paths"]["/oauth/token"]["post"]["security"] == [{"clientBasic": []}]


def test_upload_bodies_are_described_as_csv_and_gzip(document):
    part = document["paths"]["/v1/streams/{stream_id}/executions/{execution_id}/part/{part_id}"]["put"]
    assert set(part["requestBody"]["content"]) == {"text/csv", "application/gzip"}
    assert "Content-Encoding" in {p["name"] for p in part["parameters"]}
    token = document["paths"]["/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]


def test_the_reference_page_uses_only_local_assets(docs_server):
    page = httpx.get(f"{docs_server.base_url}/docs", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        asset = httpx.get(f"{docs_server.base_url}{source}", timeout=30)
        assert asset.status_code == 200, source
        assert b"https://" not in asset.content or source.endswith(".js"), source
    assert httpx.get(f"{docs_server.base_url}/docs/assets/VENDORED.md", timeout=30).status_code == 404
    assert httpx.get(f"{docs_server.base_url}/docs/assets/..%2Fpages.py", timeout=30).status_code == 404


def test_api_docs_off_answers_404(tmp_path):
    running = RunningServer(data_dir=tmp_path, catalog_url=None, extra_env={"DATAGROVE_API_DOCS": "false"})
    running.start()
    try:
        for path in ("/openapi.json", "/docs", "/docs/assets/swagger-ui.css"):
            response = httpx.get(f"{running.base_url}{path}", timeout=30)
            assert response.status_code == 404, path
            assert response.json()["code"] == "http_error"
        assert httpx.get(f"{running.base_url}/health", timeout=30).status_code == 200
    finally:
        running.stop()


def test_every_example_fits_its_schema(document):
    """The examples are what a reader copies: each must be what the operation takes or gives."""
    wrong = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            media = [*op.get("requestBody", {}).get("content", {}).items()]
            for status, response in op["responses"].items():
                media += [(f"{status} {kind}", m) for kind, m in response.get("content", {}).items()]
            for where, m in media:
                if m.get("example") is None or m["schema"].get("type") == "string":
                    continue  # a CSV or gzip body: text, not JSON
                # The document as the root, so that the schema's #/components/... references resolve.
                validator = Draft202012Validator({"$ref": "#/example", "example": m["schema"], **document})
                for error in validator.iter_errors(m["example"]):
                    wrong.append(f"{method.upper()} {path} {where}: {error.message}")
    assert wrong == []


def test_the_users_password_is_described_as_write_only(document):
    user_write = document["components"]["schemas"]["UserWrite"]["properties"]["password"]
    assert user_write["writeOnly"] is True
    user_read = document["components"]["schemas"].get("User", {}).get("properties", {})
    assert "password" not in user_read
