"""API fuzzing from the document: schemathesis calls every operation of /openapi.json on a real
server with generated requests (within the schema and outside it) and checks that no answer is a
5xx, and that every answer's status, Content-Type and body are the ones the document gives.

Two stages: schemathesis's runner with the document's examples and its coverage phase (boundary
and out-of-schema values, with ids that mostly name nothing), then generated requests aimed at one
real dataset, stream, execution, user, group, policy, account, version and token.

The server is the fuzzer's own (a fresh data directory), so destructive operations only destroy
what the fuzzer made. It calls with an OAuth token of the bootstrap admin: a fuzzed revoke of a
developer token cannot lock it out, and the services refuse to delete or demote the caller.
Examples are bounded and derandomized, so a run is repeatable and takes a few minutes.
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.server import RunningServer

EXAMPLES_PER_OPERATION = 10
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    # Report the first failing request as it is; shrinking it would cost many more requests.
    phases=[Phase.explicit, Phase.generate],
)


@schemathesis.serializer("application/gzip")
def gzip_serializer(_ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """A gzip body: the generated text, compressed (the document describes it as gzip of CSV)."""
    text = value if isinstance(value, (str, bytes)) else json.dumps(value)
    return gzip.compress(text.encode() if isinstance(text, str) else text)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(data_dir=tmp_path_factory.mktemp("fuzz"), catalog_url=None).start()
    yield running
    running.stop()


def operations(server: RunningServer) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    schema.config.update(base_url=server.base_url, request_timeout=60)
    schema.config.generation.update(with_security_parameters=False)
    return [result.ok() for result in schema.get_all_operations()]


def credentials(server: RunningServer) -> dict[str, dict[str, str]]:
    basic = base64.b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
    return {
        "token": {"Authorization": f"bearer {server.oauth_token()}"},
        "client": {"Authorization": f"Basic {basic}"},
    }


def modes(operation: schemathesis.APIOperation) -> list[GenerationMode]:
    """Both modes, but no negative one where nothing can be out of the schema (a path of strings)."""
    inputs = [*operation.query, *operation.headers, *operation.path_parameters]
    malformable = operation.body or any(
        p.definition.get("schema", {}).get("type") != "string" for p in inputs
    )
    return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if malformable else [GenerationMode.POSITIVE]


def real_resources(server: RunningServer) -> dict[str, str]:
    """One of each thing a path can name, with data in it: the second pass aims the generated
    bodies and parameters at these instead of at ids that name nothing."""
    with server.client() as http:
        schema = {"columns": [{"type": "STRING", "name": "city"}, {"type": "LONG", "name": "sales"}]}
        stream = http.post("/v1/streams", json={"dataSet": {"name": "fuzz", "schema": schema}}).json()
        dataset_id, stream_id = stream["dataSet"]["id"], stream["id"]
        http.put(f"/v1/datasets/{dataset_id}/data", content="Berlin,120\nLisbon,75\n").raise_for_status()
        execution = http.post(f"/v1/streams/{stream_id}/executions", json={}).json()
        http.put(
            f"/v1/streams/{stream_id}/executions/{execution['id']}/part/1", content="Porto,3\n"
        ).raise_for_status()
        user = http.post("/v1/users", json={"name": "Fuzz", "email": "fuzz@example.com"}).json()
        group = http.post("/v1/groups", json={"name": "fuzzers"}).json()
        policy = http.post(
            f"/v1/datasets/{dataset_id}/policies",
            json={"name": "p", "filters": [{"column": "city", "values": ["Berlin"], "operator": "EQUALS"}]},
        ).json()
        account = http.post(
            "/v1/accounts", json={"name": "a", "type": {"id": "postgresql", "properties": {"host": "h"}}}
        ).json()
        token = http.post("/api/data/v1/accesstokens", json={"name": "fuzz"}).json()
        version = http.get(f"/v1/datasets/{dataset_id}/versions").json()[0]["version"]
    return {
        "dataset_id": dataset_id,
        "stream_id": str(stream_id),
        "execution_id": str(execution["id"]),
        "upload_id": str(execution["id"]),
        "part_id": "2",
        "user_id": str(user["id"]),
        "group_id": str(group["id"]),
        "policy_id": str(policy["id"]),
        "version_id": version,
        "id": account["id"],
        "token_id": str(token["id"]),
    }


def fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    headers: dict[str, str],
    path: dict[str, str] | None = None,
) -> None:
    """Raises at the first request whose answer breaks a check."""

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=list(CHECKS))

    run()


def coverage_run(server: RunningServer, token: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """schemathesis's own runner over every operation but the token endpoint: the document's
    examples, then its coverage phase (boundary values and values outside the schema of every
    parameter and body, chosen systematically)."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{server.base_url}/openapi.json",
        *("--header", f"Authorization: bearer {token}"),
        *("--phases", "examples,coverage"),
        *("--checks", ",".join(check.__name__ for check in CHECKS)),
        *("--max-examples", str(EXAMPLES_PER_OPERATION)),
        "--generation-deterministic",
        *("--exclude-path", "/oauth/token"),
        *("--request-timeout", "60"),
        "--no-color",
    ]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=900, check=False)


def test_every_operation_answers_as_documented(fuzz_server, tmp_path):
    keys = credentials(fuzz_server)
    failures = []
    run = coverage_run(fuzz_server, keys["token"]["Authorization"].split()[1], tmp_path)
    if run.returncode != 0:
        failures.append(
            f"schemathesis run (exit {run.returncode}):\n{run.stdout[-12000:]}\n{run.stderr[-2000:]}"
        )
    all_operations = operations(fuzz_server)
    # The token endpoint, with client credentials, generated within its schema and outside it.
    for operation in (op for op in all_operations if op.path == "/oauth/token"):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, keys["client"])
            except (Exception, BaseExceptionGroup) as exc:  # every run goes on; all failures are listed
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    # Then generated requests at real things, deletions last so that the others find what they name.
    real = real_resources(fuzz_server)
    for operation in sorted(all_operations, key=lambda op: op.method.upper() == "DELETE"):
        path = {p.name: real[p.name] for p in operation.path_parameters if p.name in real}
        if not path:
            continue
        try:
            fuzz(operation, GenerationMode.POSITIVE, keys["token"], path)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label} (positive, on real resources): {exc}")
    assert failures == [], "\n\n".join(failures)
