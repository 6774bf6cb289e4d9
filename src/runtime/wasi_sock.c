/*
 * wasi_sock.c — sockets for modules: WASI preview 1's sock_accept/recv/send/shutdown
 * and WAMR's socket extension (sock_open, sock_bind, sock_connect, sock_listen,
 * sock_addr_*, sock_set/get_* ...), with the same import names, signatures and
 * address layout as WAMR's libc-wasi, so one .wasm runs on both runtimes.
 *
 * Policy: a module may bind or connect (or send_to) only addresses inside the
 * --addr-pool prefixes; with no pool, it may not bind or connect at all (WAMR's rule
 * too). Accepted connections need no check: the listener was checked. A refused
 * address yields EACCES (WAMR's answer) and a line on stderr.
 * Name resolution answers numeric addresses and "localhost" only, unless --allow-dns.
 * SIGPIPE is ignored process-wide (main.c), and sends use MSG_NOSIGNAL, so a peer
 * that goes away is an EPIPE for the module, never the death of the runtime.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/host.h"
#include "runtime/host_imports.h"

/* -- address pool ------------------------------------------------------------- */

int tm_pool_parse(tm_host *h, const char *spec, char *err, size_t errlen)
{
    char *copy = strdup(spec), *save = NULL;
    if (!copy) return -1;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        tm_addr_net n;
        memset(&n, 0, sizeof n);
        char *slash = strchr(tok, '/');
        long prefix = -1;
        if (slash) {
            *slash = 0;
            char *end;
            prefix = strtol(slash + 1, &end, 10);
            if (*end || end == slash + 1) prefix = -2;
        }
        if (inet_pton(AF_INET, tok, n.addr) == 1) {
            n.family = AF_INET;
            if (prefix == -1) prefix = 32;
            if (prefix < 0 || prefix > 32) goto bad;
        } else if (inet_pton(AF_INET6, tok, n.addr) == 1) {
            n.family = AF_INET6;
            if (prefix == -1) prefix = 128;
            if (prefix < 0 || prefix > 128) goto bad;
        } else {
            goto bad;
        }
        n.prefix = (unsigned)prefix;
        tm_addr_net *np = realloc(h->pool, (h->npool + 1) * sizeof *np);
        if (!np) goto bad;
        h->pool = np;
        h->pool[h->npool++] = n;
        continue;
    bad:
        snprintf(err, errlen, "--addr-pool: bad entry '%s' (want ADDR[/PREFIX], IPv4 or IPv6)", tok);
        free(copy);
        return -1;
    }
    free(copy);
    return 0;
}

void tm_pool_fini(tm_host *h)
{
    free(h->pool);
    h->pool = NULL;
    h->npool = 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0) return false;
    if (!rest) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static bool pool_allows(const tm_host *h, const struct sockaddr_storage *ss)
{
    const uint8_t *a;
    if (ss->ss_family == AF_INET) a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
    else if (ss->ss_family == AF_INET6) a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    else return false;
    for (size_t i = 0; i < h->npool; i++)
        if (h->pool[i].family == ss->ss_family && prefix_match(a, h->pool[i].addr, h->pool[i].prefix))
            return true;
    return false;
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
    }
    snprintf(buf, len, "%s port %u", ip, port);
    return buf;
}

/* -- WAMR __wasi_addr_t <-> sockaddr ---------------------------------------------- */

static uint16_t addr_decode(tm_host *h, uint32_t p, struct sockaddr_storage *ss, socklen_t *len)
{
    if (!tm_mem_ok(h, p, TM_WAMR_ADDR_SIZE)) return TM_EFAULT;
    memset(ss, 0, sizeof *ss);
    uint32_t kind = tm_ld32(h, p);
    if (kind == 0) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, tm_mem(h, p + 4), 4);
        s4->sin_port = htons(tm_ld16(h, p + 8));
        *len = sizeof *s4;
    } else if (kind == 1) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        for (int i = 0; i < 8; i++) {
            uint16_t g = tm_ld16(h, p + 4 + 2 * (uint32_t)i);
            s6->sin6_addr.s6_addr[2 * i] = (uint8_t)(g >> 8);
            s6->sin6_addr.s6_addr[2 * i + 1] = (uint8_t)g;
        }
        s6->sin6_port = htons(tm_ld16(h, p + 20));
        *len = sizeof *s6;
    } else {
        return TM_EAFNOSUPPORT;
    }
    return TM_ESUCCESS;
}

static uint16_t addr_encode(tm_host *h, uint32_t p, const struct sockaddr_storage *ss)
{
    if (!tm_mem_ok(h, p, TM_WAMR_ADDR_SIZE)) return TM_EFAULT;
    memset(tm_mem(h, p), 0, TM_WAMR_ADDR_SIZE);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        tm_st32(h, p, 0);
        memcpy(tm_mem(h, p + 4), &s4->sin_addr, 4);
        tm_st16(h, p + 8, ntohs(s4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        tm_st32(h, p, 1);
        for (int i = 0; i < 8; i++)
            tm_st16(h, p + 4 + 2 * (uint32_t)i,
                    (uint16_t)(s6->sin6_addr.s6_addr[2 * i] << 8 | s6->sin6_addr.s6_addr[2 * i + 1]));
        tm_st16(h, p + 20, ntohs(s6->sin6_port));
    } else {
        return TM_EAFNOSUPPORT;
    }
    return TM_ESUCCESS;
}

static tm_fd *get_sock(tm_host *h, uint32_t fd, uint16_t *e)
{
    tm_fd *f = tm_fd_get(h, fd);
    if (!f) { *e = TM_EBADF; return NULL; }
    if (f->kind != TM_FD_SOCKET && f->filetype != TM_FT_SOCK_STREAM && f->filetype != TM_FT_SOCK_DGRAM) {
        *e = TM_ENOTSOCK;
        return NULL;
    }
    return f;
}

#define GET_SOCK(h, fd, f)                     \
    uint16_t e_ = 0;                           \
    tm_fd *f = get_sock((h), (fd), &e_);       \
    if (!f) return e_

/* -- lifecycle ------------------------------------------------------------------- */

u32 TM_WASI(sock_open)(TM_WASI_CTX, u32 poolfd, u32 af, u32 socktype, u32 fd_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, fd_out, 4)) return TM_EFAULT;
    int family, type;
    if (af == TM_WAMR_INET4) family = AF_INET;
    else if (af == TM_WAMR_INET6) family = AF_INET6;
    else return TM_EAFNOSUPPORT;
    if (socktype == TM_WAMR_SOCK_STREAM) type = SOCK_STREAM;
    else if (socktype == TM_WAMR_SOCK_DGRAM) type = SOCK_DGRAM;
    else return TM_EPROTOTYPE;
    int s = socket(family, type | SOCK_CLOEXEC, 0);
    if (s < 0) return tm_errno_from_host(errno);
    uint32_t g;
    uint16_t e = tm_fd_alloc(h, TM_FD_SOCKET, s, &g);
    if (e) {
        close(s);
        return e;
    }
    h->fds[g].sock_family = family;
    tm_st32(h, fd_out, g);
    TM_TRACE(h, "sock_open(%s, %s) -> fd %u", family == AF_INET ? "inet4" : "inet6",
             type == SOCK_STREAM ? "stream" : "dgram", g);
    return TM_ESUCCESS;
}

u32 TM_WASI(sock_close)(TM_WASI_CTX, u32 fd)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_SOCK(h, fd, f);
    (void)f;
    tm_fd_release(h, fd);
    return TM_ESUCCESS;
}

static u32 bind_or_connect(tm_host *h, u32 fd, u32 addr, bool is_bind)
{
    GET_SOCK(h, fd, f);
    struct sockaddr_storage ss;
    socklen_t len;
    uint16_t e = addr_decode(h, addr, &ss, &len);
    if (e) return e;
    char buf[80];
    if (!pool_allows(h, &ss)) {
        /* Always logged: the operator can act on it (widen --addr-pool or fix config). */
        fprintf(stderr, "tmqtt-wasm: %s to %s refused: not in --addr-pool\n", is_bind ? "bind" : "connect",
                addr_str(&ss, buf, sizeof buf));
        return TM_EACCES;
    }
    int r = is_bind ? bind(f->host, (struct sockaddr *)&ss, len)
                    : connect(f->host, (struct sockaddr *)&ss, len);
    e = r == 0 ? TM_ESUCCESS : tm_errno_from_host(errno);
    TM_TRACE(h, "%s(fd %u, %s) -> %s", is_bind ? "bind" : "connect", fd,
             addr_str(&ss, buf, sizeof buf), tm_errno_name(e));
    return e;
}

u32 TM_WASI(sock_bind)(TM_WASI_CTX, u32 fd, u32 addr) { return bind_or_connect(TM_HOST_OF(ctx), fd, addr, true); }
u32 TM_WASI(sock_connect)(TM_WASI_CTX, u32 fd, u32 addr) { return bind_or_connect(TM_HOST_OF(ctx), fd, addr, false); }

u32 TM_WASI(sock_listen)(TM_WASI_CTX, u32 fd, u32 backlog)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_SOCK(h, fd, f);
    int b = backlog > (u32)SOMAXCONN * 64 ? SOMAXCONN * 64 : (int)backlog;
    return listen(f->host, b) == 0 ? TM_ESUCCESS : tm_errno_from_host(errno);
}

u32 TM_WASI(sock_accept)(TM_WASI_CTX, u32 fd, u32 flags, u32 fd_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_SOCK(h, fd, f);
    if (!tm_mem_ok(h, fd_out, 4)) return TM_EFAULT;
    if (flags & ~(u32)TM_FDFLAG_NONBLOCK) return TM_EINVAL;
    int s = accept4(f->host, NULL, NULL, SOCK_CLOEXEC | (flags & TM_FDFLAG_NONBLOCK ? SOCK_NONBLOCK : 0));
    if (s < 0) return tm_errno_from_host(errno);
    /* read before tm_fd_alloc: growing the table moves it, and f with it */
    int family = f->sock_family;
    uint32_t g;
    uint16_t e = tm_fd_alloc(h, TM_FD_SOCKET, s, &g);
    if (e) {
        close(s);
        return e;
    }
    h->fds[g].sock_family = family;
    tm_st32(h, fd_out, g);
    return TM_ESUCCESS;
}

u32 TM_WASI(sock_shutdown)(TM_WASI_CTX, u32 fd, u32 how)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_SOCK(h, fd, f);
    int m;
    switch (how) {
    case TM_SDFLAG_RD: m = SHUT_RD; break;
    case TM_SDFLAG_WR: m = SHUT_WR; break;
    case TM_SDFLAG_RD | TM_SDFLAG_WR: m = SHUT_RDWR; break;
    default: return TM_EINVAL;
    }
    return shutdown(f->host, m) == 0 ? TM_ESUCCESS : tm_errno_from_host(errno);
}

/* -- data ------------------------------------------------------------------------ */

static u32 do_recv(tm_host *h, u32 fd, u32 ri_data, u32 ri_len, u32 ri_flags, u32 src_out,
                   u32 datalen_out, u32 roflags_out)
{
    GET_SOCK(h, fd, f);
    if (!tm_mem_ok(h, datalen_out, 4) || (roflags_out != UINT32_MAX && !tm_mem_ok(h, roflags_out, 2)))
        return TM_EFAULT;
    if (ri_flags & ~(u32)(TM_RIFLAG_PEEK | TM_RIFLAG_WAITALL)) return TM_EINVAL;
    struct iovec *iov;
    int niov;
    uint16_t e = tm_iov_from_guest(h, ri_data, ri_len, &iov, &niov);
    if (e) return e;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)niov;
    if (src_out != UINT32_MAX) {
        m.msg_name = &ss;
        m.msg_namelen = sizeof ss;
    }
    int fl = (ri_flags & TM_RIFLAG_PEEK ? MSG_PEEK : 0) | (ri_flags & TM_RIFLAG_WAITALL ? MSG_WAITALL : 0);
    ssize_t n = recvmsg(f->host, &m, fl);
    int saved = errno;
    tm_iov_free(iov);
    if (n < 0) return tm_errno_from_host(saved);
    tm_st32(h, datalen_out, (uint32_t)n);
    if (roflags_out != UINT32_MAX) tm_st16(h, roflags_out, (m.msg_flags & MSG_TRUNC) ? TM_ROFLAG_TRUNCATED : 0);
    if (src_out != UINT32_MAX) {
        if (m.msg_namelen == 0) getpeername(f->host, (struct sockaddr *)&ss, &(socklen_t){sizeof ss});
        e = addr_encode(h, src_out, &ss);
        if (e == TM_EAFNOSUPPORT) e = TM_ESUCCESS; /* unconnected, no source: leave zeroed */
    }
    return e;
}

u32 TM_WASI(sock_recv)(TM_WASI_CTX, u32 fd, u32 ri_data, u32 ri_data_len, u32 ri_flags,
                       u32 ro_datalen_out, u32 ro_flags_out)
{
    return do_recv(TM_HOST_OF(ctx), fd, ri_data, ri_data_len, ri_flags, UINT32_MAX, ro_datalen_out,
                   ro_flags_out);
}

u32 TM_WASI(sock_recv_from)(TM_WASI_CTX, u32 fd, u32 ri_data, u32 ri_data_len, u32 ri_flags,
                            u32 src_addr_out, u32 ro_datalen_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, src_addr_out, TM_WAMR_ADDR_SIZE)) return TM_EFAULT;
    return do_recv(h, fd, ri_data, ri_data_len, ri_flags, src_addr_out, ro_datalen_out, UINT32_MAX);
}

static u32 do_send(tm_host *h, u32 fd, u32 si_data, u32 si_len, u32 dest, u32 datalen_out)
{
    GET_SOCK(h, fd, f);
    if (!tm_mem_ok(h, datalen_out, 4)) return TM_EFAULT;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (dest != UINT32_MAX) {
        uint16_t e = addr_decode(h, dest, &ss, &sl);
        if (e) return e;
        if (!pool_allows(h, &ss)) return TM_EACCES;
    }
    struct iovec *iov;
    int niov;
    uint16_t e = tm_iov_from_guest(h, si_data, si_len, &iov, &niov);
    if (e) return e;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)niov;
    if (dest != UINT32_MAX) {
        m.msg_name = &ss;
        m.msg_namelen = sl;
    }
    ssize_t n = sendmsg(f->host, &m, MSG_NOSIGNAL);
    int saved = errno;
    tm_iov_free(iov);
    if (n < 0) return tm_errno_from_host(saved);
    tm_st32(h, datalen_out, (uint32_t)n);
    return TM_ESUCCESS;
}

u32 TM_WASI(sock_send)(TM_WASI_CTX, u32 fd, u32 si_data, u32 si_data_len, u32 si_flags,
                       u32 so_datalen_out)
{
    return do_send(TM_HOST_OF(ctx), fd, si_data, si_data_len, UINT32_MAX, so_datalen_out);
}

u32 TM_WASI(sock_send_to)(TM_WASI_CTX, u32 fd, u32 si_data, u32 si_data_len, u32 si_flags,
                          u32 dest_addr, u32 so_datalen_out)
{
    return do_send(TM_HOST_OF(ctx), fd, si_data, si_data_len, dest_addr, so_datalen_out);
}

/* -- addresses ------------------------------------------------------------------- */

static u32 sock_name(tm_host *h, u32 fd, u32 out, bool peer)
{
    GET_SOCK(h, fd, f);
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    memset(&ss, 0, sizeof ss);
    int r = peer ? getpeername(f->host, (struct sockaddr *)&ss, &l)
                 : getsockname(f->host, (struct sockaddr *)&ss, &l);
    if (r != 0) return tm_errno_from_host(errno);
    return addr_encode(h, out, &ss);
}

u32 TM_WASI(sock_addr_local)(TM_WASI_CTX, u32 fd, u32 addr_out) { return sock_name(TM_HOST_OF(ctx), fd, addr_out, false); }
u32 TM_WASI(sock_addr_remote)(TM_WASI_CTX, u32 fd, u32 addr_out) { return sock_name(TM_HOST_OF(ctx), fd, addr_out, true); }

/* A NUL-terminated guest string, bounded by the memory size. */
static uint16_t guest_cstr(tm_host *h, uint32_t p, char **out)
{
    if (p >= h->mem->size) return TM_EFAULT;
    const uint8_t *s = tm_mem(h, p);
    const uint8_t *z = memchr(s, 0, h->mem->size - p);
    if (!z) return TM_EFAULT;
    return tm_mem_strdup(h, p, (uint32_t)(z - s), out);
}

u32 TM_WASI(sock_addr_resolve)(TM_WASI_CTX, u32 host, u32 service, u32 hints, u32 addr_info,
                               u32 addr_info_size, u32 max_info_size_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, max_info_size_out, 4) ||
        !tm_mem_ok(h, addr_info, (uint64_t)addr_info_size * TM_WAMR_ADDRINFO_SIZE))
        return TM_EFAULT;
    char *hs = NULL, *svc = NULL;
    uint16_t e = guest_cstr(h, host, &hs);
    if (!e && service) e = guest_cstr(h, service, &svc);
    if (e) {
        free(hs);
        return e;
    }
    struct addrinfo hint, *res = NULL;
    memset(&hint, 0, sizeof hint);
    hint.ai_family = AF_UNSPEC;
    if (hints && tm_mem_ok(h, hints, 12) && *tm_mem(h, hints + 8)) {
        uint32_t type = tm_ld32(h, hints), fam = tm_ld32(h, hints + 4);
        hint.ai_socktype = type == TM_WAMR_SOCK_DGRAM ? SOCK_DGRAM : SOCK_STREAM;
        hint.ai_family = fam == TM_WAMR_INET4 ? AF_INET : fam == TM_WAMR_INET6 ? AF_INET6 : AF_UNSPEC;
    }
    if (!hint.ai_socktype) hint.ai_socktype = SOCK_STREAM;
    const char *node = hs;
    if (!h->allow_dns) {
        if (strcmp(hs, "localhost") == 0) node = NULL; /* loopback, both families */
        else hint.ai_flags |= AI_NUMERICHOST;
    }
    hint.ai_flags |= AI_NUMERICSERV;
    int r = getaddrinfo(node, svc && *svc ? svc : "0", &hint, &res);
    free(hs);
    free(svc);
    if (r != 0) {
        if (r == EAI_NONAME || r == EAI_NODATA) return TM_ENOENT;
        if (r == EAI_SYSTEM) return tm_errno_from_host(errno);
        return TM_EINVAL;
    }
    uint32_t n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        if (n < addr_info_size) {
            uint32_t p = addr_info + n * TM_WAMR_ADDRINFO_SIZE;
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof ss);
            memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
            addr_encode(h, p, &ss);
            tm_st32(h, p + 24, ai->ai_socktype == SOCK_DGRAM ? TM_WAMR_SOCK_DGRAM : TM_WAMR_SOCK_STREAM);
        }
        n++;
    }
    freeaddrinfo(res);
    tm_st32(h, max_info_size_out, n);
    return TM_ESUCCESS;
}

/* -- options ----------------------------------------------------------------------- */

typedef enum { OPT_U8, OPT_U32 } opt_width;

static u32 set_int(tm_host *h, u32 fd, int level, int name, int value)
{
    GET_SOCK(h, fd, f);
    return setsockopt(f->host, level, name, &value, sizeof value) == 0 ? TM_ESUCCESS
                                                                        : tm_errno_from_host(errno);
}

static u32 get_int(tm_host *h, u32 fd, int level, int name, u32 out, opt_width w)
{
    GET_SOCK(h, fd, f);
    if (!tm_mem_ok(h, out, w == OPT_U8 ? 1 : 4)) return TM_EFAULT;
    int value = 0;
    socklen_t l = sizeof value;
    if (getsockopt(f->host, level, name, &value, &l) != 0) return tm_errno_from_host(errno);
    if (w == OPT_U8) tm_st8(h, out, (uint8_t)(value != 0 && name != IP_TTL && name != IP_MULTICAST_TTL ? 1 : value));
    else tm_st32(h, out, (uint32_t)value);
    return TM_ESUCCESS;
}

#define BOOL_OPT(opt, level, name)                                                          \
    u32 TM_WASI(sock_set_##opt)(TM_WASI_CTX, u32 fd, u32 value)                             \
    {                                                                                       \
        return set_int(TM_HOST_OF(ctx), fd, level, name, value != 0);                       \
    }                                                                                       \
    u32 TM_WASI(sock_get_##opt)(TM_WASI_CTX, u32 fd, u32 value_out)                         \
    {                                                                                       \
        return get_int(TM_HOST_OF(ctx), fd, level, name, value_out, OPT_U8);                \
    }
#define U32_OPT(opt, level, name, width)                                                    \
    u32 TM_WASI(sock_set_##opt)(TM_WASI_CTX, u32 fd, u32 value)                             \
    {                                                                                       \
        if (value > INT32_MAX) return TM_EINVAL;                                            \
        return set_int(TM_HOST_OF(ctx), fd, level, name, (int)value);                       \
    }                                                                                       \
    u32 TM_WASI(sock_get_##opt)(TM_WASI_CTX, u32 fd, u32 value_out)                         \
    {                                                                                       \
        return get_int(TM_HOST_OF(ctx), fd, level, name, value_out, width);                 \
    }

BOOL_OPT(reuse_addr, SOL_SOCKET, SO_REUSEADDR)
BOOL_OPT(reuse_port, SOL_SOCKET, SO_REUSEPORT)
BOOL_OPT(keep_alive, SOL_SOCKET, SO_KEEPALIVE)
BOOL_OPT(broadcast, SOL_SOCKET, SO_BROADCAST)
BOOL_OPT(tcp_no_delay, IPPROTO_TCP, TCP_NODELAY)
BOOL_OPT(tcp_quick_ack, IPPROTO_TCP, TCP_QUICKACK)
BOOL_OPT(tcp_fastopen_connect, IPPROTO_TCP, TCP_FASTOPEN_CONNECT)
BOOL_OPT(ipv6_only, IPPROTO_IPV6, IPV6_V6ONLY)
U32_OPT(recv_buf_size, SOL_SOCKET, SO_RCVBUF, OPT_U32)
U32_OPT(send_buf_size, SOL_SOCKET, SO_SNDBUF, OPT_U32)
U32_OPT(tcp_keep_idle, IPPROTO_TCP, TCP_KEEPIDLE, OPT_U32)
U32_OPT(tcp_keep_intvl, IPPROTO_TCP, TCP_KEEPINTVL, OPT_U32)
U32_OPT(ip_ttl, IPPROTO_IP, IP_TTL, OPT_U8)
U32_OPT(ip_multicast_ttl, IPPROTO_IP, IP_MULTICAST_TTL, OPT_U8)

static u32 set_timeout(tm_host *h, u32 fd, int name, u64 us)
{
    GET_SOCK(h, fd, f);
    struct timeval tv;
    tv.tv_sec = (time_t)(us / 1000000ULL);
    tv.tv_usec = (suseconds_t)(us % 1000000ULL);
    return setsockopt(f->host, SOL_SOCKET, name, &tv, sizeof tv) == 0 ? TM_ESUCCESS
                                                                       : tm_errno_from_host(errno);
}

static u32 get_timeout(tm_host *h, u32 fd, int name, u32 out)
{
    GET_SOCK(h, fd, f);
    if (!tm_mem_ok(h, out, 8)) return TM_EFAULT;
    struct timeval tv;
    socklen_t l = sizeof tv;
    if (getsockopt(f->host, SOL_SOCKET, name, &tv, &l) != 0) return tm_errno_from_host(errno);
    tm_st64(h, out, (uint64_t)tv.tv_sec * 1000000ULL + (uint64_t)tv.tv_usec);
    return TM_ESUCCESS;
}

u32 TM_WASI(sock_set_recv_timeout)(TM_WASI_CTX, u32 fd, u64 timeout_us) { return set_timeout(TM_HOST_OF(ctx), fd, SO_RCVTIMEO, timeout_us); }
u32 TM_WASI(sock_get_recv_timeout)(TM_WASI_CTX, u32 fd, u32 out) { return get_timeout(TM_HOST_OF(ctx), fd, SO_RCVTIMEO, out); }
u32 TM_WASI(sock_set_send_timeout)(TM_WASI_CTX, u32 fd, u64 timeout_us) { return set_timeout(TM_HOST_OF(ctx), fd, SO_SNDTIMEO, timeout_us); }
u32 TM_WASI(sock_get_send_timeout)(TM_WASI_CTX, u32 fd, u32 out) { return get_timeout(TM_HOST_OF(ctx), fd, SO_SNDTIMEO, out); }

u32 TM_WASI(sock_set_linger)(TM_WASI_CTX, u32 fd, u32 is_enabled, u32 linger_s)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_SOCK(h, fd, f);
    struct linger lg = {.l_onoff = is_enabled != 0, .l_linger = (int)(linger_s > INT32_MAX ? INT32_MAX : linger_s)};
    return setsockopt(f->host, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0 ? TM_ESUCCESS
                                                                          : tm_errno_from_host(errno);
}

u32 TM_WASI(sock_get_linger)(TM_WASI_CTX, u32 fd, u32 is_enabled_out, u32 linger_s_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_SOCK(h, fd, f);
    if (!tm_mem_ok(h, is_enabled_out, 1) || !tm_mem_ok(h, linger_s_out, 4)) return TM_EFAULT;
    struct linger lg;
    socklen_t l = sizeof lg;
    if (getsockopt(f->host, SOL_SOCKET, SO_LINGER, &lg, &l) != 0) return tm_errno_from_host(errno);
    tm_st8(h, is_enabled_out, lg.l_onoff != 0);
    tm_st32(h, linger_s_out, (uint32_t)lg.l_linger);
    return TM_ESUCCESS;
}

u32 TM_WASI(sock_set_ip_multicast_loop)(TM_WASI_CTX, u32 fd, u32 ipv6, u32 value)
{
    tm_host *h = TM_HOST_OF(ctx);
    return set_int(h, fd, ipv6 ? IPPROTO_IPV6 : IPPROTO_IP, ipv6 ? IPV6_MULTICAST_LOOP : IP_MULTICAST_LOOP,
                   value != 0);
}

u32 TM_WASI(sock_get_ip_multicast_loop)(TM_WASI_CTX, u32 fd, u32 ipv6, u32 value_out)
{
    return get_int(TM_HOST_OF(ctx), fd, ipv6 ? IPPROTO_IPV6 : IPPROTO_IP,
                   ipv6 ? IPV6_MULTICAST_LOOP : IP_MULTICAST_LOOP, value_out, OPT_U8);
}

/* Multicast group membership: a broker has no use for it; refused explicitly. */
u32 TM_WASI(sock_set_ip_add_membership)(TM_WASI_CTX, u32 fd, u32 imr_multiaddr, u32 imr_interface)
{
    return TM_ENOTSUP;
}
u32 TM_WASI(sock_set_ip_drop_membership)(TM_WASI_CTX, u32 fd, u32 imr_multiaddr, u32 imr_interface)
{
    return TM_ENOTSUP;
}
