"""Password hashing: Argon2id hashes only, a check that never raises, and the length rule."""

from __future__ import annotations

import pytest

from datagrove.errors import BadRequest
from datagrove.services.passwords import acceptable, hash_password, matches


def test_a_password_is_stored_as_a_salted_argon2id_hash() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$argon2id$") and "correct horse" not in first
    assert first != second  # a new salt each time
    assert matches(first, "correct horse") and matches(second, "correct horse")


@pytest.mark.parametrize("stored", [None, "", "not a hash", "$argon2id$v=19$m=65536,t=3,p=4$broken"])
def test_a_missing_or_broken_hash_matches_nothing(stored: str | None) -> None:
    assert not matches(stored, "correct horse")


def test_a_wrong_password_does_not_match() -> None:
    assert not matches(hash_password("correct horse"), "correct horsE")


@pytest.mark.parametrize("password", ["", "seven77", "x" * 1025, None, 12345678])
def test_passwords_outside_the_rule_are_refused(password: object) -> None:
    with pytest.raises(BadRequest, match="password"):
        acceptable(password)
    assert acceptable("x" * 8) == "x" * 8 and acceptable("x" * 1024) == "x" * 1024
