/*
 * fuzz_tls_record.c — libFuzzer target for the server's TLS 1.3 record
 * reader (src/net/tls_record.c): every byte after the handshake is the
 * peer's, so every byte here is the fuzzer's.
 *
 * Input: [0] suite (mod 3: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305;
 * bit 7: items mode, below), [1] how the bytes arrive (a seed for chunk
 * sizes and "would block" pauses), [2] the reader's buffer size, then the
 * peer's traffic secret (the suite's hash length), then the bytes the peer
 * sends. The keys are fixed by the input, so seeds recorded from a real
 * OpenSSL client (corpus/tls_record, make_tls_record_seeds.c) reach past
 * authentication.
 *
 * Mutated ciphertext fails authentication, so in items mode the harness
 * seals what the fuzzer chooses: items [kind][length, 2 bytes][bytes], kind
 * bit 0: the bytes are a TLSInnerPlaintext to seal as one record (with
 * tls13_sealer.h, written independently of tls_record.c), else raw bytes on
 * the wire (headers, garbage); bit 1: the sealer moves to the next key
 * after this record (as after a KeyUpdate it carries). Content types,
 * padding, alerts and post-handshake messages are then the fuzzer's.
 *
 * Properties checked, besides no crash or sanitizer report:
 *  - no read returns more than asked, and a failed or ended reader stays so;
 *  - chunking does not change the meaning: the same bytes read at once into
 *    64 KiB give the same outcome (data, close_notify, end of stream or a
 *    failure with the same reason) and the same plaintext (on a failure,
 *    one plaintext is a prefix of the other: bytes before a fatal record
 *    may be dropped with it);
 *  - what the reader sends back (KeyUpdate answers, alerts) is well-formed
 *    TLS 1.3 under our keys: a second reader with the secrets swapped takes
 *    all of it, ending at most with our alert.
 *
 * Built with -DTM_FUZZ_REPLAY (plain gcc build) it is a program replaying
 * corpus files and directories given on the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/loop.h"
#include "net/tls_record.h"
#include "tls13_sealer.h"

#define REQUIRE(c)                                                                  \
    do {                                                                            \
        if (!(c)) {                                                                 \
            fprintf(stderr, "fuzz_tls_record: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                \
        }                                                                           \
    } while (0)

static const uint16_t SUITES[] = {0x1301, 0x1302, 0x1303};
static const uint8_t OUR_SECRET[TM_TLSREC_MAX_SECRET] = {
    0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
    0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
    0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f};

/* The peer's bytes, handed out in chunks; what we send, collected. */
typedef struct wire {
    const uint8_t *in;
    size_t len, pos;
    uint32_t rng;                /* 0: everything at once, no pauses */
    bool paused;
    uint8_t *out;
    size_t out_len, out_cap;
} wire;

static uint32_t next(wire *w)
{
    w->rng = w->rng * 1103515245u + 12345u;
    return w->rng >> 16;
}

static long wire_read(void *arg, void *buf, size_t n)
{
    wire *w = arg;
    if (w->pos == w->len)
        return 0;
    if (w->rng && !w->paused && next(w) % 4 == 0) {
        w->paused = true;   /* would block once; the caller comes back */
        return -2;
    }
    w->paused = false;
    size_t k = w->len - w->pos;
    if (w->rng) {
        size_t c = 1 + next(w) % (next(w) % 2 ? 7 : 4096);
        k = k < c ? k : c;
    }
    k = k < n ? k : n;
    memcpy(buf, w->in + w->pos, k);
    w->pos += k;
    return (long)k;
}

static long wire_write(void *arg, const void *buf, size_t n)
{
    wire *w = arg;
    if (w->out_len + n > w->out_cap) {
        w->out_cap = (w->out_len + n) * 2;
        w->out = realloc(w->out, w->out_cap);
        REQUIRE(w->out);
    }
    memcpy(w->out + w->out_len, buf, n);
    w->out_len += n;
    return (long)n;
}

enum { ENDED_EOF, ENDED_CLOSED, ENDED_FAILED };

typedef struct outcome {
    int how;
    char why[200];
    uint8_t *plain;
    size_t plain_len;
} outcome;

/* Reads everything the wire has, cap bytes per call. */
static void read_all(uint16_t suite, const uint8_t *peer_secret, size_t slen, wire *w, size_t cap,
                     outcome *o)
{
    char err[200];
    memset(o, 0, sizeof *o);
    tm_tlsrec *r = tm_tlsrec_new(suite, peer_secret, OUR_SECRET, slen, err, sizeof err);
    REQUIRE(r);
    tm_tlsrec_io io = {.read = wire_read, .write = wire_write, .arg = w};
    uint8_t *buf = malloc(cap);
    o->plain = malloc(w->len + 1);
    REQUIRE(buf && o->plain);
    for (size_t rounds = 0;; rounds++) {
        REQUIRE(rounds < 4 * w->len + 16);
        unsigned want = 0;
        long n = tm_tlsrec_read(r, &io, buf, cap, &want, err, sizeof err);
        if (n == -2) {
            REQUIRE(want & TM_EV_READ);
            continue;
        }
        if (n > 0) {
            REQUIRE((size_t)n <= cap && o->plain_len + (size_t)n <= w->len);
            memcpy(o->plain + o->plain_len, buf, (size_t)n);
            o->plain_len += (size_t)n;
            continue;
        }
        o->how = n < 0 ? ENDED_FAILED : tm_tlsrec_closed(r) ? ENDED_CLOSED : ENDED_EOF;
        if (n < 0) {
            snprintf(o->why, sizeof o->why, "%s", err);
            REQUIRE(tm_tlsrec_failed(r));
            REQUIRE(tm_tlsrec_read(r, &io, buf, cap, &want, err, sizeof err) == -1);
            REQUIRE(tm_tlsrec_write(r, &io, "x", 1, &want, err, sizeof err) == -1);
        } else {
            REQUIRE(!tm_tlsrec_pending(r));
            REQUIRE(tm_tlsrec_read(r, &io, buf, cap, &want, err, sizeof err) == 0);
            /* a reply still goes out after the peer's close_notify */
            REQUIRE(tm_tlsrec_write(r, &io, "bye", 3, &want, err, sizeof err) == 3);
            REQUIRE(tm_tlsrec_shutdown(r, &io, &want) == 1);
        }
        break;
    }
    free(buf);
    tm_tlsrec_free(r);
}

/* What we sent must read back under our keys. */
static void check_echo(uint16_t suite, const uint8_t *peer_secret, size_t slen, wire *w)
{
    char err[200];
    tm_tlsrec *r = tm_tlsrec_new(suite, OUR_SECRET, peer_secret, slen, err, sizeof err);
    REQUIRE(r);
    wire back = {.in = w->out, .len = w->out_len};
    tm_tlsrec_io io = {.read = wire_read, .write = wire_write, .arg = &back};
    uint8_t buf[4096];
    for (;;) {
        unsigned want = 0;
        long n = tm_tlsrec_read(r, &io, buf, sizeof buf, &want, err, sizeof err);
        if (n > 0)
            continue;
        if (n < 0)
            REQUIRE(!strncmp(err, "the peer sent a fatal alert", 27));
        break;
    }
    free(back.out);
    tm_tlsrec_free(r);
}

/* Items mode: the wire bytes the items make (malloc'd into *out). */
static size_t make_items(uint16_t suite, const uint8_t *secret, const uint8_t *p, size_t n,
                         uint8_t **out)
{
    tm_test_sealer sealer;
    tm_test_sealer_init(&sealer, suite, secret);
    size_t cap = 16, len = 0;
    uint8_t *w = malloc(cap);
    REQUIRE(w);
    while (n >= 3) {
        uint8_t kind = p[0];
        size_t k = (size_t)p[1] << 8 | p[2];
        p += 3;
        n -= 3;
        k = k < n ? k : n;
        if (kind & 1)
            k = k < TM_TLSREC_MAX_CIPHER - 16 ? k : TM_TLSREC_MAX_CIPHER - 16;
        if (len + k + 21 > cap) {
            cap = (len + k + 21) * 2;
            w = realloc(w, cap);
            REQUIRE(w);
        }
        if (kind & 1) {
            len += tm_test_seal(&sealer, p, k, w + len);
            if (kind & 2)
                tm_test_sealer_next(&sealer);
        } else {
            memcpy(w + len, p, k);
            len += k;
        }
        p += k;
        n -= k;
    }
    *out = w;
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint16_t suite = SUITES[(data[0] & 0x7f) % 3];
    size_t slen = tm_tlsrec_secret_len(suite);
    if (size < 3 + slen)
        return 0;
    const uint8_t *secret = data + 3, *peer = data + 3 + slen;
    size_t n = size - 3 - slen;
    uint8_t *made = NULL;
    if (data[0] & 0x80) {
        n = make_items(suite, secret, peer, n, &made);
        peer = made;
    }
    static const size_t caps[] = {1, 5, 7, 64, 1000, 16384, 16385, 20000, 65536};
    size_t cap = caps[data[2] % (sizeof caps / sizeof caps[0])];

    wire chunked = {.in = peer, .len = n, .rng = 1u + data[1]};
    outcome a, b;
    read_all(suite, secret, slen, &chunked, cap, &a);
    wire whole = {.in = peer, .len = n};
    read_all(suite, secret, slen, &whole, 65536, &b);

    REQUIRE(a.how == b.how);
    if (a.how == ENDED_FAILED) {
        REQUIRE(!strcmp(a.why, b.why));
        size_t m = a.plain_len < b.plain_len ? a.plain_len : b.plain_len;
        REQUIRE(memcmp(a.plain, b.plain, m) == 0);
    } else {
        REQUIRE(a.plain_len == b.plain_len && !memcmp(a.plain, b.plain, a.plain_len));
    }
    check_echo(suite, secret, slen, &chunked);
    check_echo(suite, secret, slen, &whole);
    free(a.plain);
    free(b.plain);
    free(chunked.out);
    free(whole.out);
    free(made);
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#include "fuzz_replay.h"
#endif
