/*
 * make_tls_record_seeds.c — writes the seed corpus of fuzz_tls_record.c:
 * what a real OpenSSL client sends after a TLS 1.3 handshake (application
 * data of several sizes, KeyUpdates, close_notify), one file per suite and
 * script, prefixed with the header fuzz_tls_record.c reads (suite, chunking,
 * buffer size, the client's traffic secret from its key log); and
 * items-mode inputs (records the harness seals: padding, split KeyUpdates,
 * alerts, stray types).
 *
 * Both ends are OpenSSL over memory BIOs; only the client's bytes after its
 * Finished are kept. Usage: make_tls_record_seeds DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static uint8_t g_secret[48];
static size_t g_secret_len;

static void keylog(const SSL *ssl, const char *line)
{
    static const char lbl[] = "CLIENT_TRAFFIC_SECRET_0 ";
    if (strncmp(line, lbl, sizeof lbl - 1))
        return;
    const char *h = line + sizeof lbl - 1 + 65;
    g_secret_len = strlen(h) / 2;
    for (size_t i = 0; i < g_secret_len; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        g_secret[i] = (uint8_t)v;
    }
}

static void move(BIO *from, BIO *to)
{
    char b[16384];
    int n;
    while ((n = BIO_read(from, b, sizeof b)) > 0)
        BIO_write(to, b, n);
}

static SSL_CTX *server_ctx(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"seeds", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(c, x);
    SSL_CTX_use_PrivateKey(c, k);
    SSL_CTX_set_num_tickets(c, 0);
    X509_free(x);
    EVP_PKEY_free(k);
    return c;
}

/* One handshake offering only `suite`; then script() runs on the client and
 * its bytes are written to DIR/NAME with the fuzzer's header. */
static int seed(const char *dir, const char *name, int suite_idx, uint8_t chunking, uint8_t cap,
                void (*script)(SSL *))
{
    static const char *const suites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                         "TLS_CHACHA20_POLY1305_SHA256"};
    SSL_CTX *sc = server_ctx(), *cc = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_keylog_callback(cc, keylog);
    SSL_CTX_set_min_proto_version(cc, TLS1_3_VERSION);
    SSL *s = SSL_new(sc), *c = SSL_new(cc);
    SSL_set_ciphersuites(c, suites[suite_idx]);
    BIO *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());
    BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem());
    SSL_set_bio(s, s_in, s_out);
    SSL_set_bio(c, c_in, c_out);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    int cd = 0, sd = 0;
    for (int i = 0; i < 20 && !(cd && sd); i++) {
        cd = cd || SSL_do_handshake(c) == 1;
        move(c_out, s_in);
        sd = sd || SSL_do_handshake(s) == 1;
        move(s_out, c_in);
    }
    if (!cd || !sd || !g_secret_len)
        return -1;
    script(c);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint8_t head[3] = {(uint8_t)suite_idx, chunking, cap};
    fwrite(head, 1, 3, f);
    fwrite(g_secret, 1, g_secret_len, f);
    char b[16384];
    int n;
    while ((n = BIO_read(c_out, b, sizeof b)) > 0)
        fwrite(b, 1, (size_t)n, f);
    fclose(f);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(sc);
    SSL_CTX_free(cc);
    g_secret_len = 0;
    return 0;
}

static void write_n(SSL *c, size_t n)
{
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 7);
    SSL_write(c, b, (int)n);
    free(b);
}

static void data(SSL *c)
{
    write_n(c, 1);
    write_n(c, 100);
    write_n(c, 16384);
    write_n(c, 20000);
}

static void key_updates(SSL *c)
{
    SSL_key_update(c, SSL_KEY_UPDATE_REQUESTED);
    write_n(c, 10);
    SSL_key_update(c, SSL_KEY_UPDATE_NOT_REQUESTED);
    write_n(c, 10);
    SSL_key_update(c, SSL_KEY_UPDATE_REQUESTED);
    SSL_key_update(c, SSL_KEY_UPDATE_REQUESTED);
    write_n(c, 300);
}

static void close_notify(SSL *c)
{
    write_n(c, 3);
    SSL_shutdown(c);
}

static void big(SSL *c) { write_n(c, 70000); }

/* ---- items mode: records the harness seals --------------------------------------- */

typedef struct items {
    uint8_t b[512];
    size_t n;
} items;

static void item(items *it, uint8_t kind, const void *p, size_t k)
{
    it->b[it->n++] = kind;
    it->b[it->n++] = (uint8_t)(k >> 8);
    it->b[it->n++] = (uint8_t)k;
    memcpy(it->b + it->n, p, k);
    it->n += k;
}

static int items_seed(const char *dir, const char *name, int si, const items *it)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint8_t head[3] = {(uint8_t)(0x80 | si), (uint8_t)(5 + si), (uint8_t)(1 + 3 * si)};
    uint8_t secret[48];
    memset(secret, 0x33, sizeof secret);
    fwrite(head, 1, 3, f);
    fwrite(secret, 1, si == 1 ? 48 : 32, f);
    fwrite(it->b, 1, it->n, f);
    fclose(f);
    return 0;
}

/* Content, type and padding as TLSInnerPlaintext; kind 1 seals, 3 seals
 * and moves to the next key, 0 is raw bytes on the wire. */
static int items_seeds(const char *dir)
{
    static const uint8_t data1[] = {'h', 'e', 'l', 'l', 'o', 23};
    static const uint8_t data2[] = {'w', 'o', 'r', 'l', 'd', 23, 0, 0, 0, 0};
    static const uint8_t empty[] = {23};
    static const uint8_t ku_a[] = {24, 0, 22}, ku_b[] = {0, 1, 1, 22};
    static const uint8_t ku_whole[] = {24, 0, 0, 1, 0, 22, 0};
    static const uint8_t cancel[] = {1, 90, 21}, close_n[] = {1, 0, 21}, fatal[] = {2, 40, 21};
    static const uint8_t zeros[] = {0, 0, 0}, ccs[] = {1, 20}, nst[] = {4, 0, 0, 0, 22};
    static const uint8_t big_header[] = {23, 3, 3, 0x41, 0x01};
    items it[6];
    memset(it, 0, sizeof it);
    item(&it[0], 1, data1, sizeof data1);
    item(&it[0], 1, data2, sizeof data2);
    item(&it[0], 1, empty, sizeof empty);
    item(&it[1], 1, ku_a, sizeof ku_a);
    item(&it[1], 3, ku_b, sizeof ku_b);
    item(&it[1], 3, ku_whole, sizeof ku_whole);
    item(&it[1], 1, data1, sizeof data1);
    item(&it[2], 1, cancel, sizeof cancel);
    item(&it[2], 1, data1, sizeof data1);
    item(&it[2], 1, close_n, sizeof close_n);
    item(&it[3], 1, data1, sizeof data1);
    item(&it[3], 1, fatal, sizeof fatal);
    item(&it[4], 1, zeros, sizeof zeros);
    item(&it[4], 1, ccs, sizeof ccs);
    item(&it[4], 1, nst, sizeof nst);
    item(&it[5], 1, data1, sizeof data1);
    item(&it[5], 0, big_header, sizeof big_header);
    static const char *const names[] = {"items-data", "items-keyupdate", "items-close",
                                        "items-fatal-alert", "items-bad-content",
                                        "items-raw-header"};
    for (int i = 0; i < 6; i++)
        if (items_seed(dir, names[i], i % 3, &it[i]) < 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    static const char *const tag[] = {"aes128", "aes256", "chacha"};
    struct {
        const char *name;
        void (*script)(SSL *);
        uint8_t chunking, cap;
    } scripts[] = {{"data", data, 0, 8}, {"keyupdate", key_updates, 3, 2},
                   {"close", close_notify, 7, 6}, {"big", big, 11, 5}};
    for (int si = 0; si < 3; si++)
        for (size_t k = 0; k < sizeof scripts / sizeof scripts[0]; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s-%s", tag[si], scripts[k].name);
            if (seed(argv[1], name, si, scripts[k].chunking, scripts[k].cap, scripts[k].script)) {
                fprintf(stderr, "%s: handshake failed\n", name);
                return 1;
            }
        }
    return items_seeds(argv[1]) < 0;
}
