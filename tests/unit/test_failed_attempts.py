"""Failed authentications against a real SQLite catalog: counted per subject and per address,
refused at the limits with the time to wait, and the API's apart from the web sign-in's."""

from __future__ import annotations

from pathlib import Path

import pytest

from datagrove.catalog.audit import AuditCatalog
from datagrove.catalog.auth_failures import AuthFailureCatalog
from datagrove.catalog.database import make_engine, migrate
from datagrove.catalog.permissions import PermissionCatalog
from datagrove.errors import TooManyRequests
from datagrove.services.access import AccessControl
from datagrove.services.audit import AuditLog
from datagrove.services.failed_attempts import ApiAttemptLimits, AttemptLimits, FailedAttempts

API = ApiAttemptLimits(per_client=2, per_address=3, window_seconds=60)
WEB = AttemptLimits(
    attempt="web sign-in",
    failures="sign-ins",
    object_type="USER",
    per_subject=2,
    per_address=3,
    window_seconds=60,
    subject_limit="sign_in_max_failures",
    address_limit="sign_in_max_failures_per_address",
)


@pytest.fixture
def attempts(tmp_path: Path) -> FailedAttempts:
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    migrate(engine)
    audit = AuditLog(
        catalog=AuditCatalog(engine), access=AccessControl(permissions=PermissionCatalog(engine))
    )
    return FailedAttempts(failures=AuthFailureCatalog(engine), audit=audit, keep_seconds=60)


def test_a_subject_at_its_limit_is_refused_naming_it_and_others_are_not(attempts: FailedAttempts):
    token = API.token_endpoint
    for address in ("10.0.0.1", "10.0.0.2"):
        attempts.failed(token, subject="oauth client a", source_address=address)
    with pytest.raises(TooManyRequests) as refused:
        attempts.refuse_when_limited(token, subject="oauth client a", source_address="10.0.0.3")
    assert refused.value.details["limit"] == "auth_max_failures_per_client"
    assert 59 <= refused.value.details["retryAfterSeconds"] <= 60
    attempts.refuse_when_limited(token, subject="oauth client b", source_address="10.0.0.3")


def test_an_address_at_its_limit_is_refused_whatever_the_subject(attempts: FailedAttempts):
    token = API.token_endpoint
    for n in range(3):
        attempts.failed(token, subject=f"oauth client {n}", source_address="10.0.0.1")
    with pytest.raises(TooManyRequests) as refused:
        attempts.refuse_when_limited(token, subject="oauth client new", source_address="10.0.0.1")
    assert refused.value.details["limit"] == "auth_max_failures_per_address"


def test_the_apis_failures_and_the_web_sign_ins_are_counted_apart(attempts: FailedAttempts):
    for n in range(3):
        attempts.failed(API.token_endpoint, subject=f"oauth client {n}", source_address="10.0.0.1")
    attempts.refuse_when_limited(WEB, subject="ann@example.com", source_address="10.0.0.1")
    for n in range(3):
        attempts.failed(WEB, subject=f"user{n}@example.com", source_address="10.0.0.2")
    attempts.refuse_when_limited(API.token_endpoint, subject="oauth client x", source_address="10.0.0.2")
    with pytest.raises(TooManyRequests):
        attempts.refuse_when_limited(WEB, subject="ann@example.com", source_address="10.0.0.2")


def test_a_developer_token_reaching_the_limit_blocks_the_address_in_this_process(attempts: FailedAttempts):
    tokens = API.developer_tokens
    attempts.refuse_when_blocked(tokens, source_address="10.0.0.1")
    attempts.token_failed(tokens, source_address="10.0.0.1")
    attempts.token_failed(tokens, source_address="10.0.0.1")
    with pytest.raises(TooManyRequests):
        attempts.token_failed(tokens, source_address="10.0.0.1")  # the third reaches the limit
    with pytest.raises(TooManyRequests) as blocked:
        attempts.refuse_when_blocked(tokens, source_address="10.0.0.1")
    assert blocked.value.details["limit"] == "auth_max_failures_per_address"
    attempts.refuse_when_blocked(tokens, source_address="10.0.0.2")


def test_forgetting_a_subject_clears_its_failures(attempts: FailedAttempts):
    for _ in range(2):
        attempts.failed(WEB, subject="ann@example.com", source_address="10.0.0.1")
    with pytest.raises(TooManyRequests):
        attempts.refuse_when_limited(WEB, subject="ann@example.com", source_address="10.0.0.2")
    attempts.forget(WEB, "ann@example.com")  # she signed in
    attempts.refuse_when_limited(WEB, subject="ann@example.com", source_address="10.0.0.2")
