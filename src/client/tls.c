/*
 * tls.c — client SSL_CTX construction: trust anchors, client certificate,
 * external PSK, protocol versions and cipher suites, NSS key logging.
 *
 * A context is built once and shared by every client with the same options
 * (the benchmark opens thousands of TLS connections). Per-context state that
 * OpenSSL callbacks need (PSK identity and key, key-log stream, "insecure")
 * hangs off the context as ex_data and is freed with it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "client/client_int.h"

typedef struct tm_tls_ctxdata {
    char *psk_identity;
    uint8_t psk[256];
    size_t psk_len;
    FILE *keylog;
    bool insecure;
} tm_tls_ctxdata;

static int ctxdata_idx = -1;

static void ctxdata_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    tm_tls_ctxdata *d = ptr;
    if (!d)
        return;
    if (d->keylog)
        fclose(d->keylog);
    free(d->psk_identity);
    OPENSSL_cleanse(d->psk, sizeof d->psk);
    free(d);
}

static tm_tls_ctxdata *ctxdata(const SSL_CTX *ctx)
{
    return ctxdata_idx < 0 ? NULL : SSL_CTX_get_ex_data(ctx, ctxdata_idx);
}

bool tm_tls_ctx_insecure(const SSL_CTX *ctx);
bool tm_tls_ctx_insecure(const SSL_CTX *ctx)
{
    tm_tls_ctxdata *d = ctxdata(ctx);
    return d && d->insecure;
}

static void keylog_cb(const SSL *ssl, const char *line)
{
    tm_tls_ctxdata *d = ctxdata(SSL_get_SSL_CTX(ssl));
    if (d && d->keylog) {
        fprintf(d->keylog, "%s\n", line);
        fflush(d->keylog);   /* tshark may read it while we run */
    }
}

static unsigned psk_client_cb(SSL *ssl, const char *hint, char *identity,
                              unsigned max_identity_len, unsigned char *psk,
                              unsigned max_psk_len)
{
    tm_tls_ctxdata *d = ctxdata(SSL_get_SSL_CTX(ssl));
    if (!d || !d->psk_identity || d->psk_len > max_psk_len ||
        strlen(d->psk_identity) + 1 > max_identity_len)
        return 0;
    strcpy(identity, d->psk_identity);
    memcpy(psk, d->psk, d->psk_len);
    return (unsigned)d->psk_len;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static int parse_version(const char *s, int *out)
{
    if (!s || !*s)
        return 0;
    if (!strcasecmp(s, "tlsv1.3") || !strcmp(s, "1.3"))
        *out = TLS1_3_VERSION;
    else if (!strcasecmp(s, "tlsv1.2") || !strcmp(s, "1.2"))
        *out = TLS1_2_VERSION;
    else if (!strcasecmp(s, "tlsv1.1") || !strcmp(s, "1.1"))
        *out = TLS1_1_VERSION;
    else
        return -1;
    return 0;
}

static void ssl_errstr(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "unknown error");
    ERR_clear_error();
}

SSL_CTX *tm_tls_ctx_new(const tm_tls_opts *o, char *err, size_t errcap)
{
    char why[256];
    if (ctxdata_idx < 0) {
        ctxdata_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctxdata_free);
        if (ctxdata_idx < 0) {
            snprintf(err, errcap, "TLS: cannot allocate ex_data index");
            return NULL;
        }
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    tm_tls_ctxdata *d = calloc(1, sizeof *d);
    if (!ctx || !d) {
        snprintf(err, errcap, "TLS: out of memory");
        SSL_CTX_free(ctx);
        free(d);
        return NULL;
    }
    SSL_CTX_set_ex_data(ctx, ctxdata_idx, d);   /* freed with ctx from now on */
    d->insecure = o->insecure;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);

    int minv = TLS1_2_VERSION, maxv = 0;
    if (parse_version(o->min_version, &minv) < 0 || parse_version(o->max_version, &maxv) < 0) {
        snprintf(err, errcap, "TLS: unknown TLS version '%s' (use tlsv1.2 or tlsv1.3)",
                 o->min_version && parse_version(o->min_version, &minv) < 0 ? o->min_version
                                                                           : o->max_version);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, minv);
    if (maxv)
        SSL_CTX_set_max_proto_version(ctx, maxv);

    if (o->ciphers && *o->ciphers && !SSL_CTX_set_cipher_list(ctx, o->ciphers)) {
        snprintf(err, errcap, "TLS: invalid cipher list '%s'", o->ciphers);
        goto fail;
    }
    if (o->ciphersuites && *o->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, o->ciphersuites)) {
        snprintf(err, errcap, "TLS: invalid TLS 1.3 cipher suites '%s'", o->ciphersuites);
        goto fail;
    }

    bool have_ca = (o->cafile && *o->cafile) || (o->capath && *o->capath);
    if (have_ca) {
        if (!SSL_CTX_load_verify_locations(ctx, o->cafile && *o->cafile ? o->cafile : NULL,
                                           o->capath && *o->capath ? o->capath : NULL)) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errcap, "TLS: cannot load CA from %s: %s",
                     o->cafile && *o->cafile ? o->cafile : o->capath, why);
            goto fail;
        }
    } else if (!o->insecure) {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    /* PSK-only handshakes carry no certificate, so VERIFY_PEER is harmless
     * there; with certificates it is what makes TLS mean anything. */
    SSL_CTX_set_verify(ctx, (have_ca || !o->insecure) ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);

    if ((o->certfile && *o->certfile) != (o->keyfile && *o->keyfile)) {
        snprintf(err, errcap, "TLS: a client certificate needs both --cert and --key");
        goto fail;
    }
    if (o->certfile && *o->certfile) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errcap, "TLS: cannot load certificate %s: %s", o->certfile, why);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->keyfile, SSL_FILETYPE_PEM) != 1) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errcap, "TLS: cannot load key %s: %s", o->keyfile, why);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errcap, "TLS: key %s does not match certificate %s", o->keyfile,
                     o->certfile);
            goto fail;
        }
    }

    if (o->psk_hex && *o->psk_hex) {
        size_t hl = strlen(o->psk_hex);
        if (hl % 2 || hl / 2 > sizeof d->psk || hl == 0) {
            snprintf(err, errcap, "TLS: PSK must be an even number of hex digits (max %zu bytes)",
                     sizeof d->psk);
            goto fail;
        }
        for (size_t i = 0; i < hl; i += 2) {
            int hi = hexval((unsigned char)o->psk_hex[i]), lo = hexval((unsigned char)o->psk_hex[i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errcap, "TLS: PSK is not hexadecimal");
                goto fail;
            }
            d->psk[i / 2] = (uint8_t)(hi << 4 | lo);
        }
        d->psk_len = hl / 2;
        if (!o->psk_identity || !*o->psk_identity) {
            snprintf(err, errcap, "TLS: --psk needs --psk-identity");
            goto fail;
        }
        d->psk_identity = strdup(o->psk_identity);
        SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
        /* TLS 1.2 needs PSK cipher suites offered; TLS 1.3 uses the
         * callback's key with a SHA-256 suite, which is in the default list. */
        if (!(o->ciphers && *o->ciphers))
            SSL_CTX_set_cipher_list(ctx, "PSK:ECDHE-PSK:DHE-PSK:DEFAULT");
    } else if (o->psk_identity && *o->psk_identity) {
        snprintf(err, errcap, "TLS: --psk-identity needs --psk");
        goto fail;
    }

    const char *kl = o->keylog_file;
    if (!kl || !*kl)
        kl = getenv("SSLKEYLOGFILE");
    if (kl && *kl) {
        d->keylog = fopen(kl, "a");
        if (!d->keylog) {
            snprintf(err, errcap, "TLS: cannot open key log file %s: %s", kl, strerror(errno));
            goto fail;
        }
        SSL_CTX_set_keylog_callback(ctx, keylog_cb);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}
