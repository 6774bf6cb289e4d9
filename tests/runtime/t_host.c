/*
 * t_host.c — a hostile test module for the host's extension imports (tmqtt_crypto,
 * tmqtt_ra, the TMQTT_HOST_IMPORTS announcement), SIGPIPE-free socket writes and the
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
    printf("tmqtt_ra=%s tmqtt_crypto=%s\n", import_state("tmqtt_ra"), import_state("tmqtt_crypto"));
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
    fprintf(stderr, "t_host: unknown command '%s'\n", cmd);
    return 64;
}
