"""The files a read needs while it runs are out of reach of the reclaiming of abandoned uploads."""

from __future__ import annotations

import os
from pathlib import Path

from datagrove.tables.store import TableStore


def store(tmp_path: Path) -> TableStore:
    return TableStore(
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_dir=tmp_path / "warehouse",
        staging_dir=tmp_path / "staging",
    )


def test_a_long_read_keeps_its_files_while_an_abandoned_upload_loses_its(tmp_path: Path):
    tables = store(tmp_path)
    with tables.read_area() as reading, tables.staging_area() as uploading:
        for area in (reading, uploading):
            (area / "file").write_bytes(b"x")
            os.utime(area / "file", (0, 0))  # untouched for decades
        assert tables.reclaim_abandoned_uploads(idle_seconds=60) == 1
        assert (reading / "file").exists()
        assert not uploading.exists()


def test_a_starting_server_clears_what_reads_of_the_last_one_left(tmp_path: Path):
    tables = store(tmp_path)
    left = tmp_path / "staging" / "reads" / "left-by-a-crash"
    left.mkdir(parents=True)
    tables.clear_read_areas()
    assert not left.exists()
    with tables.read_area() as area:
        assert area.exists()
