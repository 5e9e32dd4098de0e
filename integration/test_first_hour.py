"""What a new user meets in the first hour, through the real CLI and shell:
each mistake is one clear line (no traceback), exits non-zero, creates
nothing and loses nothing; and the obvious spellings (a path for -d) work."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import bottomless
from bottomless import catalog
from bottomless.config import Config
from bottomless.generation import created_at
from bottomless.s3 import S3Store
from bottomless.side_files import SideFolder
from bottomless.spool import spool_dir
from conftest import dump, integrity, read_rows, remove_local, run_cli
from test_bad_input import make_ro, read_only_argv

KEY = base64.b64encode(bytes(range(32))).decode()


def one_clear_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The command failed with a message naming ``needles``, and no traceback."""
    assert proc.returncode != 0, f"exit 0:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, f"not exactly one error line:\n{proc.stderr}"
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def backed_up(db: Path, env: dict[str, str], rows: int = 3, **overrides: str) -> None:
    conn = bottomless.connect(str(db), config=Config.from_env({**env, **overrides}), isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS t(x)")
    for i in range(rows):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    conn.flush()
    conn.close()


def shell(
    sqlite3_shell: str, db: Path, sql: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    script = f".load {bottomless.extension_path()}\n.open file:{db}?vfs=bottomless\n{sql}\n"
    return subprocess.run(
        [sqlite3_shell], input=script, env=env, capture_output=True, text=True, timeout=timeout, cwd=db.parent
    )


def autostart(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**env, "LIBSQL_BOTTOMLESS_AUTOSTART": "1", **extra}


def wait_until_unlocked(db: Path, timeout: float = 60) -> None:
    """Until no replicator holds the database's lock (it ships and exits)."""
    from bottomless.lock import is_locked

    deadline = time.monotonic() + timeout
    while is_locked(spool_dir(str(db))):
        assert time.monotonic() < deadline, "the replicator did not exit"
        time.sleep(0.1)


# ---- 5. an invalid bucket name -------------------------------------------------


def test_invalid_bucket_name_is_one_line_everywhere(
    tmp_path: Path, cli_env: dict[str, str], sqlite3_shell: str
) -> None:
    one_clear_line(run_cli(cli_env, "-b", "Bad_Bucket!", "ls", check=False), "'Bad_Bucket!'", "bucket name")
    bad = {**cli_env, "LIBSQL_BOTTOMLESS_BUCKET": "Bad_Bucket!"}
    db = tmp_path / "app.db"
    backed_up(db, cli_env)
    replicate = run_cli(bad, "-d", str(db), "replicate", "--exit-when-idle", check=False)
    one_clear_line(replicate, "LIBSQL_BOTTOMLESS_BUCKET")
    # Inside a sqlite3 session: said in the shell, not only in a log.
    proc = shell(sqlite3_shell, db, "INSERT INTO t VALUES (99);", autostart(bad))
    assert "LIBSQL_BOTTOMLESS_BUCKET" in proc.stderr and "not a valid S3 bucket name" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "ParamValidationError" not in proc.stderr, proc.stderr
    log = SideFolder.of(str(db)).log
    assert not log.exists() or "Traceback" not in log.read_text()
    assert read_rows(db, "SELECT count(*) FROM t") == [(4,)]  # the user's write happened


# ---- 6. a file that is not SQLite ------------------------------------------------


def test_replicate_refuses_a_text_file_and_creates_nothing(
    tmp_path: Path, cli_env: dict[str, str], sqlite3_shell: str
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping: milk, eggs\n" * 50)
    before = notes.read_bytes()
    for extra in (["--exit-when-idle"], []):
        proc = run_cli(cli_env, "-d", str(notes), "replicate", *extra, check=False, timeout=30)
        one_clear_line(proc, str(notes), "not a SQLite database")
        assert proc.stderr.count("not a SQLite database") == 1, proc.stderr
    # Opened through the VFS by a shell that starts a replicator.
    proc = shell(sqlite3_shell, notes, "SELECT * FROM sqlite_master;", autostart(cli_env))
    assert "not a SQLite database" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert notes.read_bytes() == before


# ---- 7 and 8. what the shell says when the replicator cannot start --------------


def test_shell_says_why_replication_does_not_start(tmp_path: Path, cli_env: dict[str, str], sqlite3_shell: str) -> None:
    db = tmp_path / "app.db"
    backed_up(db, cli_env)
    proc = shell(
        sqlite3_shell, db, "INSERT INTO t VALUES (7);", autostart(cli_env, LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS="-1")
    )
    assert "LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS: must be positive" in proc.stderr, proc.stderr
    assert "exit code 1" in proc.stderr and "status 256" not in proc.stderr, proc.stderr
    assert read_rows(db, "SELECT count(*) FROM t") == [(4,)]


# ---- 9. sync names the shipping replicator's problem ---------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sync_reports_the_replicators_error(tmp_path: Path, cli_env: dict[str, str], sqlite3_shell: str) -> None:
    db = tmp_path / "app.db"
    backed_up(db, cli_env)
    down = {**cli_env, "LIBSQL_BOTTOMLESS_ENDPOINT": f"http://127.0.0.1:{_free_port()}"}
    replicator = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
        env=down, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        written = shell(sqlite3_shell, db, "INSERT INTO t VALUES (9);", cli_env)
        assert written.returncode == 0, written.stderr
        time.sleep(2)  # the replicator has tried the endpoint by now
        proc = run_cli(down, "-d", str(db), "sync", "--timeout", "5", check=False)
        line = one_clear_line(proc)
        assert "is a replicator running" not in line, line
        assert "127.0.0.1" in line or "cannot reach" in line.lower(), line
    finally:
        replicator.terminate()
        replicator.wait(30)


# ---- 10. read-only directory, missing output directory -------------------------


def test_shell_in_a_read_only_directory_leaks_no_shell_noise(
    tmp_path: Path, cli_env: dict[str, str], sqlite3_shell: str
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    db = ro / "ro.db"
    plain = subprocess.run([sqlite3_shell, str(db), "CREATE TABLE t(x); INSERT INTO t VALUES (1);"], check=True)
    assert plain.returncode == 0
    make_ro(ro)
    script = f".load {bottomless.extension_path()}\n.open file:{db}?vfs=bottomless\nSELECT x FROM t;\n"
    argv = read_only_argv(ro, [sqlite3_shell])
    proc = subprocess.run(argv, input=script, env=autostart(cli_env), capture_output=True, text=True, timeout=60)
    ro.chmod(0o755)
    assert proc.stdout.split() == ["1"], proc.stderr
    assert "/bin/sh" not in proc.stderr and "Directory nonexistent" not in proc.stderr, proc.stderr
    assert "must be writable" in proc.stderr, proc.stderr
    assert "Errno" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in ro.iterdir()) == ["ro.db"]


def test_restore_into_a_missing_directory_names_it(tmp_path: Path, cli_env: dict[str, str]) -> None:
    backed_up(tmp_path / "app.db", cli_env)
    missing = tmp_path / "no" / "such"
    proc = run_cli(cli_env, "-d", "app.db", "restore", "-o", str(missing / "out.db"), check=False)
    line = one_clear_line(proc, str(missing), "does not exist")
    assert ".restore-" not in line, line
    assert not (tmp_path / "no").exists()


# ---- 11. -d given a path -------------------------------------------------------


def test_database_given_as_a_path(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "app.db"
    backed_up(db, cli_env, rows=5)
    source = dump(db)
    assert run_cli(cli_env, "-d", str(db), "ls").stdout.strip(), "ls by path listed nothing"
    assert "integrity check:    ok" in run_cli(cli_env, "-d", str(db), "verify").stdout
    remove_local(db)
    restored = run_cli(cli_env, "-d", str(db), "restore", cwd=tmp_path)
    assert str(db) in restored.stdout, restored.stdout
    assert dump(db) == source and integrity(db) == "ok"
    assert not (tmp_path / "app.db").exists()  # into the path, not the working directory
    # The bucket name comes from LIBSQL_BOTTOMLESS_DATABASE_ID when set, as for the replicator.
    other = tmp_path / "elsewhere.db"
    named = {**cli_env, "LIBSQL_BOTTOMLESS_DATABASE_ID": "app.db"}
    run_cli(named, "-d", str(other), "restore")
    assert dump(other) == source
    (gen,) = catalog.list_generations(store, "app.db")
    removed = run_cli(cli_env, "-d", str(db), "rm", "-v", "-g", str(gen))
    assert f"Removed generation {gen}" in removed.stdout
    assert catalog.list_generations(store, "app.db") == []


# ---- 12. -g with a time before the generation existed ---------------------------


def test_restore_refuses_a_time_before_the_named_generation(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    backed_up(tmp_path / "app.db", cli_env)
    (gen,) = catalog.list_generations(store, "app.db")
    before = (created_at(gen) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    out = tmp_path / "out.db"
    proc = run_cli(cli_env, "-d", "app.db", "restore", "-g", str(gen), "-u", before, "-o", str(out), check=False)
    one_clear_line(proc, str(gen), "was created at")
    assert not out.exists()
    verify = run_cli(cli_env, "-d", "app.db", "verify", "-g", str(gen), "-u", before, check=False)
    one_clear_line(verify, str(gen))


# ---- 13. ls -v of an encrypted generation ---------------------------------------


def test_ls_verbose_on_an_encrypted_generation(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "app.db"
    for _ in range(2):  # the second round ships batches after the first generation's snapshot
        backed_up(db, cli_env, rows=4, LIBSQL_BOTTOMLESS_ENCRYPTION_KEY=KEY)
    keyed = {**cli_env, "LIBSQL_BOTTOMLESS_ENCRYPTION_KEY": KEY}
    listing = json.loads(run_cli(keyed, "-d", "app.db", "ls", "-v", "--json").stdout)
    assert listing[0]["consistent_wal_frame"] > 0
    assert all(c in "0123456789abcdef" for c in listing[0]["wal_frame_checksum"])
    assert listing[0]["wal_frame_checksum"] != "0"
    keyless = run_cli(cli_env, "-d", "app.db", "ls", "-v")  # exit 0: the listing works without the key
    assert "encrypted" in keyless.stdout, keyless.stdout


# ---- 14. rm's count, and a parent that is gone ------------------------------------


def test_rm_counts_and_ls_says_a_parent_is_gone(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    db = tmp_path / "app.db"
    backed_up(db, cli_env)
    run_cli(cli_env, "-d", str(db), "snapshot")
    backed_up(db, cli_env)
    newest, parent = catalog.list_generations(store, "app.db")
    assert f"parent generation:    {parent}\n" in run_cli(cli_env, "-d", "app.db", "ls", "-v").stdout + "\n"
    removed = run_cli(cli_env, "-d", "app.db", "rm", "-v", "--older-than", "2999-01-01")
    assert removed.stdout.splitlines()[-1] == "Removed 1 generation", removed.stdout
    listing = run_cli(cli_env, "-d", "app.db", "ls", "-v").stdout
    assert f"parent generation:    {parent} (removed from the bucket)" in listing, listing
    assert json.loads(run_cli(cli_env, "-d", "app.db", "ls", "-v", "--json").stdout)[0]["parent_removed"] is True
    restored = tmp_path / "restored.db"
    run_cli(cli_env, "-d", "app.db", "restore", "-o", str(restored))
    assert read_rows(restored, "SELECT count(*) FROM t") == [(6,)]
    assert newest in catalog.list_generations(store, "app.db")


# ---- 15. the restored file's mode, and -o makes only a file ---------------------


def test_restored_files_get_the_modes_sqlite_would_give(tmp_path: Path, cli_env: dict[str, str]) -> None:
    backed_up(tmp_path / "app.db", cli_env)
    out = tmp_path / "copy.db"
    old_umask = os.umask(0o022)
    try:
        run_cli(cli_env, "-d", "app.db", "restore", "-o", str(out))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy.db")) == ["copy.db"]
    # Replacing a database keeps that file's mode.
    existing = tmp_path / "kept.db"
    existing.write_bytes(out.read_bytes())
    existing.chmod(0o640)
    run_cli(cli_env, "-d", "app.db", "restore", "-o", str(existing), "--force")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    assert read_rows(existing, "SELECT count(*) FROM t") == [(3,)]


# ---- 16. the README's CLI listing names every command -----------------------------


def test_readme_lists_every_command() -> None:
    import click

    from bottomless_cli.main import cli

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    listing = readme.split("bottomless-cli [-e ENDPOINT]", 1)[1].split("```", 1)[0]
    listed = {line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line.split()}
    ctx = click.Context(cli)
    commands = [cli.get_command(ctx, name) for name in cli.list_commands(ctx)]
    public = {c.name for c in commands if c is not None and not c.hidden}
    assert public <= listed, f"missing from the README's listing: {sorted(public - listed)}"
