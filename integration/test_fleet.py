"""The multi-database replicator (``bottomless-cli replicate --dir/--config``)
through the real CLI against the suite's S3 server: a folder of 200
databases written by several processes, databases added and deleted while
it runs, a kill -9 mid-load and a restart, one database it cannot read,
SIGHUP reloading its configuration, SIGTERM, its metrics, and a shell's
autostart joining it. Afterwards every database restores with every
committed transaction and passes the integrity check."""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bottomless.lock import is_locked
from bottomless.restore import restore
from bottomless.s3 import S3Store
from bottomless.side_files import SideFolder
from bottomless.tenant_names import name_of
from conftest import integrity, read_rows, remove_local, run_shell
from fleet_helpers import (
    FleetProcess,
    Writers,
    as_nobody,
    db_series,
    free_port,
    scrape,
    scrape_or_nothing,
    shipped,
    wait_until,
)

DBS = 200
WRITERS = 4
COMMITS = 250  # per writer


@pytest.fixture(autouse=True)
def fleets() -> Iterator[None]:
    """No replicator a test started outlives it, whatever failed."""
    yield
    FleetProcess.kill_all()


def fleet_env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **cli_env,
        "LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS": "0.5",
        "BOTTOMLESS_RUNTIME_DIR": str(tmp_path / "run"),
        "BOTTOMLESS_LOG": "info",
    }


def restored_ids(store: S3Store, name: str, target: Path) -> set[int]:
    restore(store, name, str(target))
    assert integrity(target) == "ok", f"{name} restored with a failed integrity check"
    return {row[0] for row in read_rows(target, "SELECT id FROM t")}


def assert_restores_exactly(store: S3Store, folder: Path, committed: dict[str, set[int]], out: Path) -> None:
    out.mkdir(exist_ok=True)
    for i, (db, ids) in enumerate(sorted(committed.items())):
        name = name_of(Path(db).relative_to(folder))
        got = restored_ids(store, name, out / f"{i}.db")
        missing = ids - got
        assert not missing, f"{db}: {len(missing)} committed transaction(s) missing after restore, e.g. {min(missing)}"
        assert got == ids, f"{db}: the restore holds rows nobody committed"


def test_a_folder_of_200_databases_ships_through_a_kill_and_restart(
    cli_env: dict[str, str], store: S3Store, tmp_path: Path
) -> None:
    env = fleet_env(cli_env, tmp_path)
    folder = tmp_path / "tenants"
    (folder / "acme").mkdir(parents=True)
    dbs = [folder / (f"acme/t{i:03}.db" if i % 10 == 0 else f"t{i:03}.db") for i in range(DBS)]
    port = free_port()
    args = ("--dir", str(folder), "--recursive", "--metrics-addr", f"127.0.0.1:{port}")
    fleet = FleetProcess(env, tmp_path / "fleet.log", *args)
    # The databases are created while it runs: every one is picked up as new.
    writers = Writers(env, [dbs[i::WRITERS] for i in range(WRITERS)], COMMITS, seed=17, pause=0.02)
    wait_until("a third of the load", lambda: writers.total() >= WRITERS * COMMITS // 3, 120, fleet)
    fleet.kill()  # kill -9 mid-load
    fleet = FleetProcess(env, tmp_path / "fleet.log", *args)
    writers.wait()

    # A database added and one deleted while it runs.
    added = folder / "acme" / "late.db"
    late = Writers(env, [[added]], 20, seed=99)
    late.wait()
    deleted = dbs.pop(5)
    remove_local(deleted)
    committed = {db: ids for db, ids in {**writers.committed, **late.committed}.items() if db != str(deleted)}
    assert len(committed) == DBS, "every database got some commits"

    unshipped = lambda: [Path(db).name for db in committed if not shipped(Path(db))]  # noqa: E731
    wait_until("every spool shipped", lambda: not unshipped(), 180, fleet, detail=lambda: f"(not: {unshipped()})")
    names = {name_of(Path(db).relative_to(folder)) for db in committed}
    deleted_name = name_of(deleted.relative_to(folder))

    def metrics_settled() -> bool:
        series = db_series(scrape_or_nothing(port), "bottomless_db_lag_seconds")
        return series == names

    wait_until("the metrics to list exactly the databases there", metrics_settled, 30, fleet)
    metrics = scrape(port)
    assert metrics["bottomless_databases"][()] == DBS
    assert deleted_name not in db_series(metrics, "bottomless_db_unshipped_bytes")
    late_name = name_of(added.relative_to(folder))
    assert metrics["bottomless_db_shipped_bytes_total"][(("database", late_name), ("kind", "snapshot"))] > 0
    assert metrics["bottomless_batches_total"][()] >= 1
    assert metrics["bottomless_requests_total"][(("kind", "PUT"),)] > DBS
    assert all(v == 0 for v in metrics["bottomless_db_unshipped_bytes"].values())

    assert fleet.stop() == 0, fleet.output()
    assert_restores_exactly(store, folder, committed, tmp_path / "restored")


def test_sighup_adds_and_removes_databases_and_keeps_a_good_config(
    cli_env: dict[str, str], store: S3Store, tmp_path: Path
) -> None:
    env = fleet_env(cli_env, tmp_path)
    a, b, c = (tmp_path / f"{n}.db" for n in "abc")
    Writers(env, [[a, b, c]], 30, seed=1).wait()
    config = tmp_path / "fleet.yml"
    port = free_port()

    def write_config(*dbs: Path) -> None:
        config.write_text("dbs:\n" + "".join(f"  - path: {db}\n    database_id: id-{db.stem}\n" for db in dbs))

    write_config(a, b)
    fleet = FleetProcess(env, tmp_path / "fleet.log", "--config", str(config), "--metrics-addr", f"127.0.0.1:{port}")
    served = lambda: db_series(scrape_or_nothing(port), "bottomless_db_lag_seconds")  # noqa: E731
    wait_until("a and b replicated", lambda: served() == {"id-a", "id-b"} and shipped(a) and shipped(b), 60, fleet)

    write_config(b, c)
    fleet.signal(signal.SIGHUP)
    wait_until("c added and a dropped", lambda: served() == {"id-b", "id-c"} and shipped(c), 60, fleet)
    assert not is_locked(SideFolder.of(a).path), "a dropped database is let go"

    config.write_text("dbs:\n  - path: x.db\n    batch_interval: 2\n")
    fleet.signal(signal.SIGHUP)
    wait_until("the bad file reported", lambda: "configuration not reloaded" in fleet.output(), 30, fleet)
    assert "batch_interval" in fleet.output() and ":3:" in fleet.output(), "the error names the line and key"
    assert served() == {"id-b", "id-c"}, "a bad file keeps the configuration in use"

    # b keeps shipping without a restart.
    more = Writers(env, [[b]], 10, seed=2)
    more.wait()
    wait_until("b's new commits shipped", lambda: shipped(b), 30, fleet)
    assert fleet.stop() == 0, fleet.output()
    assert restored_ids(store, "id-b", tmp_path / "b-restored.db") == {r[0] for r in read_rows(b, "SELECT id FROM t")}
    assert restored_ids(store, "id-c", tmp_path / "c-restored.db") == {r[0] for r in read_rows(c, "SELECT id FROM t")}


@pytest.mark.skipif(not as_nobody(), reason="needs root to run the replicator as another user")
def test_an_unreadable_database_is_reported_and_the_others_ship(cli_env: dict[str, str], store: S3Store) -> None:
    # Under /tmp: the test's own folder is not open to other users.
    root = Path(tempfile.mkdtemp(prefix="fleet-nobody-"))
    try:
        root.chmod(0o755)
        env = {**fleet_env(cli_env, root), "HOME": str(root)}
        folder = root / "dbs"
        folder.mkdir()
        dbs = [folder / f"{n}.db" for n in ("ok1", "locked", "ok2")]
        writers = Writers(env, [dbs], 30, seed=3)
        writers.wait()
        (root / "run").mkdir()
        for path in [root / "run", folder, *folder.rglob("*")]:
            shutil.chown(path, "nobody", "nogroup")
        dbs[1].chmod(0o000)
        port = free_port()
        args = ("--dir", str(folder), "--metrics-addr", f"127.0.0.1:{port}")
        fleet = FleetProcess(env, root / "fleet.log", *args, user=as_nobody())
        wait_until("the readable ones shipped", lambda: shipped(dbs[0]) and shipped(dbs[2]), 60, fleet)
        wait_until("the unreadable one reported", lambda: "locked.db: permission denied" in fleet.output(), 30, fleet)
        metrics = scrape(port)
        assert metrics["bottomless_skipped_files"][()] == 1
        assert metrics["bottomless_databases"][()] == 2
        assert fleet.alive()
        assert fleet.stop() == 0, fleet.output()
        for db in (dbs[0], dbs[2]):
            assert restored_ids(store, db.name, root / f"{db.name}.restored") == writers.committed[str(db)]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_shell_opening_a_covered_database_starts_no_replicator(
    cli_env: dict[str, str], store: S3Store, tmp_path: Path, sqlite3_shell: str
) -> None:
    from bottomless._paths import extension_path

    env = fleet_env(cli_env, tmp_path)
    folder = tmp_path / "tenants"
    folder.mkdir()
    fleet = FleetProcess(env, tmp_path / "fleet.log", "--dir", str(folder))
    wait_until("the coverage record", lambda: any((tmp_path / "run").glob("fleet-*.json")), 30, fleet)
    shell_env = {**env, "LIBSQL_BOTTOMLESS_AUTOSTART": "1"}
    script = (
        f".load {extension_path()}\n.open file:new.db?vfs=bottomless\nPRAGMA journal_mode=wal;\n"
        "CREATE TABLE t(id INTEGER PRIMARY KEY);\n" + "".join(f"INSERT INTO t VALUES ({i});\n" for i in range(1, 11))
    )
    run_shell(sqlite3_shell, script, shell_env, cwd=folder)
    db = folder / "new.db"
    wait_until("the fleet shipping the shell's commits", lambda: shipped(db), 60, fleet)
    side = SideFolder.of(db)
    holder = int(side.lock.read_text().split()[0])
    assert holder == fleet.proc.pid, "the fleet holds the database's replicator lock"
    assert not side.log.exists(), "no background replicator was started for it"
    assert fleet.stop() == 0, fleet.output()
    assert restored_ids(store, "new.db", tmp_path / "restored.db") == set(range(1, 11))


def test_sigterm_ships_what_is_pending_and_exits_0(cli_env: dict[str, str], store: S3Store, tmp_path: Path) -> None:
    # Batches due only in a minute: what reaches S3 is what shutdown shipped.
    env = {**fleet_env(cli_env, tmp_path), "LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS": "60"}
    folder = tmp_path / "dbs"
    folder.mkdir()
    dbs = [folder / f"{n}.db" for n in ("one", "two")]
    first = Writers(env, [dbs], 4, seed=5)
    first.wait()
    fleet = FleetProcess(env, tmp_path / "fleet.log", "--dir", str(folder))
    wait_until("both started", lambda: fleet.output().count("new generation") == 2, 60, fleet)
    more = Writers(env, [dbs], 20, seed=6)
    more.wait()
    assert not any(shipped(db) for db in dbs), "nothing is due yet"
    assert fleet.stop() == 0, fleet.output()
    for db in dbs:
        assert shipped(db), f"{db.name}: shutdown left commits in the spool"
        want = first.committed[str(db)] | more.committed[str(db)]
        assert restored_ids(store, db.name, tmp_path / f"{db.name}.restored") == want
