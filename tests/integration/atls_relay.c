/*
 * atls_relay.c — tmqtt-test-atls-relay: the machine in the middle of
 * docs/attested-tls.md, as a real process, for test_attested_tls.py.
 *
 * It listens on a loopback port and, for every client, terminates the
 * client's TLS with its own certificate (one the client trusts: the test PKI
 * issues it) and opens its own TLS connection to the real broker. From the
 * client's ClientHello it copies the attestation request (extension 0xFFA0:
 * the client's nonce and formats) into its own ClientHello to the broker, and
 * puts the broker's genuine AttestationEvidence into its own
 * EncryptedExtensions towards the client. Then it relays application bytes
 * both ways (MQTT), so that a client without attestation works through it.
 * An attested-TLS client must refuse it: the evidence covers the broker's
 * handshake with the relay (its key-schedule binder and key share), not the
 * client's.
 *
 * This is the attacker's code: plain OpenSSL, no tmqtt library. One thread
 * per client connection; the process ends on SIGTERM (the test stops it by
 * PID). Log lines on stdout:
 *   listening PORT
 *   connection N: request forwarded (A bytes), evidence relayed (B bytes)
 *   connection N: no attestation request
 *   connection N: closed
 *
 * Usage: tmqtt-test-atls-relay --upstream PORT --cert PEM --key PEM [--listen PORT]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define ATLS_EXT 0xFFA0
#define ATLS_CONTEXTS \
    (SSL_EXT_TLS1_3_ONLY | SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS)

typedef struct conn {
    int n;
    int fd_down;                 /* the client's socket */
    int fd_up;                   /* ours to the broker, -1 until connected */
    SSL *up;
    unsigned char req[512];
    size_t req_len;
    unsigned char ans[65536];
    size_t ans_len;
} conn;

static int g_upstream_port;
static SSL_CTX *g_srv, *g_cli;
static pthread_mutex_t g_log = PTHREAD_MUTEX_INITIALIZER;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&g_log);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&g_log);
    va_end(ap);
}

/* Our 0xFFA0 on both contexts: the request towards the broker, the evidence
 * towards the client. */
static int ext_add(SSL *s, unsigned int type, unsigned int context, const unsigned char **out,
                   size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    conn *c = SSL_get_app_data(s);
    if (!c)
        return 0;
    if (context == SSL_EXT_CLIENT_HELLO && c->req_len) {
        *out = c->req;
        *outlen = c->req_len;
        return 1;
    }
    if (context == SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS && c->ans_len) {
        *out = c->ans;
        *outlen = c->ans_len;
        return 1;
    }
    return 0;
}

static int ext_parse(SSL *s, unsigned int type, unsigned int context, const unsigned char *in,
                     size_t inlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    conn *c = SSL_get_app_data(s);
    if (c && context == SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS && inlen <= sizeof c->ans) {
        memcpy(c->ans, in, inlen);
        c->ans_len = inlen;
    }
    return 1;
}

static int connect_upstream(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_upstream_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The client's ClientHello is in: do the whole upstream handshake now, with
 * the client's request, so that the broker's evidence is ready for our
 * EncryptedExtensions. */
static int hello_cb(SSL *s, int *al, void *arg)
{
    conn *c = SSL_get_app_data(s);
    const unsigned char *ext;
    size_t len;
    if (SSL_client_hello_get0_ext(s, ATLS_EXT, &ext, &len) == 1 && len <= sizeof c->req) {
        memcpy(c->req, ext, len);
        c->req_len = len;
    }
    c->fd_up = connect_upstream();
    c->up = c->fd_up < 0 ? NULL : SSL_new(g_cli);
    if (!c->up || !SSL_set_fd(c->up, c->fd_up)) {
        logf_("connection %d: cannot reach the broker on port %d", c->n, g_upstream_port);
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    SSL_set_app_data(c->up, c);
    if (SSL_connect(c->up) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        logf_("connection %d: TLS to the broker failed: %s", c->n, e);
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (c->req_len)
        logf_("connection %d: request forwarded (%zu bytes), evidence relayed (%zu bytes)", c->n,
              c->req_len, c->ans_len);
    else
        logf_("connection %d: no attestation request", c->n);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Writes all of buf to a non-blocking SSL. 0, or -1 when the peer is gone. */
static int write_all(SSL *to, int fd, const unsigned char *buf, int n)
{
    for (;;) {
        int r = SSL_write(to, buf, n);
        if (r > 0)
            return 0;
        int e = SSL_get_error(to, r);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
            return -1;
        struct pollfd p = {.fd = fd, .events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            return -1;
    }
}

/* Moves what `from` has decrypted to `to`. 0 nothing more for now, -1 closed. */
static int pump(SSL *from, SSL *to, int to_fd)
{
    unsigned char buf[16384];
    for (;;) {
        int r = SSL_read(from, buf, sizeof buf);
        if (r > 0) {
            if (write_all(to, to_fd, buf, r) < 0)
                return -1;
            continue;
        }
        int e = SSL_get_error(from, r);
        ERR_clear_error();
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
}

static void *serve(void *arg)
{
    conn *c = arg;
    int fd = c->fd_down;
    SSL *down = SSL_new(g_srv);
    SSL_set_fd(down, fd);
    SSL_set_app_data(down, c);
    if (SSL_accept(down) == 1 && c->up) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(c->fd_up, F_SETFL, fcntl(c->fd_up, F_GETFL) | O_NONBLOCK);
        for (;;) {
            if (pump(down, c->up, c->fd_up) < 0 || pump(c->up, down, fd) < 0)
                break;
            struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = c->fd_up, .events = POLLIN}};
            if (poll(p, 2, 60000) <= 0)
                break;
        }
    }
    logf_("connection %d: closed", c->n);
    SSL_free(down);
    SSL_free(c->up);
    close(fd);
    if (c->fd_up >= 0)
        close(c->fd_up);
    free(c);
    ERR_clear_error();
    return NULL;
}

static SSL_CTX *contexts(const char *cert, const char *key)
{
    g_srv = SSL_CTX_new(TLS_server_method());
    g_cli = SSL_CTX_new(TLS_client_method());
    if (!g_srv || !g_cli || SSL_CTX_use_certificate_chain_file(g_srv, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(g_srv, key, SSL_FILETYPE_PEM) != 1 ||
        !SSL_CTX_add_custom_ext(g_srv, ATLS_EXT, ATLS_CONTEXTS, ext_add, NULL, NULL, ext_parse,
                                NULL) ||
        !SSL_CTX_add_custom_ext(g_cli, ATLS_EXT, ATLS_CONTEXTS, ext_add, NULL, NULL, ext_parse,
                                NULL))
        return NULL;
    SSL_CTX_set_client_hello_cb(g_srv, hello_cb, NULL);
    SSL_CTX_set_verify(g_cli, SSL_VERIFY_NONE, NULL);   /* the attacker trusts anything */
    return g_srv;
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    int listen_port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--upstream"))
            g_upstream_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cert"))
            cert = argv[i + 1];
        else if (!strcmp(argv[i], "--key"))
            key = argv[i + 1];
        else if (!strcmp(argv[i], "--listen"))
            listen_port = atoi(argv[i + 1]);
    }
    if (!cert || !key || g_upstream_port <= 0) {
        fprintf(stderr, "usage: %s --upstream PORT --cert PEM --key PEM [--listen PORT]\n",
                argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!contexts(cert, key)) {
        fprintf(stderr, "tmqtt-test-atls-relay: cannot load %s / %s\n", cert, key);
        return 1;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 16) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) < 0) {
        fprintf(stderr, "tmqtt-test-atls-relay: cannot listen: %s\n", strerror(errno));
        return 1;
    }
    logf_("listening %d", ntohs(a.sin_port));
    for (int n = 1;; n++) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        conn *c = calloc(1, sizeof *c);
        pthread_t t;
        if (!c) {
            close(fd);
            continue;
        }
        c->n = n;
        c->fd_down = fd;
        c->fd_up = -1;
        if (pthread_create(&t, NULL, serve, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
}
