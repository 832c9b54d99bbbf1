"""The start-up warm-up runs the real data path (conversion, translation, sandboxed query) and
leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from datagrove.tables.warmup import warm_up


def test_warm_up_runs_the_data_path_and_removes_its_scratch_files(tmp_path: Path) -> None:
    scratch = tmp_path / "it's a data dir"  # a quote in the path must not break the SQL
    scratch.mkdir()

    answer = warm_up(scratch)

    assert sorted(answer.to_pylist(), key=str) == sorted(
        [{"c_string": 'a "b"', "COUNT(*)": 1}, {"c_string": None, "COUNT(*)": 1}], key=str
    )
    assert list(scratch.iterdir()) == []
