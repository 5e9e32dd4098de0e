"""The parts of the multi-database replicator that need no S3: which
databases its sources name (fleet_sources.py), the coverage records that
autostart reads (fleet_coverage.py), and how uploads are counted
(fleet_metrics.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bottomless import fleet_coverage
from bottomless.config import Config
from bottomless.fleet_config import load
from bottomless.fleet_coverage import Coverage, Folder, covering, publish, withdraw
from bottomless.fleet_metrics import upload_kind
from bottomless.fleet_sources import Sources
from bottomless.generation import new_generation
from bottomless.layout import batch_key, lease_key, merged_batch_key, meta_key, snapshot_key


def make_db(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    return path


def test_a_folder_plan_names_each_database_by_its_relative_path(tmp_path: Path) -> None:
    a, b = make_db(tmp_path / "a.db"), make_db(tmp_path / "acme" / "b.db")
    (tmp_path / "notes.db").write_text("not a database")
    plan = Sources.of_dir(str(tmp_path), "*.db", True, Config()).plan()
    assert {p: w.name for p, w in plan.databases.items()} == {str(a): "a.db", str(b): "acme%2Fb.db"}
    assert all(w.config.database_id == w.name for w in plan.databases.values())
    assert "not an SQLite database" in plan.skipped[str(tmp_path / "notes.db")]
    assert str(tmp_path / "acme") in plan.folders
    # A rescan takes what it knew as it was, and drops what is gone.
    a.unlink()
    again = Sources.of_dir(str(tmp_path), "*.db", True, Config()).plan(plan.databases)
    assert list(again.databases) == [str(b)]
    assert again.databases[str(b)] is plan.databases[str(b)]


def test_a_path_entry_wins_over_a_folder_and_names_never_collide(tmp_path: Path) -> None:
    make_db(tmp_path / "one" / "app.db")
    make_db(tmp_path / "two" / "app.db")
    main = make_db(tmp_path / "one" / "main.db")
    config = tmp_path / "fleet.yml"
    config.write_text(
        f"dbs:\n  - path: {main}\n    database_id: primary\n  - dir: {tmp_path / 'one'}\n  - dir: {tmp_path / 'two'}\n"
    )
    plan = Sources.of_config(load(config, env={})).plan()
    names = {p: w.name for p, w in plan.databases.items()}
    assert names[str(main)] == "primary"
    assert names[str(tmp_path / "one" / "app.db")] == "app.db"
    assert str(tmp_path / "two" / "app.db") not in names
    assert "already used by" in plan.skipped[str(tmp_path / "two" / "app.db")]


def test_coverage_of_folders_and_files(tmp_path: Path) -> None:
    folder = Folder(str(tmp_path), "*.db", recursive=False)
    assert folder.covers(str(tmp_path / "x.db"))
    assert not folder.covers(str(tmp_path / "x.sqlite"))
    assert not folder.covers(str(tmp_path / "sub" / "x.db"))
    deep = Folder(str(tmp_path), "*.db", recursive=True)
    assert deep.covers(str(tmp_path / "sub" / "x.db"))
    assert not deep.covers(str(tmp_path / "x.db-bottomless" / "y.db"))
    assert not deep.covers(str(tmp_path.parent / "elsewhere.db"))
    files = Coverage(1, files=(str(tmp_path / "named.db"),))
    assert files.covers(str(tmp_path / "named.db")) and not files.covers(str(tmp_path / "other.db"))


def test_a_live_record_covers_and_a_dead_or_withdrawn_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fleet_coverage.RUNTIME_DIR_VAR, str(tmp_path / "run"))
    db = str(tmp_path / "x.db")
    # Another live process (ours is never taken for a fleet: it is asking).
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        publish(Coverage(live.pid, (Folder(str(tmp_path)),)))
        found = covering(db)
        assert found is not None and found.pid == live.pid
        withdraw(live.pid)
        assert covering(db) is None
        publish(Coverage(live.pid, (Folder(str(tmp_path)),)))
    finally:
        live.kill()
        live.wait()
    assert covering(db) is None, "a record whose process is gone is ignored"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own a record as another user")
def test_a_record_of_an_untrusted_user_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv(fleet_coverage.RUNTIME_DIR_VAR, str(run))
    db = make_db(tmp_path / "x.db")
    record = run / "fleet-1.json"
    record.write_text(
        json.dumps({"pid": 1, "folders": [{"dir": str(tmp_path), "pattern": "*.db", "recursive": False}], "files": []})
    )
    os.chown(record, 65534, 65534)  # nobody, who neither owns the database nor is root
    assert covering(str(db)) is None
    os.chown(record, 0, 0)
    assert covering(str(db)) is not None


def test_uploads_are_counted_by_kind() -> None:
    gen = new_generation()
    assert upload_kind(batch_key("a.db", gen, 1, 5, 1700000000, "zstd")) == "batch"
    assert upload_kind(merged_batch_key("a.db", gen, 1, 9, 1700000000, "zstd")) == "merged"
    assert upload_kind(snapshot_key("a.db", gen, "zstd")) == "snapshot"
    assert upload_kind(lease_key("a.db")) == "lease"
    assert upload_kind(meta_key("a.db", gen)) == "meta"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_the_watcher_reports_spool_writes_and_new_databases_but_not_other_files(tmp_path: Path) -> None:
    import threading

    from bottomless.fleet_watch import Watcher

    spools: list[str] = []
    folder_events = threading.Event()
    spooled = threading.Event()

    def on_spool(db: str) -> None:
        spools.append(db)
        spooled.set()

    watcher = Watcher(on_spool, folder_events.set, lambda: None)
    try:
        assert watcher.available
        known = str(tmp_path / "known.db")
        watcher.judge_names(lambda p: p == known, Folder(str(tmp_path)).covers)
        watcher.watch_folder(str(tmp_path))
        (tmp_path / "known.db-bottomless").mkdir()
        watcher.watch_database(known)
        assert not folder_events.wait(0.5), "the side folder of a known database is no news"
        (tmp_path / "app.log").write_text("busy\n" * 100)
        Path(f"{known}-wal").write_bytes(b"frames")
        assert not folder_events.wait(0.5), "a file the sources would not ship, or a known one's WAL, is no news"
        (tmp_path / "known.db-bottomless" / "spool").write_bytes(b"record")
        assert spooled.wait(5) and spools[0] == known
        (tmp_path / "new.db").write_bytes(b"SQLite format 3\0")
        assert folder_events.wait(5), "a new file the sources would ship is news"
    finally:
        watcher.close()
