//! The spool: the durable hand-off between capture (inside SQLite, under its
//! WAL write lock) and the replicator, in "<db>-bottomless/".
//!
//! `spool` is an append-only log with one small record per committed
//! transaction: which WAL frames hold it (salts of the WAL cycle, commit
//! frame, frame count), page size, database size and commit time. The pages
//! themselves stay in the WAL, which SQLite has already written (and synced,
//! with synchronous=FULL): the commit path writes 96 bytes, not a second copy
//! of every page. Before SQLite discards WAL content (restart, truncate,
//! delete) the frames of every record not yet acknowledged are copied into
//! `pages` and the record's slot points at the copy ("materialised").
//!
//! The record layout is in spool_format.zig (96 bytes: header, slot of the
//! copy in `pages`, trailer). The records end at the first incomplete one, not at the file size: the
//! file is allocated ahead with zeros (spool_tail.zig). A record without its
//! trailer was torn by a crash; whoever next holds the write lock clears it.
//! Acknowledged records are hole-punched, except the newest, which keeps the
//! sequence and WAL position readable.
//!
//! `pages` entry: the record's WAL frames as SQLite wrote them (header and
//! page each), nothing else, so the entries of consecutive records are one
//! stretch of the WAL, copied in the kernel with one copy_file_range
//! (materialize.zig). Their hash, seeded with the seq, is in the slot.
//!
//! Beside them: `ack` (the replicator's position, spool_ack.zig), `sealed`
//! (what may follow the newest record, seal.zig) and `pages.lock`. The
//! names, paths and permissions of all of them: sidefolder.zig.
//!
//! This file is the spool's public face; each part has a file of its own:
//!   spool_format.zig  the record's bytes (extern structs), encode/decode
//!   spool_writer.zig  capture's side: append, reconcile after a crash
//!   spool_chunks.zig  rewriting slots a chunk of records at a time
//!   spool_reader.zig  the replicator's side: read, frames, ack, stats
//!   spool_ack.zig     the acknowledgement file
//!   payload_hash.zig  the hash of a record's copied pages
const format = @import("spool_format.zig");
const writer = @import("spool_writer.zig");
const ack = @import("spool_ack.zig");
const sidefolder = @import("sidefolder.zig");

pub const header_size = format.header_size;
pub const mat_size = format.mat_size;
pub const trailer_size = format.trailer_size;
pub const record_size = format.record_size;
pub const Header = format.Header;
pub const Mat = format.Mat;
pub const readHeader = format.readHeader;
pub const readMat = format.readMat;
pub const PayloadHash = @import("payload_hash.zig").PayloadHash;
pub const Paths = sidefolder.Paths;
pub const Ack = ack.Ack;
pub const readAck = ack.readAck;
pub const hasReader = ack.hasReader;
pub const Last = format.Last;
pub const timeMs = writer.timeMs;
pub const scanTail = writer.scanTail;
pub const Writer = writer.Writer;
pub const RecordChunks = @import("spool_chunks.zig").RecordChunks;
pub const Reader = @import("spool_reader.zig").Reader;
