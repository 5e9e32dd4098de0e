/*
 * SQLITE_EXTRA_INIT hook for SQLite's testfixture (our code, compiled into
 * it by fetch_build.sh). With BOTTOMLESS_SUITE_EXTENSION naming the
 * bottomless extension, every sqlite3_initialize() loads it and makes its
 * VFS the default, so every file the suite opens goes through bottomless.
 * Without the variable it does nothing: the plain run uses the same binary.
 *
 * It runs on every initialize, not once: sqlite3_shutdown() followed by
 * sqlite3_initialize() (many tests do that) makes "unix" the default again.
 * Autostart is turned off: no replicator is wanted, only capture.
 */
#include <stdio.h>
#include <stdlib.h>
#include "sqlite3.h"

int bottomless_suite_init(const char *unused) {
    const char *path = getenv("BOTTOMLESS_SUITE_EXTENSION");
    sqlite3 *db = 0;
    char *err = 0;
    sqlite3_vfs *vfs;
    int rc;
    (void)unused;
    if (path == 0 || path[0] == 0) return SQLITE_OK;
    setenv("LIBSQL_BOTTOMLESS_AUTOSTART", "0", 1);
    vfs = sqlite3_vfs_find("bottomless");
    if (vfs == 0) {
        rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, "unix");
        if (rc == SQLITE_OK) rc = sqlite3_enable_load_extension(db, 1);
        if (rc == SQLITE_OK) rc = sqlite3_load_extension(db, path, "sqlite3_bottomless_init", &err);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "bottomless_suite_init: cannot load %s: %s\n", path, err ? err : sqlite3_errmsg(db));
            sqlite3_free(err);
            sqlite3_close(db);
            return rc;
        }
        sqlite3_close(db);
        vfs = sqlite3_vfs_find("bottomless");
        if (vfs == 0) {
            fprintf(stderr, "bottomless_suite_init: %s registered no \"bottomless\" VFS\n", path);
            return SQLITE_ERROR;
        }
    }
    return sqlite3_vfs_register(vfs, 1);
}
