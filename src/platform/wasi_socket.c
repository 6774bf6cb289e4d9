/*
 * wasi_socket.c — POSIX socket calls for wasm32-wasi on WAMR's socket-extension
 * imports (see wasi_socket.h). Guest-side code: compiled only for WASI.
 *
 * The address structure of the imports (__wasi_addr_t, 24 bytes) is a kind tag
 * followed by the IPv4 bytes or eight IPv6 16-bit groups and a port, all in the
 * module's (little-endian) byte order, not network order; the conversion to and from
 * struct sockaddr_in/_in6 is the only real work here. Import errors are WASI errno
 * values, which are wasi-libc's errno values, so they go to errno unchanged.
 */
#ifdef __wasi__
#include "platform/wasi_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <wasi/api.h>

/* -- imports (WAMR libc-wasi names and signatures) ------------------------------- */

#define TM_IMPORT(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(name)))

typedef struct {
    uint32_t kind; /* 0 = IPv4, 1 = IPv6 */
    union {
        struct { uint8_t n[4]; uint16_t port; } ip4;
        struct { uint16_t g[8]; uint16_t port; } ip6;
    } u;
} tm_wasi_addr;
_Static_assert(sizeof(tm_wasi_addr) == 24, "WAMR __wasi_addr_t is 24 bytes");

typedef struct {
    tm_wasi_addr addr;
    uint32_t type; /* 0 = dgram, 1 = stream */
} tm_wasi_addr_info;
_Static_assert(sizeof(tm_wasi_addr_info) == 28, "WAMR __wasi_addr_info_t is 28 bytes");

typedef struct {
    uint32_t type;
    uint32_t family;
    uint8_t enabled;
} tm_wasi_addr_hints;

uint32_t tm_imp_sock_open(uint32_t poolfd, uint32_t af, uint32_t type, uint32_t *fd) TM_IMPORT("sock_open");
uint32_t tm_imp_sock_bind(uint32_t fd, tm_wasi_addr *a) TM_IMPORT("sock_bind");
uint32_t tm_imp_sock_connect(uint32_t fd, tm_wasi_addr *a) TM_IMPORT("sock_connect");
uint32_t tm_imp_sock_listen(uint32_t fd, uint32_t backlog) TM_IMPORT("sock_listen");
uint32_t tm_imp_sock_addr_local(uint32_t fd, tm_wasi_addr *a) TM_IMPORT("sock_addr_local");
uint32_t tm_imp_sock_addr_remote(uint32_t fd, tm_wasi_addr *a) TM_IMPORT("sock_addr_remote");
uint32_t tm_imp_sock_addr_resolve(const char *host, const char *service, tm_wasi_addr_hints *hints,
                                  tm_wasi_addr_info *out, uint32_t out_n, uint32_t *total)
    TM_IMPORT("sock_addr_resolve");
uint32_t tm_imp_set_reuse_addr(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_reuse_addr");
uint32_t tm_imp_get_reuse_addr(uint32_t fd, uint8_t *v) TM_IMPORT("sock_get_reuse_addr");
uint32_t tm_imp_set_reuse_port(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_reuse_port");
uint32_t tm_imp_get_reuse_port(uint32_t fd, uint8_t *v) TM_IMPORT("sock_get_reuse_port");
uint32_t tm_imp_set_keep_alive(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_keep_alive");
uint32_t tm_imp_get_keep_alive(uint32_t fd, uint8_t *v) TM_IMPORT("sock_get_keep_alive");
uint32_t tm_imp_set_broadcast(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_broadcast");
uint32_t tm_imp_get_broadcast(uint32_t fd, uint8_t *v) TM_IMPORT("sock_get_broadcast");
uint32_t tm_imp_set_tcp_no_delay(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_tcp_no_delay");
uint32_t tm_imp_get_tcp_no_delay(uint32_t fd, uint8_t *v) TM_IMPORT("sock_get_tcp_no_delay");
uint32_t tm_imp_set_tcp_quick_ack(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_tcp_quick_ack");
uint32_t tm_imp_get_tcp_quick_ack(uint32_t fd, uint8_t *v) TM_IMPORT("sock_get_tcp_quick_ack");
uint32_t tm_imp_set_ipv6_only(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_ipv6_only");
uint32_t tm_imp_get_ipv6_only(uint32_t fd, uint8_t *v) TM_IMPORT("sock_get_ipv6_only");
uint32_t tm_imp_set_recv_buf_size(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_recv_buf_size");
uint32_t tm_imp_get_recv_buf_size(uint32_t fd, uint32_t *v) TM_IMPORT("sock_get_recv_buf_size");
uint32_t tm_imp_set_send_buf_size(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_send_buf_size");
uint32_t tm_imp_get_send_buf_size(uint32_t fd, uint32_t *v) TM_IMPORT("sock_get_send_buf_size");
uint32_t tm_imp_set_tcp_keep_idle(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_tcp_keep_idle");
uint32_t tm_imp_get_tcp_keep_idle(uint32_t fd, uint32_t *v) TM_IMPORT("sock_get_tcp_keep_idle");
uint32_t tm_imp_set_tcp_keep_intvl(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_tcp_keep_intvl");
uint32_t tm_imp_get_tcp_keep_intvl(uint32_t fd, uint32_t *v) TM_IMPORT("sock_get_tcp_keep_intvl");
uint32_t tm_imp_set_ip_ttl(uint32_t fd, uint32_t v) TM_IMPORT("sock_set_ip_ttl");
uint32_t tm_imp_get_ip_ttl(uint32_t fd, uint8_t *v) TM_IMPORT("sock_get_ip_ttl");
uint32_t tm_imp_set_recv_timeout(uint32_t fd, uint64_t us) TM_IMPORT("sock_set_recv_timeout");
uint32_t tm_imp_get_recv_timeout(uint32_t fd, uint64_t *us) TM_IMPORT("sock_get_recv_timeout");
uint32_t tm_imp_set_send_timeout(uint32_t fd, uint64_t us) TM_IMPORT("sock_set_send_timeout");
uint32_t tm_imp_get_send_timeout(uint32_t fd, uint64_t *us) TM_IMPORT("sock_get_send_timeout");
uint32_t tm_imp_set_linger(uint32_t fd, uint32_t on, uint32_t secs) TM_IMPORT("sock_set_linger");
uint32_t tm_imp_get_linger(uint32_t fd, uint8_t *on, uint32_t *secs) TM_IMPORT("sock_get_linger");

static int fail(uint32_t e)
{
    errno = (int)e;
    return -1;
}
#define CHECK(call)                 \
    do {                            \
        uint32_t e_ = (call);       \
        if (e_) return fail(e_);    \
    } while (0)

/* -- address conversion ---------------------------------------------------------- */

static int to_wasi(const struct sockaddr *sa, socklen_t len, tm_wasi_addr *out)
{
    memset(out, 0, sizeof *out);
    if (!sa) return fail(EFAULT);
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        out->kind = 0;
        memcpy(out->u.ip4.n, &s->sin_addr, 4);
        out->u.ip4.port = ntohs(s->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        out->kind = 1;
        for (int i = 0; i < 8; i++)
            out->u.ip6.g[i] = (uint16_t)(s->sin6_addr.s6_addr[2 * i] << 8 | s->sin6_addr.s6_addr[2 * i + 1]);
        out->u.ip6.port = ntohs(s->sin6_port);
        return 0;
    }
    return fail(sa->sa_family == AF_INET || sa->sa_family == AF_INET6 ? EINVAL : EAFNOSUPPORT);
}

/* Writes at most *len bytes of the sockaddr and sets *len to the full size. */
static void from_wasi(const tm_wasi_addr *a, struct sockaddr *sa, socklen_t *len)
{
    struct sockaddr_storage ss;
    socklen_t full;
    memset(&ss, 0, sizeof ss);
    if (a->kind == 0) {
        struct sockaddr_in *s = (struct sockaddr_in *)&ss;
        s->sin_family = AF_INET;
        memcpy(&s->sin_addr, a->u.ip4.n, 4);
        s->sin_port = htons(a->u.ip4.port);
        full = sizeof *s;
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
        s->sin6_family = AF_INET6;
        for (int i = 0; i < 8; i++) {
            s->sin6_addr.s6_addr[2 * i] = (uint8_t)(a->u.ip6.g[i] >> 8);
            s->sin6_addr.s6_addr[2 * i + 1] = (uint8_t)a->u.ip6.g[i];
        }
        s->sin6_port = htons(a->u.ip6.port);
        full = sizeof *s;
    }
    if (sa && len) memcpy(sa, &ss, *len < full ? *len : full);
    if (len) *len = full;
}

/* -- calls ------------------------------------------------------------------------ */

int socket(int domain, int type, int protocol)
{
    (void)protocol; /* the runtime picks TCP for streams, UDP for datagrams */
    uint32_t af, st, fd;
    if (domain == AF_INET) af = 0;
    else if (domain == AF_INET6) af = 1;
    else return fail(EAFNOSUPPORT);
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (base == SOCK_STREAM) st = 1;
    else if (base == SOCK_DGRAM) st = 0;
    else return fail(EPROTOTYPE);
    CHECK(tm_imp_sock_open(0, af, st, &fd));
    if (type & SOCK_NONBLOCK) {
        uint32_t e = __wasi_fd_fdstat_set_flags(fd, __WASI_FDFLAGS_NONBLOCK);
        if (e) {
            (void)__wasi_fd_close(fd);
            return fail(e);
        }
    }
    return (int)fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    tm_wasi_addr a;
    if (to_wasi(addr, len, &a) != 0) return -1;
    CHECK(tm_imp_sock_bind((uint32_t)fd, &a));
    return 0;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    tm_wasi_addr a;
    if (to_wasi(addr, len, &a) != 0) return -1;
    CHECK(tm_imp_sock_connect((uint32_t)fd, &a));
    return 0;
}

int listen(int fd, int backlog)
{
    CHECK(tm_imp_sock_listen((uint32_t)fd, backlog < 0 ? 0 : (uint32_t)backlog));
    return 0;
}

int accept4(int fd, struct sockaddr *restrict addr, socklen_t *restrict len, int flags)
{
    __wasi_fd_t nfd;
    CHECK(__wasi_sock_accept((uint32_t)fd, (flags & SOCK_NONBLOCK) ? __WASI_FDFLAGS_NONBLOCK : 0, &nfd));
    if (addr && len) {
        tm_wasi_addr a;
        if (tm_imp_sock_addr_remote(nfd, &a) == 0) from_wasi(&a, addr, len);
        else *len = 0;
    }
    return (int)nfd;
}

int accept(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
    return accept4(fd, addr, len, 0);
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    tm_wasi_addr a;
    CHECK(tm_imp_sock_addr_local((uint32_t)fd, &a));
    from_wasi(&a, addr, len);
    return 0;
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    tm_wasi_addr a;
    CHECK(tm_imp_sock_addr_remote((uint32_t)fd, &a));
    from_wasi(&a, addr, len);
    return 0;
}

static int int_arg(const void *v, socklen_t len, uint32_t *out)
{
    if (!v || len < sizeof(int)) return fail(EINVAL);
    int i;
    memcpy(&i, v, sizeof i);
    *out = (uint32_t)i;
    return 0;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    uint32_t v = 0;
    uint32_t f = (uint32_t)fd;
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_RCVTIMEO:
        case SO_SNDTIMEO: {
            if (!value || len < sizeof(struct timeval)) return fail(EINVAL);
            struct timeval tv;
            memcpy(&tv, value, sizeof tv);
            uint64_t us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
            CHECK(name == SO_RCVTIMEO ? tm_imp_set_recv_timeout(f, us) : tm_imp_set_send_timeout(f, us));
            return 0;
        }
        case SO_LINGER: {
            if (!value || len < sizeof(struct linger)) return fail(EINVAL);
            struct linger l;
            memcpy(&l, value, sizeof l);
            CHECK(tm_imp_set_linger(f, l.l_onoff != 0, (uint32_t)l.l_linger));
            return 0;
        }
        default:
            break;
        }
    }
    if (int_arg(value, len, &v) != 0) return -1;
    uint32_t e;
    if (level == SOL_SOCKET && name == SO_REUSEADDR) e = tm_imp_set_reuse_addr(f, v != 0);
    else if (level == SOL_SOCKET && name == SO_REUSEPORT) e = tm_imp_set_reuse_port(f, v != 0);
    else if (level == SOL_SOCKET && name == SO_KEEPALIVE) e = tm_imp_set_keep_alive(f, v != 0);
    else if (level == SOL_SOCKET && name == SO_BROADCAST) e = tm_imp_set_broadcast(f, v != 0);
    else if (level == SOL_SOCKET && name == SO_RCVBUF) e = tm_imp_set_recv_buf_size(f, v);
    else if (level == SOL_SOCKET && name == SO_SNDBUF) e = tm_imp_set_send_buf_size(f, v);
    else if (level == IPPROTO_TCP && name == TCP_NODELAY) e = tm_imp_set_tcp_no_delay(f, v != 0);
    else if (level == IPPROTO_TCP && name == TCP_QUICKACK) e = tm_imp_set_tcp_quick_ack(f, v != 0);
    else if (level == IPPROTO_TCP && name == TCP_KEEPIDLE) e = tm_imp_set_tcp_keep_idle(f, v);
    else if (level == IPPROTO_TCP && name == TCP_KEEPINTVL) e = tm_imp_set_tcp_keep_intvl(f, v);
    else if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) e = tm_imp_set_ipv6_only(f, v != 0);
    else if (level == IPPROTO_IP && name == IP_TTL) e = tm_imp_set_ip_ttl(f, v);
    else e = ENOPROTOOPT;
    return e ? fail(e) : 0;
}

static int put_int(void *value, socklen_t *len, int v)
{
    if (!value || !len || *len < sizeof(int)) return fail(EINVAL);
    memcpy(value, &v, sizeof v);
    *len = sizeof v;
    return 0;
}

int getsockopt(int fd, int level, int name, void *restrict value, socklen_t *restrict len)
{
    uint32_t f = (uint32_t)fd, u = 0;
    uint8_t b = 0;
    uint32_t e;
    if (level == SOL_SOCKET && name == SO_TYPE) {
        __wasi_fdstat_t st;
        CHECK(__wasi_fd_fdstat_get(f, &st));
        if (st.fs_filetype == __WASI_FILETYPE_SOCKET_STREAM) return put_int(value, len, SOCK_STREAM);
        if (st.fs_filetype == __WASI_FILETYPE_SOCKET_DGRAM) return put_int(value, len, SOCK_DGRAM);
        return fail(ENOTSOCK);
    }
    if (level == SOL_SOCKET && name == SO_ERROR) return put_int(value, len, 0); /* see header */
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        uint64_t us = 0;
        CHECK(name == SO_RCVTIMEO ? tm_imp_get_recv_timeout(f, &us) : tm_imp_get_send_timeout(f, &us));
        if (!value || !len || *len < sizeof(struct timeval)) return fail(EINVAL);
        struct timeval tv = {.tv_sec = (time_t)(us / 1000000u), .tv_usec = (suseconds_t)(us % 1000000u)};
        memcpy(value, &tv, sizeof tv);
        *len = sizeof tv;
        return 0;
    }
    if (level == SOL_SOCKET && name == SO_LINGER) {
        uint32_t secs = 0;
        CHECK(tm_imp_get_linger(f, &b, &secs));
        if (!value || !len || *len < sizeof(struct linger)) return fail(EINVAL);
        struct linger l = {.l_onoff = b, .l_linger = (int)secs};
        memcpy(value, &l, sizeof l);
        *len = sizeof l;
        return 0;
    }
    bool is_bool = true;
    if (level == SOL_SOCKET && name == SO_REUSEADDR) e = tm_imp_get_reuse_addr(f, &b);
    else if (level == SOL_SOCKET && name == SO_REUSEPORT) e = tm_imp_get_reuse_port(f, &b);
    else if (level == SOL_SOCKET && name == SO_KEEPALIVE) e = tm_imp_get_keep_alive(f, &b);
    else if (level == SOL_SOCKET && name == SO_BROADCAST) e = tm_imp_get_broadcast(f, &b);
    else if (level == IPPROTO_TCP && name == TCP_NODELAY) e = tm_imp_get_tcp_no_delay(f, &b);
    else if (level == IPPROTO_TCP && name == TCP_QUICKACK) e = tm_imp_get_tcp_quick_ack(f, &b);
    else if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) e = tm_imp_get_ipv6_only(f, &b);
    else if (level == IPPROTO_IP && name == IP_TTL) e = tm_imp_get_ip_ttl(f, &b);
    else {
        is_bool = false;
        if (level == SOL_SOCKET && name == SO_RCVBUF) e = tm_imp_get_recv_buf_size(f, &u);
        else if (level == SOL_SOCKET && name == SO_SNDBUF) e = tm_imp_get_send_buf_size(f, &u);
        else if (level == IPPROTO_TCP && name == TCP_KEEPIDLE) e = tm_imp_get_tcp_keep_idle(f, &u);
        else if (level == IPPROTO_TCP && name == TCP_KEEPINTVL) e = tm_imp_get_tcp_keep_intvl(f, &u);
        else e = ENOPROTOOPT;
    }
    if (e) return fail(e);
    return put_int(value, len, is_bool ? (int)b : (int)u);
}

/* -- getaddrinfo ------------------------------------------------------------------- */

static struct addrinfo *ai_new(const struct sockaddr *sa, socklen_t len, int socktype)
{
    struct addrinfo *ai = calloc(1, sizeof *ai + sizeof(struct sockaddr_storage));
    if (!ai) return NULL;
    ai->ai_addr = (struct sockaddr *)(void *)(ai + 1);
    memcpy(ai->ai_addr, sa, len);
    ai->ai_addrlen = len;
    ai->ai_family = sa->sa_family;
    ai->ai_socktype = socktype;
    ai->ai_protocol = socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
    return ai;
}

static int parse_port(const char *service, uint16_t *port)
{
    *port = 0;
    if (!service || !*service) return 0;
    char *end;
    long p = strtol(service, &end, 10);
    if (*end || p < 0 || p > 65535) return EAI_SERVICE; /* no services database on WASI */
    *port = (uint16_t)p;
    return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int family = hints ? hints->ai_family : AF_UNSPEC;
    int socktype = hints && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
    int flags = hints ? hints->ai_flags : 0;
    uint16_t port;
    int r = parse_port(service, &port);
    if (r) return r;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return EAI_FAMILY;
    *res = NULL;
    struct addrinfo *head = NULL, **tail = &head;
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    memset(&s4, 0, sizeof s4);
    memset(&s6, 0, sizeof s6);
    s4.sin_family = AF_INET;
    s4.sin_port = htons(port);
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(port);

    if (!node) { /* wildcard (AI_PASSIVE) or loopback */
        if (!(flags & AI_PASSIVE)) s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (!(flags & AI_PASSIVE)) s6.sin6_addr.s6_addr[15] = 1;
        if (family != AF_INET) *tail = ai_new((struct sockaddr *)&s6, sizeof s6, socktype);
        if (*tail) tail = &(*tail)->ai_next;
        if (family != AF_INET6) *tail = ai_new((struct sockaddr *)&s4, sizeof s4, socktype);
        *res = head;
        return head ? 0 : EAI_MEMORY;
    }
    if (family != AF_INET6 && inet_pton(AF_INET, node, &s4.sin_addr) == 1) {
        *res = ai_new((struct sockaddr *)&s4, sizeof s4, socktype);
        return *res ? 0 : EAI_MEMORY;
    }
    if (family != AF_INET && inet_pton(AF_INET6, node, &s6.sin6_addr) == 1) {
        *res = ai_new((struct sockaddr *)&s6, sizeof s6, socktype);
        return *res ? 0 : EAI_MEMORY;
    }
    if (flags & AI_NUMERICHOST) return EAI_NONAME;

    tm_wasi_addr_info infos[16];
    uint32_t total = 0;
    tm_wasi_addr_hints h = {.type = socktype == SOCK_DGRAM ? 0 : 1,
                            .family = family == AF_INET6 ? 1 : 0,
                            .enabled = family != AF_UNSPEC};
    uint32_t e = tm_imp_sock_addr_resolve(node, "", &h, infos, 16, &total);
    if (e) {
        errno = (int)e;
        return e == ENOENT ? EAI_NONAME : EAI_SYSTEM;
    }
    for (uint32_t i = 0; i < total && i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t l = sizeof ss;
        from_wasi(&infos[i].addr, (struct sockaddr *)&ss, &l);
        if (ss.ss_family == AF_INET) ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        else ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        if (family != AF_UNSPEC && ss.ss_family != family) continue;
        *tail = ai_new((struct sockaddr *)&ss, l, socktype);
        if (!*tail) {
            freeaddrinfo(head);
            return EAI_MEMORY;
        }
        tail = &(*tail)->ai_next;
    }
    *res = head;
    return head ? 0 : EAI_NONAME;
}

void freeaddrinfo(struct addrinfo *res)
{
    while (res) {
        struct addrinfo *n = res->ai_next;
        free(res);
        res = n;
    }
}

int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen, char *serv,
                socklen_t servlen, int flags)
{
    if (flags & NI_NAMEREQD) return EAI_NONAME;
    const void *addr;
    uint16_t port;
    if (sa && sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        addr = &((const struct sockaddr_in *)sa)->sin_addr;
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa && sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    } else {
        return EAI_FAMILY;
    }
    if (host && hostlen && !inet_ntop(sa->sa_family, addr, host, hostlen)) return EAI_SYSTEM;
    if (serv && servlen) {
        int n = snprintf(serv, servlen, "%u", port);
        if (n < 0 || (socklen_t)n >= servlen) return EAI_SYSTEM;
    }
    return 0;
}

const char *gai_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case EAI_NONAME: return "name does not resolve (only numeric addresses and localhost on WASI)";
    case EAI_SERVICE: return "service must be a port number on WASI";
    case EAI_FAMILY: return "address family not supported";
    case EAI_MEMORY: return "out of memory";
    case EAI_SYSTEM: return "system error (see errno)";
    default: return "name resolution failed";
    }
}
#endif /* __wasi__ */
