"""The C ABI has one source of truth, ``native/include/bottomless.h``: the
binding takes it from the library's own build, status codes come from it on
both sides, and every Zig file of the core is compiled by ``zig build test``."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from bottomless import extension_path
from bottomless._native import Native, load
from bottomless._paths import header_of
from bottomless.errors import NativeError
from bottomless.frames import Chain
from bottomless.spool import Spool
from bottomless.sqlite_vfs import register_python_sqlite

# Needs libSQL's own headers (zig build -Dlibsql-include=DIR).
_ONLY_WITH_LIBSQL_HEADERS = {"abi_check.zig"}
_FILE_SCOPE_IMPORT = re.compile(r'^(pub )?const \w+ = @import\("[\w.]+"\)(\.\w+)*;')


def test_every_zig_file_is_compiled_and_tested_by_zig_build_test(repo_root: Path) -> None:
    src = repo_root / "native" / "src"
    root = (src / "root.zig").read_text()
    block = root[root.index("const all_files = struct {") :]
    listed = set(re.findall(r'@import\("(\w+\.zig)"\)', block[: block.index("};")]))
    present = {p.name for p in src.glob("*.zig")} - {"root.zig"} - _ONLY_WITH_LIBSQL_HEADERS
    assert present - listed == set(), f"not reached by zig build test: {sorted(present - listed)}"
    assert listed - present == set(), f"listed but missing: {sorted(listed - present)}"


def test_zig_imports_are_at_file_scope(repo_root: Path) -> None:
    misplaced = []
    for path in sorted((repo_root / "native" / "src").glob("*.zig")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "@import(" not in line or line.lstrip().startswith("//"):
                continue
            stripped = line.strip()
            in_all_files = path.name == "root.zig" and line.startswith("    pub const ")
            libsql_check = "build_options.check_libsql_abi" in line
            if not (_FILE_SCOPE_IMPORT.match(line) or in_all_files or libsql_check):
                misplaced.append(f"{path.name}:{n}: {stripped}")
    assert misplaced == []


def test_zig_files_import_each_other_without_a_cycle(repo_root: Path) -> None:
    src = repo_root / "native" / "src"
    imports = {p.name: set(re.findall(r'@import\("(\w+\.zig)"\)', p.read_text())) for p in src.glob("*.zig")}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for dep in sorted(imports.get(name, ())):
            assert dep not in path, f"import cycle: {' -> '.join([*path, dep])}"
            if dep not in done:
                visit(dep, [*path, dep])
        done.add(name)

    for name in sorted(imports):
        visit(name, [name])


def test_the_header_is_the_one_built_with_the_library() -> None:
    lib = Path(extension_path()).resolve()
    header = Path(header_of(str(lib)))
    assert header.parent in (lib.parent, lib.parent.parent / "include")
    assert "enum bottomless_status" in header.read_text()


def test_a_library_without_its_own_header_is_refused(tmp_path: Path) -> None:
    lone = tmp_path / "lib" / Path(extension_path()).name
    lone.parent.mkdir()
    shutil.copyfile(extension_path(), lone)
    with pytest.raises(FileNotFoundError, match=r"bottomless\.h .*missing"):
        Native(str(lone))
    (tmp_path / "include").mkdir()
    shutil.copyfile(header_of(extension_path()), tmp_path / "include" / "bottomless.h")
    assert Native(str(lone)).version() == load().version()


def test_status_codes_of_the_core_are_the_headers() -> None:
    native = load()
    out = native.ffi.new("bottomless_spool **")
    # An empty path is a bad argument: the core answers with the code it
    # read from the header, the binding names it from the same header.
    assert native.lib.bottomless_spool_open(b"", out) == native.lib.BOTTOMLESS_MISUSE
    with pytest.raises(NativeError) as info:
        native.spool_open("")
    assert info.value.code == native.lib.BOTTOMLESS_MISUSE and not info.value.corrupt
    assert "db_path is empty" in str(info.value)


def test_a_record_goes_back_to_the_core_as_the_struct_it_came_in(tmp_path: Path) -> None:
    register_python_sqlite()
    db = tmp_path / "t.db"
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t(x)")
        conn.execute("INSERT INTO t VALUES (1)")
        with Spool(str(db)) as spool:
            first, second = list(spool.records())
            assert second.seq == first.seq + 1 and second.offset == first.next_offset
            assert load().ffi.typeof(second.raw).cname == "bottomless_record *"
            frames, _ = spool.frames(second, Chain(0, 0, 0, 0))
            assert len(frames) == second.n_pages * (24 + second.page_size)
            spool.ack(second)
            assert spool.start() == second.next_offset
            assert spool.stats().acked_seq == second.seq
    finally:
        conn.close()
