"""Authentication: the token endpoint in every client's form, bearer and developer tokens, 401s."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt

from tests.support.server import RunningServer


def payload(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=="))


def test_post_with_a_form_body_answers_a_jwt_carrying_exp(server: RunningServer):
    response = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "data user"},
        auth=(server.client_id, server.client_secret),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["scope"] == "data user"
    assert {"expires_in", "customer", "userId", "access_token"} <= body.keys()
    claims = payload(body["access_token"])
    assert claims["exp"] > time.time() + 60


def test_get_with_query_parameters_as_the_node_sdk_sends(server: RunningServer):
    response = httpx.get(
        f"{server.base_url}/oauth/token?scope=user%20data&grant_type=client_credentials",
        auth=(server.client_id, server.client_secret),
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "data user"


def test_java_form_with_a_literal_space_and_no_scope_means_all_client_scopes(server: RunningServer):
    java = httpx.post(
        f"{server.base_url}/oauth/token",
        content=b"grant_type=client_credentials&scope=user data",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        auth=(server.client_id, server.client_secret),
    )
    assert java.json()["scope"] == "data user"
    everything = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(server.client_id, server.client_secret),
    )
    assert set(everything.json()["scope"].split()) == {"data", "user", "audit", "dashboard", "account"}


def test_wrong_client_secret_is_401_with_a_json_body(server: RunningServer):
    response = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(server.client_id, "wrong"),
    )
    assert response.status_code == 401
    assert response.json()["status"] == 401 and "toe" in response.json()


def test_bearer_is_accepted_in_either_case(server: RunningServer):
    token = server.oauth_token()
    for scheme in ("bearer", "Bearer"):
        response = httpx.get(f"{server.base_url}/v1/datasets", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200, response.text


def test_developer_token_header_is_accepted(server: RunningServer):
    with server.client() as client:
        assert client.get("/v1/datasets").status_code == 200


def test_missing_unknown_or_expired_credentials_are_401(server: RunningServer):
    url = f"{server.base_url}/v1/datasets"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "bearer not-a-jwt"}).status_code == 401
    assert httpx.get(url, headers={"X-DOMO-Developer-Token": "DDCIunknown"}).status_code == 401
    forged = jwt.encode(
        {"sub": "1", "client_id": server.client_id, "exp": int(time.time()) + 60}, "guess", algorithm="HS256"
    )
    assert httpx.get(url, headers={"Authorization": f"bearer {forged}"}).status_code == 401


def test_tokens_survive_a_server_restart(server: RunningServer):
    token = server.oauth_token()
    server.stop()
    server.start()
    response = httpx.get(f"{server.base_url}/v1/datasets", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


def test_health_needs_no_credentials(server: RunningServer):
    assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok"}


def test_the_server_warms_up_its_data_path_after_starting(server: RunningServer):
    deadline = time.monotonic() + 60
    while '"warmed up"' not in server.log_path.read_text():
        assert time.monotonic() < deadline, "no warm-up in the server log"
        time.sleep(0.2)
    assert "warm-up failed" not in server.log_path.read_text()
