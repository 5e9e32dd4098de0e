/*
 * bottomless.h: the C ABI of the bottomless native core.
 *
 * This is the only boundary between the Zig core and its callers (the Python
 * replicator binds it with cffi in ABI mode, so keep it free of preprocessor
 * logic other than #define of integer constants). The Zig build translates
 * it and checks the core's structs and constants against it at compile
 * time (native/src/header_check.zig). Plain C types only; every
 * function returns an integer status and leaves a message for
 * bottomless_last_error() on failure. No function ever unwinds into the caller.
 *
 * The spool is an append-only log in "<db>-bottomless/" beside the database:
 * one checksummed record per committed transaction (which WAL frames hold
 * it, page size, database size after commit), written by the capture layer
 * while SQLite holds its WAL write lock. Pages are read from the WAL, or
 * from the copy the capture layer makes before SQLite reuses the WAL.
 */
#ifndef BOTTOMLESS_H
#define BOTTOMLESS_H

#include <stddef.h>
#include <stdint.h>

/* Status codes: every function that returns int returns one of these.
 * Defined here only; the Zig core (status.zig) and the Python binding
 * (_native.py) read them from this header. */
enum bottomless_status {
  BOTTOMLESS_OK = 0,
  BOTTOMLESS_DONE = 1,      /* no complete record at that position (yet) */
  BOTTOMLESS_BUSY = 2,      /* SQLite is rewriting that part of the WAL: retry shortly */
  BOTTOMLESS_ERROR = -1,    /* generic failure, see bottomless_last_error() */
  BOTTOMLESS_CORRUPT = -2,  /* checksum, salt or format mismatch */
  BOTTOMLESS_NOMEM = -3,
  BOTTOMLESS_IO = -4,       /* the operating system refused a read/write */
  BOTTOMLESS_MISUSE = -5,   /* bad argument */
  BOTTOMLESS_BUFFER = -6    /* output buffer too small */
};

#define BOTTOMLESS_GAP_BEFORE 1 /* bottomless_record.flags */

/* Message of the last failure on the calling thread; never NULL. */
const char *bottomless_last_error(void);
/* Version of the native core, e.g. "0.1.0". */
const char *bottomless_version(void);

/*
 * Register the "bottomless" VFS into a SQLite library that was not given to
 * us through sqlite3_extension_init (e.g. the one Python's sqlite3 module
 * links). Pass that library's own functions. database_file_object may be
 * NULL on SQLite < 3.31 (transaction boundaries are then inferred from WAL
 * writes alone). Idempotent per library.
 */
typedef struct bottomless_sqlite_fns {
  void *vfs_find;             /* sqlite3_vfs *(*)(const char *)           */
  void *vfs_register;         /* int (*)(sqlite3_vfs *, int make_default) */
  void *database_file_object; /* sqlite3_file *(*)(const char *)          */
  void *malloc;               /* void *(*)(int): sqlite3_malloc, for the answer of
                                 PRAGMA bottomless_read_position (NULL: no answer) */
} bottomless_sqlite_fns;
int bottomless_register_vfs(const bottomless_sqlite_fns *fns);

/* ---- spool ------------------------------------------------------------ */

typedef struct bottomless_spool bottomless_spool;

typedef struct bottomless_record {
  uint64_t seq;         /* transaction sequence number, 1-based, gap-free */
  uint64_t offset;      /* where the record starts in the spool */
  uint64_t next_offset; /* where the next record starts */
  uint64_t unix_ms;     /* commit time (wall clock, milliseconds) */
  uint32_t page_size;
  uint32_t db_size;     /* database size in pages after the commit */
  uint32_t n_pages;     /* pages in the record */
  uint32_t flags;       /* BOTTOMLESS_GAP_BEFORE: commits before this one were
                           not captured; a new generation must start here */
} bottomless_record;

/*
 * Running state of a SQLite WAL checksum chain. Frames produced by this
 * library checksum their words little-endian (what SQLite writes on x86-64
 * and aarch64, WAL magic 0x377f0682, and what libSQL's bottomless checks)
 * and carry salt1/salt2 in their headers.
 */
typedef struct bottomless_chain {
  uint32_t salt1;
  uint32_t salt2;
  uint32_t cksum1;
  uint32_t cksum2;
} bottomless_chain;

typedef struct bottomless_stats {
  uint64_t records;        /* complete records not yet acknowledged */
  uint64_t bytes;          /* their size in bytes */
  uint64_t disk_bytes;     /* what the spool occupies on disk */
  uint64_t oldest_unix_ms; /* commit time of the oldest unacknowledged record, 0 if none */
  uint64_t last_seq;       /* newest record's seq, 0 if none */
  uint64_t acked_seq;      /* newest acknowledged seq, 0 if none */
  uint64_t gaps;           /* unacknowledged records with BOTTOMLESS_GAP_BEFORE:
                              history a replicator must restart with a snapshot */
  uint64_t dropped_seq;    /* unshipped history through this seq was dropped at
                              LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES (0: none pending) */
} bottomless_stats;

/* Opens (creating if needed) the spool of a database for reading/acking. */
int bottomless_spool_open(const char *db_path, bottomless_spool **out);
void bottomless_spool_close(bottomless_spool *spool);
/* Offset of the first record not yet acknowledged. */
int bottomless_spool_start(bottomless_spool *spool, uint64_t *offset);
/*
 * Reads the record at offset (header checksum and trailer checked; the pages
 * are checked when bottomless_spool_frames reads them). Returns OK, DONE
 * (nothing complete there yet: an append in progress, or a record torn by a
 * crash that the next writer drops) or CORRUPT (a damaged record with a good
 * one after it).
 */
int bottomless_spool_next(bottomless_spool *spool, uint64_t offset, bottomless_record *out);
/*
 * Encodes pages [first, first+count) of a record as SQLite WAL frames
 * (24-byte header + page) into out, continuing the checksum chain. The
 * record's last page is marked as the commit frame (db_size after commit).
 * cap must be at least count * (24 + page_size). Returns BUSY while SQLite
 * rewrites those frames (retry), CORRUPT when they are gone (the WAL was
 * reset behind the extension's back: start a new generation).
 */
int bottomless_spool_frames(bottomless_spool *spool, const bottomless_record *rec,
                            uint32_t first, uint32_t count, bottomless_chain *chain,
                            uint8_t *out, size_t cap);
/*
 * One batch: the pages of consecutive records starting at offset, each
 * page once in its newest image, as one transaction of WAL frames
 * continuing chain. It takes the first record and then each of the next
 * (up to count in all) while the batch holds at most max_frames distinct
 * pages and fits in cap bytes; *taken gets how many it took, *written the
 * bytes. cap must hold the first record's frames. BUSY leaves chain
 * unchanged (retry).
 */
int bottomless_spool_frames_run(bottomless_spool *spool, uint64_t offset, uint64_t count,
                                uint64_t max_frames, bottomless_chain *chain, uint8_t *out,
                                size_t cap, size_t *written, uint64_t *taken);
/* Why an offer ended (bottomless_offer.stop). */
enum bottomless_offer_stop {
  BOTTOMLESS_OFFER_END = 0,       /* no further complete record (yet) */
  BOTTOMLESS_OFFER_FULL = 1,      /* the next record would pass max_raw_bytes or max_span_ms */
  BOTTOMLESS_OFFER_GAP = 2,       /* the next record has BOTTOMLESS_GAP_BEFORE */
  BOTTOMLESS_OFFER_PAGE_SIZE = 3, /* the next record has another page size */
  BOTTOMLESS_OFFER_SKIP = 4       /* the next record's seq does not follow: damage */
};

typedef struct bottomless_offer {
  bottomless_record skipped; /* newest unacknowledged record at or below after_seq (seq 0: none) */
  bottomless_record first;   /* the first record offered (when count > 0) */
  bottomless_record next;    /* the record the offer stopped at, not offered (stop != END) */
  uint64_t count;            /* records offered: consecutive, from first */
  uint64_t raw_bytes;        /* the bytes of their frames */
  uint32_t max_pages;        /* the most pages one of them holds */
  uint32_t stop;             /* enum bottomless_offer_stop */
} bottomless_offer;

/*
 * The records the next batch is offered, scanning from the first
 * unacknowledged one: those at or below after_seq are passed over (the
 * newest of them in skipped, to acknowledge), then consecutive records of
 * page_size follow as long as their frames stay within max_raw_bytes and
 * their commits within max_span_ms of the first (the first is always
 * taken). One call per batch, however many transactions it holds.
 */
int bottomless_spool_offer(bottomless_spool *spool, uint64_t after_seq, uint32_t page_size,
                           uint64_t max_raw_bytes, uint64_t max_span_ms, bottomless_offer *out);
/* Everything up to and including rec is in S3: its disk space may go. */
int bottomless_spool_ack(bottomless_spool *spool, const bottomless_record *rec);
int bottomless_spool_stats(bottomless_spool *spool, bottomless_stats *out);
/*
 * The seq of the newest commit a read transaction sees, given its view of
 * the WAL (salts and mxFrame, from PRAGMA bottomless_read_position on a
 * connection opened through the bottomless VFS) and the spool's newest seq
 * read before that transaction began. BUSY: the spool does not cover that
 * view yet (or has acknowledged past it); retry with a new transaction.
 */
int bottomless_spool_seq_at(bottomless_spool *spool, uint32_t salt1, uint32_t salt2,
                            uint32_t mx_frame, uint64_t before_seq, uint64_t *seq);
/*
 * Appends to the spool every transaction committed in the WAL that the spool
 * lacks (after a crash between the WAL write and the spool append), and
 * drops a torn last record. The caller must hold the database's WAL write
 * lock. (The extension does this itself where SQLite already holds that
 * lock: at a writer's next transaction and after WAL recovery.) *appended
 * gets the count.
 */
int bottomless_spool_reconcile(bottomless_spool *spool, uint64_t *appended);
/*
 * For a replicator about to sleep until the kernel reports a change in the
 * side folder: the next record capture appends to db_path's spool writes
 * to <db>-bottomless/bell (which a write through capture's mapped spool
 * tail would not report). Look at the spool once more after this returns,
 * then sleep: a commit is either seen by that look or rings the bell.
 */
int bottomless_bell_arm(const char *db_path);

/* ---- restore ------------------------------------------------------------ */

#define BOTTOMLESS_APPLY_VERIFY 1      /* check every frame's chained checksum */
#define BOTTOMLESS_APPLY_BIG_ENDIAN 2  /* checksum words are big-endian (earlier buckets) */
/* Sets the file to db_size pages and makes it durable. */
int bottomless_finish_restore(const char *db_path, uint32_t page_size, uint32_t db_size);

/* ---- restore pipeline: each page written once, newest image first ------- */
#define BOTTOMLESS_CHECK_AFTER_FIRST 4 /* frame 0's checksum is the caller's; chain starts at its words */
/* Checks the page numbers and (with BOTTOMLESS_APPLY_VERIFY) the chained
 * checksums of WAL frames from chain, writing nothing; chain ends at the
 * last frame. *last_commit is the index of the last commit frame (-1:
 * none), *db_size the database size it records. */
int bottomless_check_frames(uint32_t page_size, const uint8_t *frames, size_t len, int flags,
                            bottomless_chain *chain, int64_t *last_commit, uint32_t *db_size);
/* Writes into fd, newest frame first, the page of each frame that is at
 * most max_pgno and not yet set in bitmap (bit pgno%8 of byte pgno/8;
 * bitmap_len >= max_pgno/8 + 1), and sets it; *written counts them. */
int bottomless_write_newest(int fd, uint32_t page_size, const uint8_t *frames, size_t len,
                            uint8_t *bitmap, size_t bitmap_len, uint32_t max_pgno, uint64_t *written);
/* Writes the pages first_pgno.. held in data (whole pages) that are at most
 * max_pgno and not set in bitmap, one pwrite per run, and sets them. */
int bottomless_write_image(int fd, uint32_t page_size, uint32_t first_pgno, const uint8_t *data, size_t len,
                           uint8_t *bitmap, size_t bitmap_len, uint32_t max_pgno, uint64_t *written);
/* SQLite's WAL checksum over data (words big-endian when big_endian != 0,
 * else little-endian), continuing chain. */
int bottomless_wal_checksum(const uint8_t *data, size_t len, int big_endian,
                            bottomless_chain *chain);

#endif
