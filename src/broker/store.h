/*
 * store.h — the broker's durable store: an append-only file of sealed
 * frames, one frame per committed batch of journal records (journal.c),
 * compacted by rewriting it from a snapshot. docs/persistence.md has the
 * format, the guarantees and their limits.
 *
 * Crash safety: a frame is durable when tm_store_commit returned (write +
 * fdatasync); a torn or damaged tail is detected on open (length, sequence,
 * authentication tag), everything before it is recovered, the rest is
 * reported and discarded — the broker never refuses to start because of its
 * own store. A store that cannot be read at all (another key, a foreign or
 * mangled header) is moved aside and a new one started, loudly.
 */
#ifndef TM_BROKER_STORE_H
#define TM_BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/seal.h"

typedef struct tm_store tm_store;

/* Called for each recovered frame's plaintext, in order. Returns 0, or -1
 * with a reason: the frame is counted as damaged and recovery stops there. */
typedef int (*tm_store_apply_fn)(void *ud, const uint8_t *batch, size_t len, char *why,
                                  size_t whycap);
/* Called with each thing recovery has to say (discarded bytes and why). */
typedef void (*tm_store_note_fn)(void *ud, int warn, const char *msg);

typedef struct tm_store_report {
    uint64_t frames;             /* recovered */
    uint64_t bytes;              /* recovered, on disk */
    uint64_t discarded_bytes;    /* after the damage */
    bool damaged;                /* a tail or a frame was discarded */
    bool moved_aside;            /* the whole store was unreadable */
    bool created;                /* there was no store */
} tm_store_report;

/* Opens (recovering) or creates the store at `path`. The seal stays the
 * caller's. NULL only when the store can be neither read nor created (the
 * directory is not writable...), with a reason. */
tm_store *tm_store_open(const char *path, tm_seal *seal, tm_store_apply_fn apply,
                        tm_store_note_fn note, void *ud, tm_store_report *rep, char *err,
                        size_t errcap);
/* Appends one sealed frame and (unless `sync` is false) waits until it is on
 * stable storage. -1 with a reason: nothing may be acknowledged then. */
int tm_store_commit(tm_store *st, const uint8_t *batch, size_t len, bool sync, char *err,
                    size_t errcap);
int tm_store_sync(tm_store *st, char *err, size_t errcap);
/* True when the file has grown well past its live content: time to rewrite. */
bool tm_store_wants_compaction(const tm_store *st);
/* Rewriting the store from a snapshot: begin, add the snapshot's batches
 * (frames) in order, commit (the new file is synced, then renamed over the
 * old one). Until the commit the old file stays the store; any failure (-1
 * with a reason) abandons the new file and leaves the store exactly as it
 * was, ready for more commits. No tm_store_commit in between (refused); the
 * caller's journal must be empty at begin. */
int tm_store_rewrite_begin(tm_store *st, char *err, size_t errcap);
int tm_store_rewrite_add(tm_store *st, const uint8_t *batch, size_t len, char *err,
                         size_t errcap);
int tm_store_rewrite_commit(tm_store *st, char *err, size_t errcap);
void tm_store_rewrite_abort(tm_store *st);   /* nothing in progress: no-op */
uint64_t tm_store_size(const tm_store *st);
/* Read-only recovery for tools (tmqtt-db): applies what verifies, reports
 * the rest through `note`, changes nothing on disk. 0, or -1 with a reason
 * when the file cannot be read at all (missing, foreign header, other key
 * source). */
int tm_store_inspect(const char *path, tm_seal *seal, tm_store_apply_fn apply,
                     tm_store_note_fn note, void *ud, tm_store_report *rep, char *err,
                     size_t errcap);
void tm_store_close(tm_store *st);

#endif
