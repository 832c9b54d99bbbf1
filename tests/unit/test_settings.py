"""Every setting is documented, and settings come from DATAGROVE_* variables with CLI flags on top."""

from __future__ import annotations

from pathlib import Path

from datagrove.settings import Settings, load

DOCS = Path(__file__).parents[2] / "docs" / "settings.md"


def test_every_setting_is_listed_in_the_docs():
    documented = DOCS.read_text()
    missing = [name for name in Settings.model_fields if f"`DATAGROVE_{name.upper()}`" not in documented]
    assert missing == []


def test_every_setting_has_a_help_line():
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_environment_is_read_and_flags_override_it(monkeypatch):
    monkeypatch.setenv("DATAGROVE_PORT", "9001")
    monkeypatch.setenv("DATAGROVE_QUERY_MAX_ROWS", "5")
    assert load().port == 9001
    assert load(port=9002).port == 9002
    assert load(port=None).query_max_rows == 5


def test_the_default_catalog_is_sqlite_in_the_data_directory(tmp_path):
    settings = load(data_dir=tmp_path)
    assert settings.resolved_catalog_url == f"sqlite:///{tmp_path.resolve() / 'catalog.db'}"
