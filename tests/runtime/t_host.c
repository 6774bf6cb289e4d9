/*
 * t_host.c — a hostile test module for the host's extension imports (tmqtt_crypto,
 * tmqtt_ra, tmqtt_event, the TMQTT_HOST_IMPORTS announcement), SIGPIPE-free socket writes and the
 * bulk-memory memcpy/memmove/memset. Compiled with clang --target=wasm32-wasi and run
 * by tests/runtime/driver.py under its own tmqtt-wasm (tmqtt-wasm-thost).
 *
 * "Hostile" means it hands the host what a compromised or buggy module would: pointers
 * past the end of linear memory, lengths that wrap 2^32, overlapping buffers, handles
 * that are zero, invented, freed, stale or carry another slot's tag. The host must
 * answer each with an errno and keep working. Sub-commands print "ok <what>" or
 * "FAIL <what>" and end with PASSED/FAILED (exit 0/1), like t_wasi.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/wasi_crypto.h"
#include "platform/wasi_event.h"
#include "platform/wasi_host.h"
#include "platform/wasi_ra.h"
#include "platform/wasi_socket.h"
#include "t_check.h"

static const char *import_state(const char *m)
{
    switch (tm_host_import(m)) {
    case TM_HOST_IMPORT_PRESENT: return "present";
    case TM_HOST_IMPORT_ABSENT: return "absent";
    default: return "unknown";
    }
}

static int cmd_imports(void)
{
    printf("tmqtt_ra=%s tmqtt_crypto=%s tmqtt_event=%s\n", import_state("tmqtt_ra"),
           import_state("tmqtt_crypto"), import_state("tmqtt_event"));
    return 0;
}

/* What provider_wasi.c does at broker start-up, without the broker. */
static int cmd_ra_require(void)
{
    char err[512];
    if (tm_host_import_require("tmqtt_ra", "formats", "attestation test", err, sizeof err) != 0) {
        printf("refused: %s\n", err);
        return 3;
    }
    uint8_t f[64];
    uint32_t n = 0;
    printf("formats errno=%u\n", tm_ra_formats(f, sizeof f, &n));
    return 0;
}

static int cmd_crypto_call(void)
{
    static const uint8_t key[16];
    uint64_t h = 0;
    printf("aead_new errno=%u\n", tm_crypto_aead_new(TM_CRYPTO_AES_128_GCM, key, sizeof key, &h));
    return 0;
}

/* -- tmqtt_crypto against hostile arguments ------------------------------------------------- */

#define P(addr) ((uint8_t *)(uintptr_t)(addr))

static int cmd_crypto(void)
{
    /* NIST GCM specification, test case 2: K = 0^128, IV = 0^96, P = 0^128. */
    static const uint8_t want_ct[16] = {0x03, 0x88, 0xda, 0xce, 0x60, 0xb6, 0xa3, 0x92,
                                        0xf3, 0x28, 0xc2, 0xb9, 0x71, 0xb2, 0xfe, 0x78};
    static const uint8_t want_tag[16] = {0xab, 0x6e, 0x47, 0xd4, 0x2c, 0xec, 0x13, 0xbd,
                                         0xf5, 0x3a, 0x67, 0xb2, 0x12, 0x57, 0xbd, 0xdf};
    static uint8_t key[32], iv[12], pt[16], big[64];
    uint8_t ct[16], tag[16], back[16];
    const uint32_t msz = (uint32_t)(__builtin_wasm_memory_size(0) * 65536u);
    uint64_t h = 0, h2 = 0, h3 = 0;

    /* creating */
    CHECK(tm_crypto_aead_new(0, key, 16, &h) == EINVAL, "algorithm 0 -> EINVAL");
    CHECK(tm_crypto_aead_new(4, key, 16, &h) == EINVAL, "algorithm 4 -> EINVAL");
    CHECK(tm_crypto_aead_new(TM_CRYPTO_AES_128_GCM, key, 32, &h) == EINVAL, "wrong key length -> EINVAL");
    CHECK(tm_crypto_aead_new(TM_CRYPTO_AES_128_GCM, P(msz - 8), 16, &h) == EFAULT,
          "key crossing the end of memory -> EFAULT");
    CHECK(tm_crypto_aead_new(TM_CRYPTO_AES_128_GCM, key, 16, (uint64_t *)P(msz - 4)) == EFAULT,
          "handle written past the end of memory -> EFAULT");
    CHECK(tm_crypto_aead_new(TM_CRYPTO_AES_128_GCM, key, 16, &h) == 0 && h != 0, "aead_new");

    /* the cipher */
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, pt, 16, ct, tag, 16) == 0 && !memcmp(ct, want_ct, 16) &&
              !memcmp(tag, want_tag, 16),
          "AES-128-GCM known answer (GCM spec test case 2)");
    CHECK(tm_crypto_aead_open(h, iv, 12, NULL, 0, ct, 16, tag, 16, back) == 0 && !memcmp(back, pt, 16),
          "open returns the plaintext");
    tag[5] ^= 1;
    memset(back, 0x55, sizeof back);
    CHECK(tm_crypto_aead_open(h, iv, 12, NULL, 0, ct, 16, tag, 16, back) == EBADMSG, "forged tag -> EBADMSG");
    CHECK(!memcmp(back, (uint8_t[16]){0}, 16), "no plaintext released after a failed tag");
    tag[5] ^= 1;
    memcpy(big, pt, 16);
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, big, 16, big, tag, 16) == 0 && !memcmp(big, want_ct, 16),
          "in place");
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, big, 32, big + 8, tag, 16) == EINVAL,
          "partially overlapping input and output -> EINVAL");
    CHECK(tm_crypto_aead_seal(h, P(msz - 16), 12, NULL, 0, P(msz - 16), 16, ct, tag, 16) == 0,
          "reading the last bytes of memory is allowed");

    /* lengths and bounds */
    CHECK(tm_crypto_aead_seal(h, iv, 11, NULL, 0, pt, 16, ct, tag, 16) == EINVAL, "11-byte nonce -> EINVAL");
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, pt, 16, ct, tag, 15) == EINVAL, "15-byte tag -> EINVAL");
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, pt, 0x7fffffffu, ct, tag, 16) == EINVAL,
          "length over 1 GiB -> EINVAL");
    CHECK(tm_crypto_aead_seal(h, P(msz - 4), 12, NULL, 0, pt, 16, ct, tag, 16) == EFAULT,
          "nonce crossing the end of memory -> EFAULT");
    CHECK(tm_crypto_aead_seal(h, iv, 12, P(msz - 1), 2, pt, 16, ct, tag, 16) == EFAULT,
          "AAD crossing the end of memory -> EFAULT");
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, P(0xfffffff0u), 0x20, P(0xfffffff0u), tag, 16) == EFAULT,
          "pointer + length wrapping 2^32 -> EFAULT");
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, pt, 16, P(msz - 8), tag, 16) == EFAULT,
          "output crossing the end of memory -> EFAULT");
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, pt, 16, ct, P(msz - 8), 16) == EFAULT,
          "tag crossing the end of memory -> EFAULT");
    CHECK(tm_crypto_aead_open(h, iv, 12, NULL, 0, ct, 16, P(0xfffffff8u), 16, back) == EFAULT,
          "open: tag out of bounds -> EFAULT");

    /* handles */
    CHECK(tm_crypto_aead_seal(0, iv, 12, NULL, 0, pt, 16, ct, tag, 16) == EBADF, "handle 0 -> EBADF");
    CHECK(tm_crypto_aead_seal(h ^ (1ull << 40), iv, 12, NULL, 0, pt, 16, ct, tag, 16) == EBADF,
          "right slot, wrong tag -> EBADF");
    CHECK(tm_crypto_aead_seal(h + 1, iv, 12, NULL, 0, pt, 16, ct, tag, 16) == EBADF, "unused slot -> EBADF");
    CHECK(tm_crypto_aead_seal((h & ~0xffffffffull) | 0xffffffffu, iv, 12, NULL, 0, pt, 16, ct, tag, 16) == EBADF,
          "slot index out of range -> EBADF");
    CHECK(tm_crypto_aead_new(TM_CRYPTO_CHACHA20_POLY1305, key, 32, &h3) == 0 && (uint32_t)h3 != (uint32_t)h,
          "a second context has its own slot");
    CHECK(tm_crypto_aead_seal((h & ~0xffffffffull) | (uint32_t)h3, iv, 12, NULL, 0, pt, 16, ct, tag, 16) == EBADF,
          "one context's tag with another's slot -> EBADF");
    CHECK(tm_crypto_aead_free(h) == 0, "aead_free");
    CHECK(tm_crypto_aead_free(h) == EBADF, "double free -> EBADF");
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, pt, 16, ct, tag, 16) == EBADF, "use after free -> EBADF");
    CHECK(tm_crypto_aead_new(TM_CRYPTO_AES_128_GCM, key, 16, &h2) == 0 && (uint32_t)h2 == (uint32_t)h && h2 != h,
          "a freed slot is reused with a fresh tag");
    CHECK(tm_crypto_aead_seal(h, iv, 12, NULL, 0, pt, 16, ct, tag, 16) == EBADF,
          "the stale handle of a reused slot -> EBADF");
    CHECK(tm_crypto_aead_seal(h2, iv, 12, NULL, 0, pt, 16, ct, tag, 16) == 0 && !memcmp(ct, want_ct, 16),
          "the new handle works");
    CHECK(tm_crypto_aead_free(h2) == 0 && tm_crypto_aead_free(h3) == 0, "free the rest");
    return done();
}

/* With --max-fds 16 the host allows 64 live contexts. */
static int cmd_crypto_limit(void)
{
    static const uint8_t key[16];
    static uint64_t hs[200];
    int n = 0;
    uint32_t e = 0;
    while (n < 200 && (e = tm_crypto_aead_new(TM_CRYPTO_AES_128_GCM, key, 16, &hs[n])) == 0) n++;
    printf("created %d, then errno %u\n", n, e);
    CHECK(e == ENFILE, "the limit answers ENFILE");
    CHECK(tm_crypto_aead_free(hs[0]) == 0 && tm_crypto_aead_new(TM_CRYPTO_AES_128_GCM, key, 16, &hs[0]) == 0,
          "after a free, one more fits");
    for (int i = 0; i < n; i++) tm_crypto_aead_free(hs[i]);
    return done();
}

/* -- tmqtt_event: readiness sets ------------------------------------------------------------ */

/* A connected pair over 127.0.0.1 (needs --addr-pool 127.0.0.1/32): *a the client side,
 * *b the accepted side. */
static int tcp_pair(int lst, const struct sockaddr_in *at, int *a, int *b)
{
    *a = socket(AF_INET, SOCK_STREAM, 0);
    if (*a < 0 || connect(*a, (const struct sockaddr *)at, sizeof *at) != 0) return -1;
    *b = accept(lst, NULL, NULL);
    return *b < 0 ? -1 : 0;
}

static uint32_t wait_set(uint32_t set, tm_event_rec *rec, uint32_t max, int32_t ms, uint32_t *n)
{
    *n = 0xffffffffu;
    return tm_event_wait(set, rec, max, ms, n);
}

static int cmd_event(void)
{
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof at;
    int lst = socket(AF_INET, SOCK_STREAM, 0);
    if (lst < 0 || bind(lst, (struct sockaddr *)&at, sizeof at) != 0 || listen(lst, 8) != 0 ||
        getsockname(lst, (struct sockaddr *)&at, &al) != 0)
        return 2;
    int a1, b1, a2, b2;
    if (tcp_pair(lst, &at, &a1, &b1) != 0 || tcp_pair(lst, &at, &a2, &b2) != 0) return 2;

    uint32_t set = 99, n = 0;
    static tm_event_rec rec[TM_EVENT_MAX];
    CHECK(tm_event_create(&set) == 0 && set < 8, "create");
    CHECK(tm_event_ctl(set, TM_EVENT_ADD, (uint32_t)a1, TM_EVENT_READ) == 0, "add a socket for reading");
    CHECK(tm_event_ctl(set, TM_EVENT_ADD, (uint32_t)a1, TM_EVENT_READ) == EEXIST, "add twice: EEXIST");
    CHECK(tm_event_ctl(set, TM_EVENT_ADD, (uint32_t)a2, TM_EVENT_READ) == 0, "add a second one");
    CHECK(wait_set(set, rec, TM_EVENT_MAX, 0, &n) == 0 && n == 0, "nothing ready: 0 records at once");

    /* readiness in the order it happened: b2's byte first, then b1's */
    CHECK(write(b2, "x", 1) == 1 && write(b1, "y", 1) == 1, "two peers write, second pair first");
    /* loopback may hand the second byte over a little later: gather the fds in the
     * order first reported (level-triggered, a reported one stays ahead in the queue) */
    uint32_t seen[2], nseen = 0, flags_ok = 1;
    for (int tries = 0; tries < 50 && nseen < 2; tries++) {
        if (wait_set(set, rec, TM_EVENT_MAX, 100, &n) != 0) break;
        for (uint32_t i = 0; i < n && i < TM_EVENT_MAX; i++) {
            if (rec[i].flags != TM_EVENT_READ) flags_ok = 0;
            if (!(nseen && seen[0] == rec[i].fd) && nseen < 2) seen[nseen++] = rec[i].fd;
        }
    }
    CHECK(nseen == 2 && flags_ok, "both reported, readable");
    CHECK(nseen == 2 && seen[0] == (uint32_t)a2 && seen[1] == (uint32_t)a1,
          "records carry the module's fds, in the order they became ready");
    CHECK(wait_set(set, rec, 1, 5000, &n) == 0 && n == 1, "max 1: one record");
    char c;
    CHECK(read(a1, &c, 1) == 1 && read(a2, &c, 1) == 1, "drained");
    CHECK(wait_set(set, rec, TM_EVENT_MAX, 0, &n) == 0 && n == 0, "level-triggered: drained, nothing");

    CHECK(tm_event_ctl(set, TM_EVENT_MOD, (uint32_t)a1, TM_EVENT_WRITE) == 0, "mod to writing");
    CHECK(wait_set(set, rec, TM_EVENT_MAX, 5000, &n) == 0 && n == 1 && rec[0].fd == (uint32_t)a1 &&
          rec[0].flags == TM_EVENT_WRITE, "writable reported");
    CHECK(tm_event_ctl(set, TM_EVENT_MOD, (uint32_t)a1, 0) == 0, "mod to no events (parked)");
    CHECK(wait_set(set, rec, TM_EVENT_MAX, 0, &n) == 0 && n == 0, "parked: nothing");
    close(b1);
    shutdown(a1, SHUT_WR); /* both halves closed now */
    CHECK(wait_set(set, rec, TM_EVENT_MAX, 5000, &n) == 0 && n == 1 && rec[0].fd == (uint32_t)a1 &&
          (rec[0].flags & TM_EVENT_HANGUP), "parked, peer gone: hang-up reported anyway");
    CHECK(tm_event_ctl(set, TM_EVENT_DEL, (uint32_t)a1, 0) == 0, "del");
    CHECK(tm_event_ctl(set, TM_EVENT_DEL, (uint32_t)a1, 0) == ENOENT, "del twice: ENOENT");
    CHECK(write(b2, "z", 1) == 1 && close(a2) == 0, "a registered socket closed with data waiting");
    CHECK(wait_set(set, rec, TM_EVENT_MAX, 0, &n) == 0 && n == 0, "closed: forgotten, as epoll does");

    /* hostile arguments */
    CHECK(tm_event_ctl(set, TM_EVENT_ADD, 4000, TM_EVENT_READ) == EBADF, "an fd the module does not hold: EBADF");
    CHECK(tm_event_ctl(set, TM_EVENT_ADD, 3, TM_EVENT_READ) == EBADF, "fd 3, a preopened directory: EBADF");
    CHECK(tm_event_ctl(set, 7, (uint32_t)a1, TM_EVENT_READ) == EINVAL, "unknown op: EINVAL");
    CHECK(tm_event_ctl(set, TM_EVENT_ADD, (uint32_t)a1, 0x10) == EINVAL, "unknown event bits: EINVAL");
    CHECK(tm_event_ctl(8, TM_EVENT_ADD, (uint32_t)a1, TM_EVENT_READ) == EBADF, "handle out of range: EBADF");
    CHECK(tm_event_ctl(0xffffffffu, TM_EVENT_ADD, (uint32_t)a1, TM_EVENT_READ) == EBADF, "handle -1: EBADF");
    CHECK(tm_event_wait(set, (tm_event_rec *)(uintptr_t)0xfffffff8u, 2, 0, &n) == EFAULT,
          "records past the end of memory: EFAULT");
    CHECK(tm_event_wait(set, rec, 0, 0, &n) == EINVAL, "max 0: EINVAL");
    CHECK(tm_event_wait(set, rec, TM_EVENT_MAX + 1, 0, &n) == EINVAL, "max above TM_EVENT_MAX: EINVAL");
    CHECK(tm_event_wait(set, rec, 1, 0, (uint32_t *)(uintptr_t)0xfffffffeu) == EFAULT, "count pointer: EFAULT");
    CHECK(tm_event_create((uint32_t *)(uintptr_t)0xfffffffeu) == EFAULT, "create, bad pointer: EFAULT");

    /* eight sets at most; destroyed ones are reused */
    uint32_t sets[8];
    int made = 0;
    uint32_t e = 0;
    while (made < 8 && (e = tm_event_create(&sets[made])) == 0) made++;
    printf("created %d more, then errno %u\n", made, e);
    CHECK(made == 7 && e == EMFILE, "the eighth set is the last: EMFILE");
    for (int i = 0; i < made; i++) tm_event_destroy(sets[i]);
    CHECK(tm_event_destroy(set) == 0, "destroy");
    CHECK(tm_event_destroy(set) == EBADF, "destroy twice: EBADF");
    CHECK(tm_event_wait(set, rec, 1, 0, &n) == EBADF, "wait on a destroyed set: EBADF");
    close(a1);
    close(b2);
    close(lst);
    return done();
}

/* -- a write to a connection the peer reset -------------------------------------------------- */

static int cmd_write_reset(const char *host, const char *port, const char *how)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0) return 2;
    int s = socket(res->ai_family, SOCK_STREAM, 0);
    if (s < 0 || connect(s, res->ai_addr, res->ai_addrlen) != 0) return 2;
    freeaddrinfo(res);
    CHECK(send(s, "x", 1, 0) == 1, "sent one byte");
    char b[16];
    ssize_t r = recv(s, b, sizeof b, 0); /* the peer answers with a reset */
    printf("recv -> %zd errno %d\n", r, r < 0 ? errno : 0);
    int e = 0;
    for (int i = 0; i < 100 && !e; i++) {
        ssize_t w = !strcmp(how, "send") ? send(s, "data", 4, 0) : write(s, "data", 4);
        if (w < 0) e = errno;
    }
    printf("%s after reset: errno %d (%s)\n", how, e, strerror(e));
    CHECK(e == EPIPE || e == ECONNRESET, "the module sees EPIPE/ECONNRESET and lives on");
    close(s);
    return done();
}

/* -- memcpy, memmove, memset against byte-at-a-time references ------------------------------- */

static void ref_move(volatile uint8_t *d, const volatile uint8_t *s, size_t n)
{
    if (d < s)
        for (size_t i = 0; i < n; i++) d[i] = s[i];
    else
        for (size_t i = n; i-- > 0;) d[i] = s[i];
}

static int cmd_memops(void)
{
    /* Called through volatile pointers: the library functions themselves, not inlined. */
    void *(*volatile cpy)(void *restrict, const void *restrict, size_t) = memcpy;
    void *(*volatile mov)(void *, const void *, size_t) = memmove;
    void *(*volatile set)(void *, int, size_t) = memset;
    static uint8_t a[1024], b[1024];
    int bad_cpy = 0, bad_mov = 0, bad_set = 0;
    for (size_t n = 0; n < 300; n += (n < 40 ? 1 : 37)) {
        for (size_t off = 0; off < 8; off++) {
            for (size_t i = 0; i < sizeof a; i++) a[i] = b[i] = (uint8_t)(i * 13 + n);
            if (cpy(a + 512 + off, a + off, n) != a + 512 + off) bad_cpy++;
            ref_move(b + 512 + off, b + off, n);
            if (memcmp(a, b, sizeof a)) bad_cpy++;
            for (int dir = 0; dir < 2; dir++) { /* overlapping, both directions */
                size_t d = dir ? 100 + off : 100, s = dir ? 100 : 100 + off;
                if (mov(a + d, a + s, n) != a + d) bad_mov++;
                ref_move(b + d, b + s, n);
                if (memcmp(a, b, sizeof a)) bad_mov++;
            }
            if (set(a + 300 + off, (int)(0x100 + n), n) != a + 300 + off) bad_set++; /* c is converted */
            for (size_t i = 0; i < n; i++) ((volatile uint8_t *)b)[300 + off + i] = (uint8_t)n;
            if (memcmp(a, b, sizeof a)) bad_set++;
        }
    }
    CHECK(bad_cpy == 0, "memcpy: sizes 0..299, every alignment");
    CHECK(bad_mov == 0, "memmove: overlapping forwards and backwards");
    CHECK(bad_set == 0, "memset: value converted to unsigned char");
    return done();
}

/* Says "ready", then blocks until stdin closes (the driver inspects the process). */
static int cmd_wait(void)
{
    char b[16];
    printf("ready\n");
    fflush(stdout);
    while (read(0, b, sizeof b) > 0) {
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "wait")) return cmd_wait();
    if (!strcmp(cmd, "imports")) return cmd_imports();
    if (!strcmp(cmd, "ra-require")) return cmd_ra_require();
    if (!strcmp(cmd, "crypto-call")) return cmd_crypto_call();
    if (!strcmp(cmd, "crypto")) return cmd_crypto();
    if (!strcmp(cmd, "crypto-limit")) return cmd_crypto_limit();
    if (!strcmp(cmd, "write-reset") && argc > 4) return cmd_write_reset(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "memops")) return cmd_memops();
    if (!strcmp(cmd, "event")) return cmd_event();
    fprintf(stderr, "t_host: unknown command '%s'\n", cmd);
    return 64;
}
