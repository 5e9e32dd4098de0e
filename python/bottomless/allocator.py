"""glibc's allocator and a restore's big, short-lived buffers.

A restore allocates parts of several MiB in fetching threads and frees
them in the decoding thread. glibc raises its mmap threshold to the size
of each such block freed (up to 32 MiB); from then on these blocks come
from per-thread arenas, which fragment, and the resident set grows with
the database: 239 MiB at 1 GiB and 269 MiB at 2 GiB restored from local
objects. With the threshold fixed, every block of 1 MiB or more is mapped
on its own and unmapped when freed (a synthetic copy of that pattern,
160 parts of 16 MiB through 4 threads: 203 MiB and growing, against 107
MiB flat). A fixed threshold also fixes the trim threshold at 128 KiB,
so the heap would hand its top back after every free and fault it in
again (100,000 page faults per 256 MiB decompressed): it is raised to
64 MiB. Restoring 1 GiB from local objects: 155 MiB peak and 4.8 to 5.2 s
of system time with the mmap threshold alone, 179 to 183 MiB and 2.4 to
2.6 s with both (and zstd's pieces below the threshold, compression.FEED).
The setting is the process's, so the process's owner makes it:
``bottomless-cli`` does; a program calling ``restore()`` may.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
LARGE = 1 << 20
KEEP = 64 << 20  # free heap kept at its top


def return_large_blocks(threshold: int = LARGE) -> bool:
    """Fixes glibc's mmap threshold at ``threshold`` bytes; whether it
    could (False where the C library has no ``mallopt``)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP))
    log.debug("mmap threshold fixed at %d bytes: %s", threshold, done)
    return done
