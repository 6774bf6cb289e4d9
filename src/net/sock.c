/*
 * sock.c — socket helpers over the POSIX API. On WASI the same calls are
 * provided by src/platform/wasi_socket.c on top of the runtime's socket
 * imports (declared by platform/wasi_socket.h, the only WASI difference here).
 */
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __wasi__
#include "platform/wasi_socket.h" /* socket(), bind(), listen(), getaddrinfo() ... */
#else
#include <netdb.h>
#endif

/* Fill a sockaddr from a numeric host. Returns its length or 0 if unparsable. */
static socklen_t make_addr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (!host || !*host || strcmp(host, "::") == 0) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        a6->sin6_addr = in6addr_any;
        return sizeof *a6;
    }
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        return sizeof *a4;
    }
    char tmp[64];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof tmp) {
        memcpy(tmp, host + 1, hl - 2);
        tmp[hl - 2] = 0;
        host = tmp;
    }
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        return sizeof *a6;
    }
    return 0;
}

int tm_sock_resolve(const char *host, char *numeric, size_t cap, char *err, size_t errcap)
{
    const char *h = host && *host ? host : "localhost";
    unsigned char tmp[16];
    if (!strcmp(h, "localhost") || inet_pton(AF_INET, h, tmp) == 1 ||
        inet_pton(AF_INET6, h, tmp) == 1) {
        snprintf(numeric, cap, "%s", h);
        return 0;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(h, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errcap, "cannot resolve host '%s': %s", h, gai_strerror(rc));
        return -1;
    }
    void *addr = res->ai_family == AF_INET
                     ? (void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                     : (void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
    inet_ntop(res->ai_family, addr, numeric, (socklen_t)cap);
    freeaddrinfo(res);
    return 0;
}

int tm_sock_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int tm_sock_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int tm_sock_listen(const char *host, uint16_t port, int backlog, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t sl = make_addr(host, port, &ss);
    if (!sl) {
        snprintf(err, errcap, "'%s' is not a numeric IPv4/IPv6 address", host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef IPV6_V6ONLY
    if (ss.ss_family == AF_INET6 && (!host || !*host)) {
        int zero = 0; /* wildcard: accept IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
#endif
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, backlog) < 0 ||
        tm_sock_nonblock(fd) < 0) {
        snprintf(err, errcap, "listen on %s port %u: %s", host && *host ? host : "*",
                 (unsigned)port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int tm_sock_connect(const char *host, uint16_t port, int nonblock, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t sl = make_addr(host && *host ? host : "127.0.0.1", port, &ss);
    if (!sl) {
        snprintf(err, errcap, "'%s' is not a numeric IPv4/IPv6 address", host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    if (nonblock && tm_sock_nonblock(fd) < 0) {
        snprintf(err, errcap, "fcntl: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && !(nonblock && errno == EINPROGRESS)) {
        snprintf(err, errcap, "connect to %s port %u: %s", host, (unsigned)port,
                 strerror(errno));
        close(fd);
        return -1;
    }
    tm_sock_nodelay(fd);
    return fd;
}

uint16_t tm_sock_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void tm_sock_peer_name(int fd, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char a[INET6_ADDRSTRLEN] = "?";
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        snprintf(buf, cap, "%s:%u", a, (unsigned)ntohs(s4->sin_port));
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
        snprintf(buf, cap, "[%s]:%u", a, (unsigned)ntohs(s6->sin6_port));
    }
}
