/*
 * test_tls_record.c — the server's own TLS 1.3 record layer (src/net/
 * tls_record.c) and the takeover after the handshake (src/net/stream_tls.c),
 * against a real OpenSSL client driven in the same thread.
 *
 * The client's SSL works on memory BIOs; the test carries its bytes over a
 * socketpair to our server stream (all at once, one byte at a time, or
 * tampered with) and brings the server's bytes back. Records a well-behaved
 * client never sends (split KeyUpdates, padding, stray types, overlong
 * plaintext) are sealed by the test itself: the client's traffic secret
 * comes from the client's key log, and the keys are derived here with a
 * built HkdfLabel over EVP_PKEY HKDF, independently of tls_record.c (which
 * uses TLS13-KDF). Alerts the server sends are read by the client (info
 * callback), KeyUpdates and tickets it receives are counted (msg callback).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/loop.h"
#include "net/sock.h"
#include "net/stream.h"
#include "net/tls.h"
#include "net/tls_int.h"
#include "net/tls_record.h"
#include "test_pki.h"
#include "tls13_sealer.h"
#include "tm_test.h"

/* ---- certificates ------------------------------------------------------------- */

static char g_dir[64];
static char g_ca[128], g_cert[128], g_key[128], g_ccert[128], g_ckey[128];

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    if (x)
        PEM_write_X509(f, x);
    if (k)
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static void setup_once(void)
{
    if (g_dir[0])
        return;
    snprintf(g_dir, sizeof g_dir, "/tmp/tm_tlsrec_test.XXXXXX");
    if (!mkdtemp(g_dir))
        abort();
    snprintf(g_ca, sizeof g_ca, "%s/ca.pem", g_dir);
    snprintf(g_cert, sizeof g_cert, "%s/server.pem", g_dir);
    snprintf(g_key, sizeof g_key, "%s/server.key", g_dir);
    snprintf(g_ccert, sizeof g_ccert, "%s/client.pem", g_dir);
    snprintf(g_ckey, sizeof g_ckey, "%s/client.key", g_dir);
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *sk = EVP_EC_gen("P-256"), *ck = EVP_EC_gen("P-256");
    X509 *ca = tm_test_mkcert("tmqtt test CA", cak, NULL, NULL, true);
    X509 *sc = tm_test_mkcert("localhost", sk, ca, cak, false);
    X509 *cc = tm_test_mkcert("client-1", ck, ca, cak, false);
    write_pem(g_ca, ca, NULL);
    write_pem(g_cert, sc, NULL);
    write_pem(g_key, NULL, sk);
    write_pem(g_ccert, cc, NULL);
    write_pem(g_ckey, NULL, ck);
    X509_free(ca);
    X509_free(sc);
    X509_free(cc);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
}

static void cleanup(void)
{
    const char *files[] = {g_ca, g_cert, g_key, g_ccert, g_ckey};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(g_dir);
}

/* ---- a client and our server over a socketpair ------------------------------------ */

typedef struct pair {
    tm_tls_server *srv;
    tm_stream *st;               /* our server stream */
    int cfd;                     /* the client's end of the socketpair */
    SSL_CTX *cctx;
    SSL *cli;
    BIO *crb, *cwb;              /* the client's memory BIOs */
    uint8_t *c2s;                /* client output not yet on the socket */
    size_t c2s_len, c2s_cap;
    bool eof;                    /* the server half-closed the socket */
    /* seen by the client */
    uint8_t csecret[48];         /* CLIENT_TRAFFIC_SECRET_0 (key log) */
    size_t csecret_len;
    int key_updates, key_update_requests, tickets;
    int alert;                   /* last alert received (-1 none) */
} pair;

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void client_keylog(const SSL *ssl, const char *line)
{
    static const char lbl[] = "CLIENT_TRAFFIC_SECRET_0 ";
    pair *p = SSL_get_app_data(ssl);
    if (strncmp(line, lbl, sizeof lbl - 1))
        return;
    const char *h = line + sizeof lbl - 1 + 65;
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n && i < sizeof p->csecret; i++)
        p->csecret[i] = (uint8_t)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
    p->csecret_len = n;
}

static void client_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg)
{
    pair *p = SSL_get_app_data(ssl);
    const uint8_t *b = buf;
    if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 1)
        return;
    if (b[0] == SSL3_MT_KEY_UPDATE) {
        p->key_updates++;
        if (len == 5 && b[4] == 1)
            p->key_update_requests++;
    }
    if (b[0] == SSL3_MT_NEWSESSION_TICKET)
        p->tickets++;
}

static void client_info(const SSL *ssl, int where, int ret)
{
    pair *p = SSL_get_app_data(ssl);
    if (where & SSL_CB_READ_ALERT)
        p->alert = ret & 0xff;
}

typedef struct client_opts {
    const char *suites;          /* TLS 1.3 suites offered (NULL: OpenSSL's default) */
    int max_version;             /* 0: none */
    bool cert;                   /* present the client certificate */
} client_opts;

static bool pair_open(pair *p, const tm_tls_server_opts *so, const client_opts *co)
{
    memset(p, 0, sizeof *p);
    p->alert = -1;
    char err[256] = "";
    p->srv = tm_tls_server_new(so, err, sizeof err);
    if (!p->srv) {
        fprintf(stderr, "tm_tls_server_new: %s\n", err);
        return false;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return false;
    tm_sock_nonblock(sv[0]);
    tm_sock_nonblock(sv[1]);
    p->cfd = sv[1];
    tm_stream *tcp = tm_stream_tcp(sv[0]);
    p->st = tcp ? tm_stream_tls_server(p->srv, tcp, err, sizeof err) : NULL;
    if (!p->st)
        return false;
    p->cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_keylog_callback(p->cctx, client_keylog);
    SSL_CTX_set_verify(p->cctx, SSL_VERIFY_NONE, NULL);
    if (co && co->max_version)
        SSL_CTX_set_max_proto_version(p->cctx, co->max_version);
    if (co && co->cert && (SSL_CTX_use_certificate_file(p->cctx, g_ccert, SSL_FILETYPE_PEM) != 1 ||
                           SSL_CTX_use_PrivateKey_file(p->cctx, g_ckey, SSL_FILETYPE_PEM) != 1))
        return false;
    p->cli = SSL_new(p->cctx);
    SSL_set_app_data(p->cli, p);
    if (co && co->suites && !SSL_set_ciphersuites(p->cli, co->suites))
        return false;
    SSL_set_msg_callback(p->cli, client_msg);
    SSL_set_info_callback(p->cli, client_info);
    p->crb = BIO_new(BIO_s_mem());
    p->cwb = BIO_new(BIO_s_mem());
    SSL_set_bio(p->cli, p->crb, p->cwb);
    SSL_set_connect_state(p->cli);
    return true;
}

static void pair_close(pair *p)
{
    tm_stream_free(p->st);
    tm_tls_server_free(p->srv);
    SSL_free(p->cli);
    SSL_CTX_free(p->cctx);
    close(p->cfd);
    free(p->c2s);
    ERR_clear_error();
}

static void c2s_add(pair *p, const void *b, size_t n)
{
    if (p->c2s_len + n > p->c2s_cap) {
        p->c2s_cap = (p->c2s_len + n) * 2;
        p->c2s = realloc(p->c2s, p->c2s_cap);
        if (!p->c2s)
            abort();
    }
    memcpy(p->c2s + p->c2s_len, b, n);
    p->c2s_len += n;
}

/* What the client wrote, into c2s. */
static void c_take(pair *p)
{
    char b[16384];
    int n;
    while ((n = BIO_read(p->cwb, b, sizeof b)) > 0)
        c2s_add(p, b, (size_t)n);
}

/* Up to max bytes of c2s onto the socket; how many went. */
static size_t to_server(pair *p, size_t max)
{
    size_t k = p->c2s_len < max ? p->c2s_len : max;
    ssize_t w = k ? send(p->cfd, p->c2s, k, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
    if (w <= 0)
        return 0;
    memmove(p->c2s, p->c2s + w, p->c2s_len - (size_t)w);
    p->c2s_len -= (size_t)w;
    return (size_t)w;
}

/* Everything the server sent, into the client's BIO. */
static size_t to_client(pair *p)
{
    uint8_t b[65536];
    size_t total = 0;
    ssize_t r;
    while ((r = recv(p->cfd, b, sizeof b, MSG_DONTWAIT)) > 0) {
        BIO_write(p->crb, b, (int)r);
        total += (size_t)r;
    }
    if (r == 0)
        p->eof = true;
    return total;
}

static bool pair_handshake(pair *p)
{
    bool cdone = false, sdone = false;
    for (int i = 0; i < 200 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(p->cli);
            if (r == 1)
                cdone = true;
            else if (SSL_get_error(p->cli, r) != SSL_ERROR_WANT_READ)
                return false;
        }
        c_take(p);
        to_server(p, SIZE_MAX);
        if (!sdone) {
            unsigned want = 0;
            int r = tm_stream_handshake(p->st, &want);
            if (r < 0) {
                fprintf(stderr, "server handshake: %s\n", tm_stream_error(p->st));
                return false;
            }
            sdone = r == 1;
        }
        to_client(p);
    }
    return cdone && sdone;
}

static bool open_and_handshake(pair *p, const tm_tls_server_opts *so, const client_opts *co)
{
    return pair_open(p, so, co) && pair_handshake(p);
}

static tm_tls_server_opts server_opts(void)
{
    return (tm_tls_server_opts){.certfile = g_cert, .keyfile = g_key};
}

static const char *const SUITES[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                     "TLS_CHACHA20_POLY1305_SHA256"};
static const uint16_t SUITE_IDS[] = {0x1301, 0x1302, 0x1303};

/* The default server and a client offering only SUITES[si]. */
static bool open_suite(pair *p, size_t si)
{
    tm_tls_server_opts so = server_opts();
    client_opts co = {.suites = SUITES[si]};
    return open_and_handshake(p, &so, &co);
}

/* Reads from the server stream, `chunk` bytes at most per call, until cap
 * bytes came or nothing more is in flight. Bytes read; -1 / 0 when the
 * stream failed / ended before anything was read. */
static long s_read(pair *p, uint8_t *buf, size_t cap, size_t chunk)
{
    size_t got = 0;
    for (int i = 0; i < 1000000 && got < cap; i++) {
        to_server(p, SIZE_MAX);
        unsigned want = 0;
        size_t ask = cap - got < chunk ? cap - got : chunk;
        long r = tm_stream_read(p->st, buf + got, ask, &want);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == -2 && p->c2s_len)
            continue;
        if (r == -2)
            break;
        return got ? (long)got : r;
    }
    return (long)got;
}

/* What the client can read now, appended to out (cap). */
static void c_drain(pair *p, uint8_t *out, size_t *got, size_t cap)
{
    to_client(p);
    int r;
    while (*got < cap && (r = SSL_read(p->cli, out + *got, (int)(cap - *got))) > 0)
        *got += (size_t)r;
}

/* The server writes all of b (the client reading whenever the socket is
 * full, as netsrv retries: the same bytes again); the client's bytes in out. */
static bool s_write_all(pair *p, const uint8_t *b, size_t n, uint8_t *out, size_t *got,
                        size_t cap)
{
    size_t off = 0;
    for (int i = 0; i < 1000000 && off < n; i++) {
        unsigned want = 0;
        long r = tm_stream_write(p->st, b + off, n - off, &want);
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        if (r != -2 || !(want & TM_EV_WRITE)) {
            fprintf(stderr, "server write: %ld %s\n", r, tm_stream_error(p->st));
            return false;
        }
        c_drain(p, out, got, cap);
    }
    c_drain(p, out, got, cap);
    return off == n;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (uint8_t)(seed >> 16);
    }
}

static bool has(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        return true;
    fprintf(stderr, "  expected \"%s\" in \"%s\"\n", needle, hay);
    return false;
}

/* ---- a client's records sealed by the test (tls13_sealer.h) ----------------------- */

typedef tm_test_sealer sealer;

/* The client's sender from its key log; the client SSL must not have sent
 * application data (its sequence number is then 0). */
static void sealer_init(sealer *s, pair *p)
{
    tm_test_sealer_init(s, SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p->cli)),
                        p->csecret);
}

static void sealer_next(sealer *s) { tm_test_sealer_next(s); }

/* A record whose TLSInnerPlaintext is inner[0..n) exactly, appended to c2s. */
static void seal_inner(pair *p, sealer *s, const uint8_t *inner, size_t n)
{
    uint8_t *rec = malloc(n + 21);
    c2s_add(p, rec, tm_test_seal(s, inner, n, rec));
    free(rec);
}

/* A record of `type` with content b[0..n) and `pad` zero bytes. */
static void seal_rec(pair *p, sealer *s, uint8_t type, const void *b, size_t n, size_t pad)
{
    uint8_t *inner = calloc(1, n + 1 + pad);
    if (n)
        memcpy(inner, b, n);
    inner[n] = type;
    seal_inner(p, s, inner, n + 1 + pad);
    free(inner);
}

/* ---- the takeover ------------------------------------------------------------------ */


static const size_t SIZES[] = {0, 1, 100, 16383, 16384, 16385, 32768, 32769, 49152, 65536};

/* Every suite: the SSL is freed at the end of the handshake, data of every
 * size crosses both ways intact, and no ticket came (they would be
 * OpenSSL's records under the application keys). */
static void test_takeover_and_data_each_suite(void)
{
    setup_once();
    enum { MAXN = 65536 };
    uint8_t *in = malloc(MAXN), *out = malloc(MAXN);
    for (size_t si = 0; si < 3; si++) {
        pair p;
        unsigned long freed = tm_tls_ssl_freed();
        TM_CHECK(open_suite(&p, si));
        TM_CHECK_EQ(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p.cli)), SUITE_IDS[si]);
        TM_CHECK(!strcmp(tm_stream_tls_record_layer(p.st), "tmqtt"));
        TM_CHECK(tm_stream_tls_ssl(p.st) == NULL);
        TM_CHECK_EQ(tm_tls_ssl_freed(), freed + 1);   /* the server's SSL is gone */
        TM_CHECK_EQ(tm_stream_tls_buffered(p.st), 0);
        for (size_t k = 0; k < sizeof SIZES / sizeof SIZES[0]; k++) {
            size_t n = SIZES[k];
            fill(in, n, (unsigned)(n + si));
            if (n) {   /* client -> server (OpenSSL sends no empty records) */
                TM_CHECK_EQ(SSL_write(p.cli, in, (int)n), n);
                c_take(&p);
                memset(out, 0, n);
                TM_CHECK_EQ(s_read(&p, out, n, MAXN), n);
                TM_CHECK_MEM(out, in, n);
            }
            size_t got = 0;   /* server -> client */
            TM_CHECK(s_write_all(&p, in, n, out, &got, MAXN));
            TM_CHECK_EQ(got, n);
            TM_CHECK_MEM(out, in, n);
        }
        TM_CHECK_EQ(tm_stream_tls_buffered(p.st), 0);   /* idle: no buffers */
        TM_CHECK_EQ(p.tickets, 0);
        pair_close(&p);
    }
    free(in);
    free(out);
}

/* The ciphertext arrives one byte at a time and is read in 7-byte pieces:
 * partial headers, partial records and decrypted bytes kept for the next
 * read (announced by `pending`). */
static void test_one_byte_at_a_time(void)
{
    setup_once();
    pair p;
    tm_tls_server_opts so = server_opts();
    TM_CHECK(open_and_handshake(&p, &so, NULL));
    static const size_t sizes[] = {1, 16384, 20000, 3};
    size_t total = 0;
    uint8_t *in = malloc(40000), *out = malloc(40000);
    fill(in, 40000, 7);
    for (size_t i = 0; i < 4; i++) {
        TM_CHECK_EQ(SSL_write(p.cli, in + total, (int)sizes[i]), sizes[i]);
        total += sizes[i];
    }
    c_take(&p);
    size_t got = 0;
    bool saw_pending = false, saw_partial = false;
    for (int i = 0; i < 200000 && got < total; i++) {
        to_server(&p, 1);
        unsigned want = 0;
        long r = tm_stream_read(p.st, out + got, 7, &want);
        if (r > 0)
            got += (size_t)r;
        else
            TM_CHECK_EQ(r, -2);
        if (r == -2 && tm_stream_tls_buffered(p.st))
            saw_partial = true;
        if (tm_stream_pending(p.st))
            saw_pending = true;
    }
    TM_CHECK_EQ(got, total);
    TM_CHECK_MEM(out, in, total);
    TM_CHECK(saw_pending);
    TM_CHECK(saw_partial);
    TM_CHECK(!tm_stream_pending(p.st));
    TM_CHECK_EQ(tm_stream_tls_buffered(p.st), 0);
    free(in);
    free(out);
    pair_close(&p);
}

/* Many records in the socket at once: one read returns all of them. */
static void test_many_records_one_read(void)
{
    setup_once();
    pair p;
    tm_tls_server_opts so = server_opts();
    TM_CHECK(open_and_handshake(&p, &so, NULL));
    uint8_t in[5000], out[65536];
    fill(in, sizeof in, 3);
    for (size_t i = 0; i < 50; i++)
        TM_CHECK_EQ(SSL_write(p.cli, in + i * 100, 100), 100);
    c_take(&p);
    TM_CHECK_EQ(to_server(&p, SIZE_MAX), 50 * (100 + 22));
    unsigned want = 0;
    TM_CHECK_EQ(tm_stream_read(p.st, out, sizeof out, &want), sizeof in);
    TM_CHECK_MEM(out, in, sizeof in);
    pair_close(&p);
}

/* KeyUpdate from a real client: update_requested is answered with our own
 * KeyUpdate (the client sees it), data flows both ways after it; two in one
 * read; update_not_requested gets no answer. */
static void test_key_update_from_client(void)
{
    setup_once();
    for (size_t si = 0; si < 3; si++) {
        pair p;
        TM_CHECK(open_suite(&p, si));
        uint8_t out[256];
        size_t got = 0;
        TM_CHECK(SSL_key_update(p.cli, SSL_KEY_UPDATE_REQUESTED) == 1);
        TM_CHECK_EQ(SSL_write(p.cli, "after", 5), 5);
        c_take(&p);
        TM_CHECK_EQ(s_read(&p, out, 5, 256), 5);
        TM_CHECK_MEM(out, "after", 5);
        TM_CHECK(s_write_all(&p, (const uint8_t *)"reply", 5, out, &got, sizeof out));
        TM_CHECK_EQ(got, 5);
        TM_CHECK_MEM(out, "reply", 5);
        TM_CHECK_EQ(p.key_updates, 1);           /* our answer reached the client */
        TM_CHECK_EQ(p.key_update_requests, 0);   /* ... as update_not_requested */
        /* two requests and their data in one read */
        TM_CHECK(SSL_key_update(p.cli, SSL_KEY_UPDATE_REQUESTED) == 1);
        TM_CHECK_EQ(SSL_write(p.cli, "one", 3), 3);
        TM_CHECK(SSL_key_update(p.cli, SSL_KEY_UPDATE_REQUESTED) == 1);
        TM_CHECK_EQ(SSL_write(p.cli, "two", 3), 3);
        c_take(&p);
        to_server(&p, SIZE_MAX);
        unsigned want = 0;
        TM_CHECK_EQ(tm_stream_read(p.st, out, sizeof out, &want), 6);
        TM_CHECK_MEM(out, "onetwo", 6);
        got = 0;
        TM_CHECK(s_write_all(&p, (const uint8_t *)"three", 5, out, &got, sizeof out));
        TM_CHECK_EQ(got, 5);
        TM_CHECK_MEM(out, "three", 5);
        TM_CHECK(p.key_updates == 2 || p.key_updates == 3);   /* answers may coalesce */
        /* not requested: no answer */
        int before = p.key_updates;
        TM_CHECK(SSL_key_update(p.cli, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
        TM_CHECK_EQ(SSL_write(p.cli, "four", 4), 4);
        c_take(&p);
        TM_CHECK_EQ(s_read(&p, out, 4, 256), 4);
        TM_CHECK_MEM(out, "four", 4);
        got = 0;
        TM_CHECK(s_write_all(&p, (const uint8_t *)"five", 4, out, &got, sizeof out));
        TM_CHECK_EQ(got, 4);
        TM_CHECK_EQ(p.key_updates, before);
        TM_CHECK(!tm_stream_error(p.st)[0]);
        pair_close(&p);
    }
}

/* Opens a pair whose client records are sealed by the test. */
static bool crafted(pair *p, sealer *s, size_t si)
{
    if (!open_suite(p, si) || !p->csecret_len)
        return false;
    sealer_init(s, p);
    return true;
}

/* After a fatal error: the stream failed with `why`, the client received
 * `alert` (-1: none), and the server writes nothing more. */
static void expect_fatal(pair *p, const char *why, int alert)
{
    uint8_t out[64];
    TM_CHECK_EQ(s_read(p, out, sizeof out, sizeof out), -1);
    TM_CHECK(p->st->failed);
    TM_CHECK(has(tm_stream_error(p->st), why));
    size_t got = 0;
    c_drain(p, out, &got, sizeof out);
    TM_CHECK_EQ(got, 0);
    TM_CHECK_EQ(p->alert, alert);
    unsigned want = 0;
    TM_CHECK_EQ(tm_stream_write(p->st, "x", 1, &want), -1);
}

/* KeyUpdate split over two records, padding, empty records, user_canceled:
 * all accepted; our answer to the split request is under the old key, data
 * after it under the new one (the real client reads both). */
static void test_crafted_records_accepted(void)
{
    setup_once();
    for (size_t si = 0; si < 3; si++) {
        pair p;
        sealer s;
        TM_CHECK(crafted(&p, &s, si));
        static const uint8_t ku1[] = {24, 0}, ku2[] = {0, 1, 1};   /* update_requested */
        seal_rec(&p, &s, 23, "abc", 3, 0);
        seal_rec(&p, &s, 22, ku1, sizeof ku1, 0);
        seal_rec(&p, &s, 22, ku2, sizeof ku2, 5);   /* padded too */
        sealer_next(&s);
        seal_rec(&p, &s, 23, "def", 3, 300);
        seal_rec(&p, &s, 23, "", 0, 0);              /* empty application data */
        static const uint8_t cancel[] = {1, 90};
        seal_rec(&p, &s, 21, cancel, 2, 0);          /* user_canceled: ignored */
        seal_rec(&p, &s, 23, "ghi", 3, 16384 - 3);   /* TLSInnerPlaintext of 2^14 + 1 */
        uint8_t out[64];
        TM_CHECK_EQ(s_read(&p, out, 9, sizeof out), 9);
        TM_CHECK_MEM(out, "abcdefghi", 9);
        size_t got = 0;
        TM_CHECK(s_write_all(&p, (const uint8_t *)"ok", 2, out, &got, sizeof out));
        TM_CHECK_EQ(got, 2);
        TM_CHECK_MEM(out, "ok", 2);
        TM_CHECK_EQ(p.key_updates, 1);
        TM_CHECK(!p.st->failed);
        pair_close(&p);
    }
}

/* Records that break RFC 8446: each is fatal, with its alert. */
static void test_crafted_records_refused(void)
{
    setup_once();
    static const uint8_t two_ku[] = {24, 0, 0, 1, 0, 24, 0, 0, 1, 0};
    static const uint8_t nst[] = {4, 0, 0, 0};
    static const uint8_t ku_bad_len[] = {24, 0, 0, 2, 0, 0};
    static const uint8_t ku_bad_req[] = {24, 0, 0, 1, 2};
    static const uint8_t ku_head[] = {24, 0, 0};
    static const uint8_t fatal_alert[] = {2, 40};
    static const uint8_t long_alert[] = {2, 40, 0};
    static const uint8_t zeros[] = {0, 0, 0, 0};
    static const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
    static const uint8_t old_version[] = {23, 3, 1, 0, 20};
    static const uint8_t too_long[] = {23, 3, 3, 0x41, 0x01};   /* 2^14 + 257 */
    static const uint8_t too_short[] = {23, 3, 3, 0, 15};
    static const uint8_t plain_alert[] = {21, 3, 3, 0, 2, 2, 40};
    enum { SEAL, RAW, PAD_ZERO, HEAD_THEN_DATA, OVERLONG };
    static const struct {
        int how;
        uint8_t type;
        const uint8_t *b;
        size_t n;
        const char *why;
        int alert;
    } cases[] = {
        {SEAL, 22, two_ku, sizeof two_ku, "not at the end of its record", 10},
        {SEAL, 22, nst, sizeof nst, "NewSessionTicket", 10},
        {SEAL, 22, ku_bad_len, sizeof ku_bad_len, "KeyUpdate of 2 bytes", 50},
        {SEAL, 22, ku_bad_req, sizeof ku_bad_req, "request_update 2", 47},
        {SEAL, 22, NULL, 0, "empty handshake record", 10},
        {SEAL, 20, ccs + 5, 1, "content type 20", 10},
        {SEAL, 21, fatal_alert, 2, "the peer sent a fatal alert: handshake failure", -1},
        {SEAL, 21, long_alert, 3, "alert record of 3 bytes", 50},
        {PAD_ZERO, 0, zeros, sizeof zeros, "without a content type", 10},
        {HEAD_THEN_DATA, 22, ku_head, sizeof ku_head, "inside a split handshake message", 10},
        {OVERLONG, 23, NULL, 0, "more than 2^14 + 1 (record_overflow)", 22},
        {RAW, 0, ccs, sizeof ccs, "change_cipher_spec record", 10},
        {RAW, 0, plain_alert, sizeof plain_alert, "unprotected alert record", 10},
        {RAW, 0, old_version, sizeof old_version, "legacy_record_version 0x0301", 50},
        {RAW, 0, too_long, sizeof too_long, "more than 2^14 + 256 (record_overflow)", 22},
        {RAW, 0, too_short, sizeof too_short, "too short", 20},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pair p;
        sealer s;
        if (!crafted(&p, &s, i % 3)) {
            TM_CHECK(0);
            continue;
        }
        switch (cases[i].how) {
        case SEAL:
            seal_rec(&p, &s, cases[i].type, cases[i].b, cases[i].n, 0);
            break;
        case RAW:
            c2s_add(&p, cases[i].b, cases[i].n);
            break;
        case PAD_ZERO:
            seal_inner(&p, &s, cases[i].b, cases[i].n);
            break;
        case HEAD_THEN_DATA:
            seal_rec(&p, &s, 22, cases[i].b, cases[i].n, 0);
            seal_rec(&p, &s, 23, "x", 1, 0);
            break;
        case OVERLONG: {
            uint8_t *big = calloc(1, 16385);
            seal_rec(&p, &s, 23, big, 16385, 0);
            free(big);
            break;
        }
        }
        expect_fatal(&p, cases[i].why, cases[i].alert);
        pair_close(&p);
    }
}

/* A flipped bit: bad_record_mac both in our error and at the client. */
static void test_flipped_bit(void)
{
    setup_once();
    for (size_t si = 0; si < 3; si++) {
        pair p;
        TM_CHECK(open_suite(&p, si));
        TM_CHECK_EQ(SSL_write(p.cli, "hello", 5), 5);
        c_take(&p);
        p.c2s[7] ^= 0x10;
        expect_fatal(&p, "bad_record_mac", SSL_AD_BAD_RECORD_MAC);
        pair_close(&p);
    }
}

/* close_notify both ways, and the end of the stream without one. */
static void test_close(void)
{
    setup_once();
    uint8_t out[64];
    size_t got = 0;
    unsigned want = 0;
    /* client first: read returns 0; the server may still answer and close */
    pair p;
    tm_tls_server_opts so = server_opts();
    TM_CHECK(open_and_handshake(&p, &so, NULL));
    TM_CHECK_EQ(SSL_write(p.cli, "bye", 3), 3);
    TM_CHECK(SSL_shutdown(p.cli) >= 0);
    c_take(&p);
    TM_CHECK_EQ(s_read(&p, out, sizeof out, sizeof out), 3);
    TM_CHECK_EQ(s_read(&p, out, sizeof out, sizeof out), 0);
    TM_CHECK(!p.st->failed);
    TM_CHECK(s_write_all(&p, (const uint8_t *)"last", 4, out, &got, sizeof out));
    TM_CHECK_EQ(tm_stream_shutdown(p.st, &want), 1);
    c_drain(&p, out, &got, sizeof out);
    TM_CHECK_EQ(got, 4);
    TM_CHECK_MEM(out, "last", 4);
    TM_CHECK(SSL_get_shutdown(p.cli) & SSL_RECEIVED_SHUTDOWN);
    TM_CHECK(p.eof);   /* TCP half-closed after close_notify */
    pair_close(&p);
    /* server first */
    TM_CHECK(open_and_handshake(&p, &so, NULL));
    TM_CHECK_EQ(tm_stream_shutdown(p.st, &want), 1);
    got = 0;
    c_drain(&p, out, &got, sizeof out);
    TM_CHECK(SSL_get_shutdown(p.cli) & SSL_RECEIVED_SHUTDOWN);
    TM_CHECK_EQ(p.alert, SSL_AD_CLOSE_NOTIFY);
    TM_CHECK(p.eof);
    TM_CHECK_EQ(tm_stream_write(p.st, "x", 1, &want), -1);   /* nothing after close_notify */
    pair_close(&p);
    /* after our close_notify (and the half-close) the client may still send, even ask
     * for a KeyUpdate: we read on, and send nothing more */
    TM_CHECK(open_and_handshake(&p, &so, NULL));
    TM_CHECK_EQ(tm_stream_shutdown(p.st, &want), 1);
    TM_CHECK(SSL_key_update(p.cli, SSL_KEY_UPDATE_REQUESTED) == 1);
    TM_CHECK_EQ(SSL_write(p.cli, "late", 4), 4);
    c_take(&p);
    TM_CHECK_EQ(s_read(&p, out, sizeof out, sizeof out), 4);
    TM_CHECK_MEM(out, "late", 4);
    TM_CHECK(!p.st->failed);
    got = 0;
    c_drain(&p, out, &got, sizeof out);
    TM_CHECK_EQ(p.key_updates, 0);
    TM_CHECK(SSL_get_shutdown(p.cli) & SSL_RECEIVED_SHUTDOWN);
    pair_close(&p);
    /* a clean end of stream without close_notify: 0; in the middle of a record: an error */
    TM_CHECK(open_and_handshake(&p, &so, NULL));
    shutdown(p.cfd, SHUT_WR);
    TM_CHECK_EQ(s_read(&p, out, sizeof out, sizeof out), 0);
    pair_close(&p);
    TM_CHECK(open_and_handshake(&p, &so, NULL));
    TM_CHECK_EQ(SSL_write(p.cli, "cut", 3), 3);
    c_take(&p);
    to_server(&p, 10);
    shutdown(p.cfd, SHUT_WR);
    TM_CHECK_EQ(s_read(&p, out, sizeof out, sizeof out), -1);
    TM_CHECK(has(tm_stream_error(p.st), "in the middle of a TLS record"));
    pair_close(&p);
}

/* The socket takes part of a record: the write reports would-block with
 * TM_EV_WRITE, holds the ciphertext's tail and completes when retried with
 * the same bytes; the client gets every byte once, in order. */
static void test_partial_writes_and_retry(void)
{
    setup_once();
    pair p;
    tm_tls_server_opts so = server_opts();
    TM_CHECK(open_and_handshake(&p, &so, NULL));
    int small = 4096;
    setsockopt(p.st->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    enum { N = 1 << 20 };
    uint8_t *in = malloc(N), *out = malloc(N);
    fill(in, N, 11);
    size_t off = 0, got = 0;
    int blocked = 0, held = 0;
    for (int i = 0; i < 1000000 && off < N; i++) {
        unsigned want = 0;
        long r = tm_stream_write(p.st, in + off, N - off, &want);
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        TM_CHECK_EQ(r, -2);
        TM_CHECK(want & TM_EV_WRITE);
        blocked++;
        held += tm_stream_tls_buffered(p.st) > 0;
        c_drain(&p, out, &got, N);
    }
    c_drain(&p, out, &got, N);
    TM_CHECK_EQ(off, N);
    TM_CHECK_EQ(got, N);
    TM_CHECK_MEM(out, in, N);
    TM_CHECK(blocked > 0);
    TM_CHECK(held > 0);
    TM_CHECK_EQ(tm_stream_tls_buffered(p.st), 0);
    /* a retry with fewer bytes than the record in flight is refused */
    unsigned want = 0;
    long r;
    do
        r = tm_stream_write(p.st, in, 16384, &want);
    while (r > 0);
    TM_CHECK_EQ(r, -2);
    TM_CHECK_EQ(tm_stream_write(p.st, in, 1, &want), -2);   /* socket still full */
    for (int i = 0; i < 1000 && (r = tm_stream_write(p.st, in, 1, &want)) == -2; i++) {
        got = 0;
        c_drain(&p, out, &got, N);
    }
    TM_CHECK_EQ(r, -1);
    TM_CHECK(has(tm_stream_error(p.st), "fewer than"));
    free(in);
    free(out);
    pair_close(&p);
}

/* What stays on OpenSSL: TLS 1.2, the CCM suites, and every connection
 * with tls_record_layer openssl (tickets issued as before there). */
static void test_stays_on_openssl(void)
{
    setup_once();
    struct {
        const char *server_suites, *client_suites;
        int max_version;
        bool openssl_records;
    } cases[] = {
        {NULL, NULL, TLS1_2_VERSION, false},
        {"TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_SHA256", 0, false},
        {"TLS_AES_128_CCM_8_SHA256", "TLS_AES_128_CCM_8_SHA256", 0, false},
        {NULL, NULL, 0, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pair p;
        tm_tls_server_opts so = server_opts();
        so.ciphersuites = cases[i].server_suites;
        so.openssl_records = cases[i].openssl_records;
        client_opts co = {.suites = cases[i].client_suites, .max_version = cases[i].max_version};
        TM_CHECK(open_and_handshake(&p, &so, &co));
        TM_CHECK(!strcmp(tm_stream_tls_record_layer(p.st), "openssl"));
        TM_CHECK(tm_stream_tls_ssl(p.st) != NULL);
        uint8_t in[20000], out[20000];
        fill(in, sizeof in, 5);
        TM_CHECK_EQ(SSL_write(p.cli, in, sizeof in), sizeof in);
        c_take(&p);
        TM_CHECK_EQ(s_read(&p, out, sizeof in, sizeof out), sizeof in);
        TM_CHECK_MEM(out, in, sizeof in);
        size_t got = 0;
        TM_CHECK(s_write_all(&p, in, sizeof in, out, &got, sizeof out));
        TM_CHECK_EQ(got, sizeof in);
        TM_CHECK_MEM(out, in, sizeof in);
        if (cases[i].openssl_records)
            TM_CHECK(p.tickets > 0);
        pair_close(&p);
    }
}

/* The identity survives the SSL when the listener uses it, and is not kept
 * when it does not. */
static void test_identity_kept_when_used(void)
{
    setup_once();
    for (int use = 0; use < 2; use++) {
        pair p;
        tm_tls_server_opts so = server_opts();
        so.cafile = g_ca;
        so.require_certificate = true;
        so.want_identity = use;
        client_opts co = {.cert = true};
        TM_CHECK(open_and_handshake(&p, &so, &co));
        TM_CHECK(!strcmp(tm_stream_tls_record_layer(p.st), "tmqtt"));
        char *id = tm_stream_tls_identity(p.st);
        if (use)
            TM_CHECK(id && !strcmp(id, "client-1"));
        else
            TM_CHECK(id == NULL);
        free(id);
        TM_CHECK(tm_stream_tls_attestation(p.st) == NULL);
        pair_close(&p);
    }
}

/* Our sending key moves on by itself (every 2^24 records; 3 here): the
 * client sees our KeyUpdates and reads every byte. */
static void test_own_key_updates(void)
{
    setup_once();
    for (size_t si = 0; si < 3; si++) {
        pair p;
        TM_CHECK(open_suite(&p, si));
        tm_tlsrec_set_rekey_interval(3);
        enum { N = 10 * 16384 + 5 };
        uint8_t *in = malloc(N + 5), *out = malloc(N + 5);
        fill(in, N + 5, 9);
        size_t got = 0;
        TM_CHECK(s_write_all(&p, in, N, out, &got, N + 5));
        for (int i = 0; i < 5; i++)
            TM_CHECK(s_write_all(&p, in + N + i, 1, out, &got, N + 5));
        TM_CHECK_EQ(got, N + 5);
        TM_CHECK_MEM(out, in, N + 5);
        TM_CHECK_EQ(p.key_updates, 5);   /* 16 records: after the 3rd, 6th, 9th, 12th, 15th */
        TM_CHECK_EQ(p.key_update_requests, 0);
        tm_tlsrec_set_rekey_interval(0);
        free(in);
        free(out);
        pair_close(&p);
    }
}

/* More connections than a thread keeps cipher contexts (TM_TLSREC_CTXS, 16): their
 * records alternate, so contexts are taken from the least recently used one and
 * re-keyed, and every record must still be sealed and opened with its own key;
 * one connection in the middle is freed early (its contexts forget its key). */
static void test_many_connections_interleaved(void)
{
    setup_once();
    enum { N = 21, MAXN = 4096 };
    pair ps[N];
    bool open_[N];
    uint8_t in[300], out[MAXN];
    for (int i = 0; i < N; i++)
        TM_CHECK((open_[i] = open_suite(&ps[i], (size_t)(i % 5 == 4 ? 2 : 0))));   /* 17 on one suite */
    for (int round = 0; round < 3; round++) {
        for (int j = 0; j < N; j++) {
            int i = round == 1 ? N - 1 - j : j;    /* forwards, backwards, forwards */
            if (!open_[i])
                continue;
            size_t n = 1 + (size_t)(i * 13 + round * 7) % sizeof in;
            fill(in, n, (unsigned)(i * 31 + round));
            TM_CHECK_EQ(SSL_write(ps[i].cli, in, (int)n), n);
            c_take(&ps[i]);
            memset(out, 0, n);
            TM_CHECK_EQ(s_read(&ps[i], out, n, MAXN), n);
            TM_CHECK_MEM(out, in, n);
            size_t got = 0;
            TM_CHECK(s_write_all(&ps[i], in, n, out, &got, MAXN));
            TM_CHECK_EQ(got, n);
            TM_CHECK_MEM(out, in, n);
        }
        if (round == 0 && open_[10]) {
            pair_close(&ps[10]);
            open_[10] = false;
        }
    }
    for (int i = 0; i < N; i++)
        if (open_[i])
            pair_close(&ps[i]);
}

static void test_done(void)
{
    tm_tlsrec_thread_cleanup();
    cleanup();
}

TM_TEST_MAIN(TM_CASE(test_takeover_and_data_each_suite), TM_CASE(test_one_byte_at_a_time),
             TM_CASE(test_many_records_one_read), TM_CASE(test_key_update_from_client),
             TM_CASE(test_crafted_records_accepted), TM_CASE(test_crafted_records_refused),
             TM_CASE(test_flipped_bit), TM_CASE(test_close),
             TM_CASE(test_partial_writes_and_retry), TM_CASE(test_stays_on_openssl),
             TM_CASE(test_identity_kept_when_used), TM_CASE(test_own_key_updates),
             TM_CASE(test_many_connections_interleaved), TM_CASE(test_done))
