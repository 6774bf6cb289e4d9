/*
 * store.c — the durable store (store.h).
 *
 * File layout:
 *   header (64 bytes, plain): "TMQTTDB\1", format u32 = 1, reserved u32,
 *       store id (16, random at creation, kept by rewrites), file id (16,
 *       random per file), seal mode (16, NUL-padded)
 *   frames: length u32 (of the ciphertext), sequence u64 (1, 2, ... per
 *       file), ciphertext, tag (16)
 * Each frame is AES-256-GCM under the file's key (seal.h) with nonce = its
 * sequence and associated data = store id || file id || sequence || length ||
 * the previous frame's tag (for frame 1: the first 16 bytes of SHA-256 of the
 * header). So a frame cannot be altered, moved, dropped from the middle,
 * replayed or taken from another store or file without the next check
 * failing. What cannot be detected: the loss of the newest frames (it looks
 * like a crash before them) and the replacement of the whole store by an
 * older copy of itself (no trusted monotonic counter here); see
 * docs/persistence.md.
 *
 * Appending after recovery only continues a file whose every byte verified;
 * after damage the store is rewritten into a new file first, so no sequence
 * number is ever used twice under one key.
 */
#include "broker/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define HDR 64
#define FRAME_HDR 12
#define MAGIC "TMQTTDB\1"
#define FORMAT 1
#define MAX_FRAME (1u << 31)
#define COMPACT_MIN (32u << 20)

struct tm_store {
    char *path;
    int fd;
    tm_seal *seal;
    tm_seal_file *file;
    uint8_t header[HDR];
    uint8_t store_id[16], file_id[16];
    uint8_t prev_tag[16];
    uint64_t seq;                /* last frame written or recovered */
    uint64_t size;               /* bytes in the file */
    uint64_t live;               /* size right after the last rewrite */
    tm_store_note_fn note;
    void *ud;
    /* a rewrite in progress: the new file, and the old one's chain to go
     * back to if it fails (the old file is still the store until renamed) */
    int new_fd;
    struct {
        tm_seal_file *file;
        uint8_t header[HDR], file_id[16], prev_tag[16];
        uint64_t seq, size;
    } keep;
};

static void notef(tm_store *st, int warn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void notef(tm_store *st, int warn, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (st->note)
        st->note(st->ud, warn, buf);
}

static void be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) << 32 | rd32(p + 4); }

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got > (1u << 30) ? (1u << 30) : n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got == n ? 0 : -1;
}

static void aad_of(const tm_store *st, uint64_t seq, uint32_t len, uint8_t aad[60])
{
    memcpy(aad, st->store_id, 16);
    memcpy(aad + 16, st->file_id, 16);
    be64(aad + 32, seq);
    be32(aad + 40, len);
    memcpy(aad + 44, st->prev_tag, 16);
}

static void start_chain(tm_store *st)
{
    uint8_t h[32];
    SHA256(st->header, HDR, h);
    memcpy(st->prev_tag, h, 16);
    st->seq = 0;
}

/* A fresh file id and header for this store id; the file key follows. */
static int new_file_header(tm_store *st, char *err, size_t errcap)
{
    if (RAND_bytes(st->file_id, 16) != 1) {
        snprintf(err, errcap, "no randomness for the store file id");
        return -1;
    }
    memset(st->header, 0, HDR);
    memcpy(st->header, MAGIC, 8);
    be32(st->header + 8, FORMAT);
    memcpy(st->header + 16, st->store_id, 16);
    memcpy(st->header + 32, st->file_id, 16);
    snprintf((char *)st->header + 48, 16, "%s", tm_seal_mode(st->seal));
    tm_seal_file_free(st->file);
    st->file = tm_seal_file_new(st->seal, st->store_id, st->file_id, err, errcap);
    if (!st->file)
        return -1;
    start_chain(st);
    return 0;
}

/* Seal and write one frame at the current end of fd. */
static int write_frame(tm_store *st, int fd, const uint8_t *data, size_t len, char *err,
                       size_t errcap)
{
    if (len >= MAX_FRAME) {
        snprintf(err, errcap, "a batch of %zu bytes is too large for one frame", len);
        return -1;
    }
    uint8_t *buf = malloc(FRAME_HDR + len + TM_SEAL_TAG);
    if (!buf) {
        snprintf(err, errcap, "out of memory for a frame of %zu bytes", len);
        return -1;
    }
    uint64_t seq = st->seq + 1;
    be32(buf, (uint32_t)len);
    be64(buf + 4, seq);
    memcpy(buf + FRAME_HDR, data, len);
    uint8_t aad[60];
    aad_of(st, seq, (uint32_t)len, aad);
    uint8_t *tag = buf + FRAME_HDR + len;
    int rc = tm_seal_encrypt(st->file, seq, aad, sizeof aad, buf + FRAME_HDR, len, tag);
    if (rc == 0 && write_all(fd, buf, FRAME_HDR + len + TM_SEAL_TAG) < 0) {
        snprintf(err, errcap, "write: %s", strerror(errno));
        rc = -1;
    } else if (rc < 0) {
        snprintf(err, errcap, "sealing a frame failed");
    }
    if (rc == 0) {
        st->seq = seq;
        memcpy(st->prev_tag, tag, 16);
        st->size += FRAME_HDR + len + TM_SEAL_TAG;
    }
    OPENSSL_cleanse(buf, FRAME_HDR + len);
    free(buf);
    return rc;
}

static int sync_dir(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Rewriting: a new file (new file id, new file key, new chain) written
 * beside the store, synced, then renamed over it. Until then the old file is
 * the store and commits keep going to it with its own chain and key. */
static void new_path(const tm_store *st, char *tmp, size_t cap)
{
    snprintf(tmp, cap, "%s.new", st->path);
}

static int rw_begin(tm_store *st, char *err, size_t errcap)
{
    if (st->new_fd >= 0) {
        snprintf(err, errcap, "a rewrite is already in progress");
        return -1;
    }
    char tmp[1100];
    new_path(st, tmp, sizeof tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    st->keep.file = st->file;
    st->file = NULL;
    memcpy(st->keep.header, st->header, HDR);
    memcpy(st->keep.file_id, st->file_id, 16);
    memcpy(st->keep.prev_tag, st->prev_tag, 16);
    st->keep.seq = st->seq;
    st->keep.size = st->size;
    st->new_fd = fd;
    if (new_file_header(st, err, errcap) < 0 || write_all(fd, st->header, HDR) < 0) {
        if (!err[0])
            snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
        tm_store_rewrite_abort(st);
        return -1;
    }
    st->size = HDR;
    return 0;
}

void tm_store_rewrite_abort(tm_store *st)
{
    if (st->new_fd < 0)
        return;
    char tmp[1100];
    new_path(st, tmp, sizeof tmp);
    close(st->new_fd);
    st->new_fd = -1;
    unlink(tmp);
    tm_seal_file_free(st->file);
    st->file = st->keep.file;
    st->keep.file = NULL;
    memcpy(st->header, st->keep.header, HDR);
    memcpy(st->file_id, st->keep.file_id, 16);
    memcpy(st->prev_tag, st->keep.prev_tag, 16);
    st->seq = st->keep.seq;
    st->size = st->keep.size;
}

int tm_store_rewrite_begin(tm_store *st, char *err, size_t errcap)
{
    if (err && errcap)
        err[0] = 0;
    return rw_begin(st, err, errcap);
}

int tm_store_rewrite_add(tm_store *st, const uint8_t *batch, size_t len, char *err,
                         size_t errcap)
{
    if (st->new_fd < 0) {
        snprintf(err, errcap, "no rewrite in progress");
        return -1;
    }
    if (!len)
        return 0;
    if (write_frame(st, st->new_fd, batch, len, err, errcap) < 0) {
        tm_store_rewrite_abort(st);
        return -1;
    }
    return 0;
}

int tm_store_rewrite_commit(tm_store *st, char *err, size_t errcap)
{
    if (st->new_fd < 0) {
        snprintf(err, errcap, "no rewrite in progress");
        return -1;
    }
    char tmp[1100];
    new_path(st, tmp, sizeof tmp);
    if (fdatasync(st->new_fd) != 0 || rename(tmp, st->path) != 0) {
        snprintf(err, errcap, "%s: %s", st->path, strerror(errno));
        tm_store_rewrite_abort(st);
        return -1;
    }
    sync_dir(st->path);
    if (st->fd >= 0)
        close(st->fd);
    st->fd = st->new_fd;
    st->new_fd = -1;
    tm_seal_file_free(st->keep.file);
    st->keep.file = NULL;
    st->live = st->size;
    return 0;
}

/* A new, empty file as the store (creation, or after damage). */
static int rewrite_empty(tm_store *st, char *err, size_t errcap)
{
    if (rw_begin(st, err, errcap) < 0)
        return -1;
    return tm_store_rewrite_commit(st, err, errcap);
}

/* ---- recovery ------------------------------------------------------------------ */

static const char *header_problem(tm_store *st, const uint8_t *h)
{
    static char why[200];
    if (memcmp(h, MAGIC, 8) != 0)
        return "not a tmqtt store (bad magic)";
    if (rd32(h + 8) != FORMAT) {
        snprintf(why, sizeof why, "store format %u, this broker reads %u", rd32(h + 8), FORMAT);
        return why;
    }
    char mode[17];
    memcpy(mode, h + 48, 16);
    mode[16] = 0;
    if (strcmp(mode, tm_seal_mode(st->seal)) != 0) {
        snprintf(why, sizeof why, "store sealed with '%s', configured '%s'", mode,
                 tm_seal_mode(st->seal));
        return why;
    }
    return NULL;
}

static void move_aside(tm_store *st, const char *why, tm_store_report *rep)
{
    char aside[1200];
    snprintf(aside, sizeof aside, "%s.unreadable-%lld", st->path, (long long)time(NULL));
    if (rename(st->path, aside) == 0)
        notef(st, 1, "store %s cannot be read (%s): moved to %s, starting with an empty store",
              st->path, why, aside);
    else
        notef(st, 1, "store %s cannot be read (%s) and cannot be moved aside (%s): starting "
              "with an empty store", st->path, why, strerror(errno));
    rep->moved_aside = true;
}

/* Reads and applies frames; leaves st at the end of the valid part. Returns
 * 1 when the whole file verified, 0 when it ended in damage. */
static int recover(tm_store *st, int fd, uint64_t fsize, tm_store_apply_fn apply, void *ud,
                   tm_store_report *rep)
{
    uint64_t off = HDR;
    const char *why = NULL;
    char detail[300] = "";
    while (off < fsize) {
        uint8_t fh[FRAME_HDR];
        if (fsize - off < FRAME_HDR + TM_SEAL_TAG || read_all(fd, fh, FRAME_HDR) < 0) {
            why = "torn frame header at the end (a write cut by a crash)";
            break;
        }
        uint32_t len = rd32(fh);
        uint64_t seq = rd64(fh + 4);
        if ((uint64_t)len + FRAME_HDR + TM_SEAL_TAG > fsize - off) {
            why = "frame runs past the end of the file (a write cut by a crash)";
            break;
        }
        if (seq != st->seq + 1) {
            snprintf(detail, sizeof detail, "frame sequence %llu where %llu was due (frames "
                     "reordered, dropped or replayed)", (unsigned long long)seq,
                     (unsigned long long)st->seq + 1);
            why = detail;
            break;
        }
        uint8_t *buf = malloc((size_t)len + TM_SEAL_TAG);
        if (!buf || read_all(fd, buf, (size_t)len + TM_SEAL_TAG) < 0) {
            free(buf);
            why = "cannot read a frame (out of memory or I/O error)";
            break;
        }
        uint8_t aad[60];
        aad_of(st, seq, len, aad);
        if (tm_seal_decrypt(st->file, seq, aad, sizeof aad, buf, len, buf + len) < 0) {
            free(buf);
            why = "frame not authentic (damaged bits, or moved, replayed or spliced from "
                  "elsewhere)";
            break;
        }
        char awhy[200] = "";
        if (apply(ud, buf, len, awhy, sizeof awhy) < 0) {
            OPENSSL_cleanse(buf, len);
            free(buf);
            snprintf(detail, sizeof detail, "frame %llu authentic but not applicable: %s",
                     (unsigned long long)seq, awhy);
            why = detail;
            break;
        }
        memcpy(st->prev_tag, buf + len, 16);
        OPENSSL_cleanse(buf, len);
        free(buf);
        st->seq = seq;
        off += FRAME_HDR + len + TM_SEAL_TAG;
        rep->frames++;
    }
    rep->bytes = off;
    st->size = off;
    if (!why)
        return 1;
    rep->damaged = true;
    rep->discarded_bytes = fsize - off;
    notef(st, 1, "store %s: recovered %llu frame(s); discarded the last %llu byte(s) from "
          "offset %llu: %s", st->path, (unsigned long long)rep->frames,
          (unsigned long long)rep->discarded_bytes, (unsigned long long)off, why);
    return 0;
}

tm_store *tm_store_open(const char *path, tm_seal *seal, tm_store_apply_fn apply,
                        tm_store_note_fn note, void *ud, tm_store_report *rep, char *err,
                        size_t errcap)
{
    memset(rep, 0, sizeof *rep);
    tm_store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    st->fd = -1;
    st->new_fd = -1;
    st->seal = seal;
    st->note = note;
    st->ud = ud;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int whole = 0;
    if (fd >= 0) {
        struct stat sb;
        uint8_t h[HDR];
        const char *problem = NULL;
        if (fstat(fd, &sb) != 0 || sb.st_size < HDR || read_all(fd, h, HDR) < 0)
            problem = "too short for a header";
        else
            problem = header_problem(st, h);
        if (!problem) {
            memcpy(st->header, h, HDR);
            memcpy(st->store_id, h + 16, 16);
            memcpy(st->file_id, h + 32, 16);
            st->file = tm_seal_file_new(seal, st->store_id, st->file_id, err, errcap);
            if (!st->file) {
                close(fd);
                tm_store_close(st);
                return NULL;
            }
            start_chain(st);
            whole = recover(st, fd, (uint64_t)sb.st_size, apply, ud, rep);
        }
        close(fd);
        if (problem) {
            move_aside(st, problem, rep);
            fd = -1;
        }
    } else if (errno != ENOENT) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        tm_store_close(st);
        return NULL;
    }
    if (fd < 0) {   /* no store (or unreadable): a new one */
        rep->created = !rep->moved_aside;
        if (RAND_bytes(st->store_id, 16) != 1 || rewrite_empty(st, err, errcap) < 0) {
            if (!err[0])
                snprintf(err, errcap, "cannot create the store");
            tm_store_close(st);
            return NULL;
        }
        return st;
    }
    if (!whole) {
        /* never append after damage: keep the evidence, continue in a new file
         * (the caller rewrites it from its restored state right away) */
        char aside[1200];
        snprintf(aside, sizeof aside, "%s.damaged", path);
        if (rename(path, aside) == 0)
            notef(st, 1, "store %s: the damaged file is kept as %s", path, aside);
        st->live = 0;
        if (rewrite_empty(st, err, errcap) < 0) {
            tm_store_close(st);
            return NULL;
        }
        return st;
    }
    st->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (st->fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        tm_store_close(st);
        return NULL;
    }
    st->live = st->size;
    return st;
}

int tm_store_commit(tm_store *st, const uint8_t *batch, size_t len, bool sync, char *err,
                    size_t errcap)
{
    if (len == 0)
        return 0;
    if (st->new_fd >= 0) {
        snprintf(err, errcap, "a commit during a rewrite (a bug)");
        return -1;
    }
    if (write_frame(st, st->fd, batch, len, err, errcap) < 0)
        return -1;
    if (sync && fdatasync(st->fd) != 0) {
        snprintf(err, errcap, "fdatasync: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int tm_store_sync(tm_store *st, char *err, size_t errcap)
{
    if (fdatasync(st->fd) != 0) {
        snprintf(err, errcap, "fdatasync: %s", strerror(errno));
        return -1;
    }
    return 0;
}

bool tm_store_wants_compaction(const tm_store *st)
{
    uint64_t grown = st->size - st->live;
    return grown > COMPACT_MIN && grown > 2 * st->live;
}

uint64_t tm_store_size(const tm_store *st) { return st->size; }

int tm_store_inspect(const char *path, tm_seal *seal, tm_store_apply_fn apply,
                     tm_store_note_fn note, void *ud, tm_store_report *rep, char *err,
                     size_t errcap)
{
    memset(rep, 0, sizeof *rep);
    tm_store st = {.path = (char *)path, .fd = -1, .new_fd = -1, .seal = seal, .note = note, .ud = ud};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    const char *problem = NULL;
    if (fstat(fd, &sb) != 0 || sb.st_size < HDR || read_all(fd, st.header, HDR) < 0)
        problem = "too short for a header";
    else
        problem = header_problem(&st, st.header);
    if (problem) {
        close(fd);
        snprintf(err, errcap, "%s: %s", path, problem);
        return -1;
    }
    memcpy(st.store_id, st.header + 16, 16);
    memcpy(st.file_id, st.header + 32, 16);
    st.file = tm_seal_file_new(seal, st.store_id, st.file_id, err, errcap);
    if (!st.file) {
        close(fd);
        return -1;
    }
    start_chain(&st);
    recover(&st, fd, (uint64_t)sb.st_size, apply, ud, rep);
    close(fd);
    tm_seal_file_free(st.file);
    return 0;
}

void tm_store_close(tm_store *st)
{
    if (!st)
        return;
    tm_store_rewrite_abort(st);
    if (st->fd >= 0)
        close(st->fd);
    tm_seal_file_free(st->file);
    free(st->path);
    free(st);
}
