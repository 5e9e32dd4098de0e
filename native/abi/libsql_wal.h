/* Used only with -Dlibsql-include=DIR: pulls in a libSQL 0.2 build's own
 * declarations of the virtual WAL ABI so native/src/abi_check.zig can compare
 * them with ours. The headers themselves come from DIR, never from this repo. */
#include "sqlite3.h"
#include "wal.h"
