/*
 * t_tls.c — OpenSSL 3 built for wasm32-wasi, running under tmqtt-wasm: SHA-256 and
 * ECDSA P-256 sign/verify, then a TLS 1.3 handshake over the runtime's sockets with a
 * native `openssl s_server -rev` on loopback, verifying the server certificate from a
 * preopened directory, and two lines echoed back reversed (several records each way,
 * so record sequence numbers other than 0 are used). Prints which provider protects
 * the records ("record crypto: tmqtt-host" when the host's tmqtt_crypto is in use).
 *
 *   t_tls HOST PORT CAFILE [TLS_1.3_SUITE | TLS_1.2_CIPHER_LIST]
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "platform/wasi_crypto.h"
#include "platform/wasi_socket.h"

static int fail(const char *what)
{
    printf("FAIL %s\n", what);
    ERR_print_errors_fp(stdout);
    return 1;
}

static int crypto_selftest(void)
{
    /* SHA-256("abc") */
    static const unsigned char want[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char md[32];
    unsigned int mdl = 0;
    if (!EVP_Digest("abc", 3, md, &mdl, EVP_sha256(), NULL) || mdl != 32 || memcmp(md, want, 32))
        return fail("sha256");
    printf("ok sha256\n");

    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!key) return fail("ec keygen (needs entropy from random_get)");
    unsigned char sig[128];
    size_t sl = sizeof sig;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, key) && EVP_DigestSign(c, sig, &sl, md, 32);
    EVP_MD_CTX_free(c);
    c = EVP_MD_CTX_new();
    ok = ok && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, key) && EVP_DigestVerify(c, sig, sl, md, 32) == 1;
    sig[5] ^= 1;
    EVP_MD_CTX_free(c);
    c = EVP_MD_CTX_new();
    ok = ok && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, key) && EVP_DigestVerify(c, sig, sl, md, 32) != 1;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(key);
    if (!ok) return fail("ecdsa p-256 sign/verify");
    printf("ok ecdsa p-256\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: t_tls HOST PORT CAFILE [CIPHERSUITE]\n");
        return 2;
    }
    const char *why;
    const char *prov = tm_wasi_crypto_provider(&why);
    printf("record crypto: %s%s%s\n", prov, *why ? ": " : "", why);
    if (crypto_selftest()) return 1;

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(argv[1], argv[2], &hints, &res) != 0) return fail("getaddrinfo");
    int s = socket(res->ai_family, SOCK_STREAM, 0);
    if (s < 0 || connect(s, res->ai_addr, res->ai_addrlen) != 0) return fail("connect");
    freeaddrinfo(res);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    printf("ok connected\n");

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return fail("SSL_CTX_new");
    /* "TLS_..." names a TLS 1.3 suite; anything else is a TLS 1.2 cipher list. */
    const char *suite = argc > 4 ? argv[4] : NULL;
    int tls12 = suite && strncmp(suite, "TLS_", 4) != 0;
    SSL_CTX_set_min_proto_version(ctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    if (tls12) {
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
        if (!SSL_CTX_set_cipher_list(ctx, suite)) return fail("cipher list");
    } else if (suite && !SSL_CTX_set_ciphersuites(ctx, suite)) {
        return fail("ciphersuites");
    }
    if (!SSL_CTX_load_verify_locations(ctx, argv[3], NULL)) return fail("load CA from preopened dir");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    BIO *bio = BIO_new_fd(s, BIO_NOCLOSE); /* OpenSSL is built no-sock: fd BIO over fd_read/fd_write */
    SSL_set_bio(ssl, bio, bio);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) return fail("TLS handshake");
    printf("ok handshake %s %s verify=%ld\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
           SSL_get_verify_result(ssl));
    const char *line = "hello from webassembly\n";
    char buf[128];
    for (int rep = 0; rep < 2; rep++) {
        int n = 0, r;
        memset(buf, 0, sizeof buf);
        if (SSL_write(ssl, line, (int)strlen(line)) <= 0) return fail("SSL_write");
        while (n < (int)strlen(line) && (r = SSL_read(ssl, buf + n, (int)sizeof buf - 1 - n)) > 0) n += r;
        printf("reply %s", buf);
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(s);
    printf("PASSED\n");
    return 0;
}
