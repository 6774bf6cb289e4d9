/*
 * wasi_core.c — WASI preview 1 calls that are not about descriptors: arguments,
 * environment, clocks, randomness, process exit, yielding, and poll_oneoff; plus the
 * host-errno -> WASI-errno mapping shared by every other part of the host.
 *
 * Invariants: the module only sees the arguments after `--` and the variables given
 * with --env (never the host's environment); poll_oneoff turns all subscriptions of
 * one call into exactly one host ppoll(), so the broker's event loop costs one system
 * call per iteration, as natively; proc_exit unwinds to the runner (no exit() here).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>

#include "runtime/host.h"
#include "runtime/host_imports.h"

void tm_trace_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tmqtt-wasm: trace: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint16_t tm_errno_from_host(int e)
{
    switch (e) {
    case 0: return TM_ESUCCESS;
    case E2BIG: return TM_E2BIG;
    case EACCES: return TM_EACCES;
    case EADDRINUSE: return TM_EADDRINUSE;
    case EADDRNOTAVAIL: return TM_EADDRNOTAVAIL;
    case EAFNOSUPPORT: return TM_EAFNOSUPPORT;
    case EAGAIN: return TM_EAGAIN;
    case EALREADY: return TM_EALREADY;
    case EBADF: return TM_EBADF;
    case EBADMSG: return TM_EBADMSG;
    case EBUSY: return TM_EBUSY;
    case ECANCELED: return TM_ECANCELED;
    case ECHILD: return TM_ECHILD;
    case ECONNABORTED: return TM_ECONNABORTED;
    case ECONNREFUSED: return TM_ECONNREFUSED;
    case ECONNRESET: return TM_ECONNRESET;
    case EDEADLK: return TM_EDEADLK;
    case EDESTADDRREQ: return TM_EDESTADDRREQ;
    case EDOM: return TM_EDOM;
    case EDQUOT: return TM_EDQUOT;
    case EEXIST: return TM_EEXIST;
    case EFAULT: return TM_EFAULT;
    case EFBIG: return TM_EFBIG;
    case EHOSTUNREACH: return TM_EHOSTUNREACH;
    case EIDRM: return TM_EIDRM;
    case EILSEQ: return TM_EILSEQ;
    case EINPROGRESS: return TM_EINPROGRESS;
    case EINTR: return TM_EINTR;
    case EINVAL: return TM_EINVAL;
    case EIO: return TM_EIO;
    case EISCONN: return TM_EISCONN;
    case EISDIR: return TM_EISDIR;
    case ELOOP: return TM_ELOOP;
    case EMFILE: return TM_EMFILE;
    case EMLINK: return TM_EMLINK;
    case EMSGSIZE: return TM_EMSGSIZE;
    case EMULTIHOP: return TM_EMULTIHOP;
    case ENAMETOOLONG: return TM_ENAMETOOLONG;
    case ENETDOWN: return TM_ENETDOWN;
    case ENETRESET: return TM_ENETRESET;
    case ENETUNREACH: return TM_ENETUNREACH;
    case ENFILE: return TM_ENFILE;
    case ENOBUFS: return TM_ENOBUFS;
    case ENODEV: return TM_ENODEV;
    case ENOENT: return TM_ENOENT;
    case ENOEXEC: return TM_ENOEXEC;
    case ENOLCK: return TM_ENOLCK;
    case ENOLINK: return TM_ENOLINK;
    case ENOMEM: return TM_ENOMEM;
    case ENOMSG: return TM_ENOMSG;
    case ENOPROTOOPT: return TM_ENOPROTOOPT;
    case ENOSPC: return TM_ENOSPC;
    case ENOSYS: return TM_ENOSYS;
    case ENOTCONN: return TM_ENOTCONN;
    case ENOTDIR: return TM_ENOTDIR;
    case ENOTEMPTY: return TM_ENOTEMPTY;
    case ENOTRECOVERABLE: return TM_ENOTRECOVERABLE;
    case ENOTSOCK: return TM_ENOTSOCK;
    case EOPNOTSUPP: return TM_ENOTSUP;
    case ENOTTY: return TM_ENOTTY;
    case ENXIO: return TM_ENXIO;
    case EOVERFLOW: return TM_EOVERFLOW;
    case EOWNERDEAD: return TM_EOWNERDEAD;
    case EPERM: return TM_EPERM;
    case EPIPE: return TM_EPIPE;
    case EPROTO: return TM_EPROTO;
    case EPROTONOSUPPORT: return TM_EPROTONOSUPPORT;
    case EPROTOTYPE: return TM_EPROTOTYPE;
    case ERANGE: return TM_ERANGE;
    case EROFS: return TM_EROFS;
    case ESPIPE: return TM_ESPIPE;
    case ESRCH: return TM_ESRCH;
    case ESTALE: return TM_ESTALE;
    case ETIMEDOUT: return TM_ETIMEDOUT;
    case ETXTBSY: return TM_ETXTBSY;
    case EXDEV: return TM_EXDEV;
    default: return TM_EIO;
    }
}

const char *tm_errno_name(uint16_t e)
{
    static const char *const names[] = {
        "SUCCESS", "2BIG", "ACCES", "ADDRINUSE", "ADDRNOTAVAIL", "AFNOSUPPORT", "AGAIN",
        "ALREADY", "BADF", "BADMSG", "BUSY", "CANCELED", "CHILD", "CONNABORTED",
        "CONNREFUSED", "CONNRESET", "DEADLK", "DESTADDRREQ", "DOM", "DQUOT", "EXIST",
        "FAULT", "FBIG", "HOSTUNREACH", "IDRM", "ILSEQ", "INPROGRESS", "INTR", "INVAL",
        "IO", "ISCONN", "ISDIR", "LOOP", "MFILE", "MLINK", "MSGSIZE", "MULTIHOP",
        "NAMETOOLONG", "NETDOWN", "NETRESET", "NETUNREACH", "NFILE", "NOBUFS", "NODEV",
        "NOENT", "NOEXEC", "NOLCK", "NOLINK", "NOMEM", "NOMSG", "NOPROTOOPT", "NOSPC",
        "NOSYS", "NOTCONN", "NOTDIR", "NOTEMPTY", "NOTRECOVERABLE", "NOTSOCK", "NOTSUP",
        "NOTTY", "NXIO", "OVERFLOW", "OWNERDEAD", "PERM", "PIPE", "PROTO",
        "PROTONOSUPPORT", "PROTOTYPE", "RANGE", "ROFS", "SPIPE", "SRCH", "STALE",
        "TIMEDOUT", "TXTBSY", "XDEV", "NOTCAPABLE",
    };
    return e < sizeof names / sizeof names[0] ? names[e] : "?";
}

uint16_t tm_mem_strdup(const tm_host *h, uint32_t ptr, uint32_t len, char **out)
{
    *out = NULL;
    if (!tm_mem_ok(h, ptr, len)) return TM_EFAULT;
    if (memchr(tm_mem(h, ptr), 0, len)) return TM_EILSEQ; /* no NUL inside a path */
    char *s = malloc((size_t)len + 1);
    if (!s) return TM_ENOMEM;
    memcpy(s, tm_mem(h, ptr), len);
    s[len] = 0;
    *out = s;
    return TM_ESUCCESS;
}

/* -- arguments and environment ------------------------------------------------- */

/* Both pairs of calls share one shape: write a pointer array and the packed strings. */
static u32 strings_get(tm_host *h, char **v, size_t n, u32 ptrs, u32 buf)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(v[i]) + 1;
    if (!tm_mem_ok(h, ptrs, (uint64_t)n * 4) || !tm_mem_ok(h, buf, total)) return TM_EFAULT;
    uint32_t at = buf;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        tm_st32(h, ptrs + (uint32_t)i * 4, at);
        memcpy(tm_mem(h, at), v[i], l);
        at += (uint32_t)l;
    }
    return TM_ESUCCESS;
}

static u32 strings_sizes(tm_host *h, char **v, size_t n, u32 count_out, u32 size_out)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(v[i]) + 1;
    if (total > UINT32_MAX) return TM_E2BIG;
    if (!tm_mem_ok(h, count_out, 4) || !tm_mem_ok(h, size_out, 4)) return TM_EFAULT;
    tm_st32(h, count_out, (uint32_t)n);
    tm_st32(h, size_out, (uint32_t)total);
    return TM_ESUCCESS;
}

u32 TM_WASI(args_get)(TM_WASI_CTX, u32 argv, u32 argv_buf)
{
    tm_host *h = TM_HOST_OF(ctx);
    return strings_get(h, h->argv, h->argc, argv, argv_buf);
}
u32 TM_WASI(args_sizes_get)(TM_WASI_CTX, u32 argc_out, u32 buf_size_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    return strings_sizes(h, h->argv, h->argc, argc_out, buf_size_out);
}
u32 TM_WASI(environ_get)(TM_WASI_CTX, u32 environ, u32 environ_buf)
{
    tm_host *h = TM_HOST_OF(ctx);
    return strings_get(h, h->envp, h->envc, environ, environ_buf);
}
u32 TM_WASI(environ_sizes_get)(TM_WASI_CTX, u32 count_out, u32 buf_size_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    return strings_sizes(h, h->envp, h->envc, count_out, buf_size_out);
}

/* -- clocks ------------------------------------------------------------------ */

static int clock_of(u32 id, clockid_t *out)
{
    switch (id) {
    case TM_CLOCK_REALTIME: *out = CLOCK_REALTIME; return 0;
    case TM_CLOCK_MONOTONIC: *out = CLOCK_MONOTONIC; return 0;
    case TM_CLOCK_PROCESS_CPUTIME: *out = CLOCK_PROCESS_CPUTIME_ID; return 0;
    case TM_CLOCK_THREAD_CPUTIME: *out = CLOCK_THREAD_CPUTIME_ID; return 0;
    default: return -1;
    }
}

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;
}

u32 TM_WASI(clock_res_get)(TM_WASI_CTX, u32 clock_id, u32 res_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    clockid_t c;
    struct timespec ts;
    if (clock_of(clock_id, &c) != 0) return TM_EINVAL;
    if (clock_getres(c, &ts) != 0) return tm_errno_from_host(errno);
    return tm_put64(h, res_out, ts_ns(&ts));
}

u32 TM_WASI(clock_time_get)(TM_WASI_CTX, u32 clock_id, u64 precision, u32 time_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    clockid_t c;
    struct timespec ts;
    if (clock_of(clock_id, &c) != 0) return TM_EINVAL;
    if (clock_gettime(c, &ts) != 0) return tm_errno_from_host(errno);
    return tm_put64(h, time_out, ts_ns(&ts));
}

/* -- randomness, process ------------------------------------------------------- */

u32 TM_WASI(random_get)(TM_WASI_CTX, u32 buf, u32 buf_len)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, buf, buf_len)) return TM_EFAULT;
    uint32_t done = 0;
    while (done < buf_len) {
        ssize_t n = getrandom(tm_mem(h, buf + done), buf_len - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return tm_errno_from_host(errno);
        }
        done += (uint32_t)n;
    }
    return TM_ESUCCESS;
}

void TM_WASI(proc_exit)(TM_WASI_CTX, u32 code)
{
    tm_host *h = TM_HOST_OF(ctx);
    TM_TRACE(h, "proc_exit(%u)", code);
    h->exit_code = (int)code;
    fflush(NULL);
    siglongjmp(*h->exit_jmp, 1);
}

u32 TM_WASI(proc_raise)(TM_WASI_CTX, u32 sig)
{
    /* Signals are not delivered to a module; raising one is refused. */
    return TM_ENOSYS;
}

u32 TM_WASI(sched_yield)(TM_WASI_CTX)
{
    sched_yield();
    return TM_ESUCCESS;
}

/* -- poll_oneoff ----------------------------------------------------------------- */

/*
 * All fd subscriptions go into one pollfd array and all clock subscriptions collapse
 * into the earliest deadline, which becomes the ppoll() timeout. Afterwards every
 * ready fd subscription yields an event; when none is ready, the clocks whose
 * deadline has passed yield theirs. Subscriptions on descriptors that are not
 * pollable in a meaningful way (regular files) are reported ready at once, as POSIX
 * poll() does. A readable pipe or device reports how many bytes are queued (nbytes,
 * FIONREAD); a readable socket reports 1, "at least one byte or the end": that
 * ioctl was a third of a busy broker's system calls, and wasi-libc's poll() (what
 * modules use) ignores nbytes.
 */
enum { PI_ERROR, PI_CLOCK, PI_POLL, PI_READY };

typedef struct {
    uint64_t userdata;
    uint64_t deadline;   /* PI_CLOCK: CLOCK_MONOTONIC ns */
    uint32_t pidx;       /* PI_POLL: index into the pollfd array */
    uint16_t error;      /* PI_ERROR */
    uint8_t type;        /* WASI eventtype */
    uint8_t state;
    bool count;          /* PI_POLL, fd_read: report the bytes queued (not for sockets) */
} poll_item;

static void put_event(tm_host *h, uint32_t e, uint64_t userdata, uint16_t err, uint8_t type,
                      uint64_t nbytes, uint16_t flags)
{
    memset(tm_mem(h, e), 0, TM_EVENT_SIZE);
    tm_st64(h, e, userdata);
    tm_st16(h, e + 8, err);
    tm_st8(h, e + 10, type);
    if (type != TM_EVT_CLOCK) {
        tm_st64(h, e + 16, nbytes);
        tm_st16(h, e + 24, flags);
    }
}

u32 TM_WASI(poll_oneoff)(TM_WASI_CTX, u32 in, u32 out, u32 nsubscriptions, u32 nevents_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (nsubscriptions == 0) return TM_EINVAL;
    if (nsubscriptions > 1u << 20) return TM_E2BIG;
    if (!tm_mem_ok(h, in, (uint64_t)nsubscriptions * TM_SUBSCRIPTION_SIZE) ||
        !tm_mem_ok(h, out, (uint64_t)nsubscriptions * TM_EVENT_SIZE) ||
        !tm_mem_ok(h, nevents_out, 4))
        return TM_EFAULT;

    size_t need = (size_t)nsubscriptions * (sizeof(poll_item) + sizeof(struct pollfd));
    if (need > h->poll_cap) {
        void *nb = realloc(h->poll_buf, need);
        if (!nb) return TM_ENOMEM;
        h->poll_buf = nb;
        h->poll_cap = need;
    }
    poll_item *items = h->poll_buf;
    struct pollfd *pfds = (struct pollfd *)(void *)(items + nsubscriptions);
    nfds_t npfd = 0;

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_mono = ts_ns(&ts);
    uint64_t earliest = UINT64_MAX;
    bool have_clock = false, immediate = false;

    for (uint32_t i = 0; i < nsubscriptions; i++) {
        uint32_t s = in + i * TM_SUBSCRIPTION_SIZE;
        poll_item *it = &items[i];
        memset(it, 0, sizeof *it);
        it->userdata = tm_ld64(h, s);
        it->type = *tm_mem(h, s + 8);
        if (it->type == TM_EVT_CLOCK) {
            uint32_t id = tm_ld32(h, s + 16);
            uint64_t timeout = tm_ld64(h, s + 24);
            uint16_t flags = tm_ld16(h, s + 40);
            clockid_t c;
            if (clock_of(id, &c) != 0) {
                it->state = PI_ERROR;
                it->error = TM_EINVAL;
                immediate = true;
                continue;
            }
            uint64_t rel = timeout;
            if (flags & TM_SUBCLOCK_ABSTIME) {
                struct timespec cn;
                clock_gettime(c, &cn);
                uint64_t now = ts_ns(&cn);
                rel = timeout > now ? timeout - now : 0;
            }
            it->state = PI_CLOCK;
            it->deadline = rel > UINT64_MAX - now_mono ? UINT64_MAX : now_mono + rel;
            if (it->deadline < earliest) earliest = it->deadline;
            have_clock = true;
        } else if (it->type == TM_EVT_FD_READ || it->type == TM_EVT_FD_WRITE) {
            tm_fd *f = tm_fd_get(h, tm_ld32(h, s + 16));
            if (!f) {
                it->state = PI_ERROR;
                it->error = TM_EBADF;
                immediate = true;
            } else if (f->filetype == TM_FT_REG || f->filetype == TM_FT_DIR) {
                it->state = PI_READY; /* regular files never block */
                immediate = true;
            } else {
                it->state = PI_POLL;
                it->count = it->type == TM_EVT_FD_READ && f->kind != TM_FD_SOCKET;
                it->pidx = (uint32_t)npfd;
                pfds[npfd].fd = f->host;
                pfds[npfd].events = it->type == TM_EVT_FD_READ ? POLLIN : POLLOUT;
                pfds[npfd].revents = 0;
                npfd++;
            }
        } else {
            it->state = PI_ERROR;
            it->error = TM_EINVAL;
            immediate = true;
        }
    }

    struct timespec tmo, *tmop = NULL;
    if (immediate) {
        tmo.tv_sec = 0;
        tmo.tv_nsec = 0;
        tmop = &tmo;
    } else if (have_clock) {
        uint64_t rel = earliest > now_mono ? earliest - now_mono : 0;
        tmo.tv_sec = (time_t)(rel / 1000000000ULL);
        tmo.tv_nsec = (long)(rel % 1000000000ULL);
        tmop = &tmo;
    }
    int r;
    do {
        r = ppoll(npfd ? pfds : NULL, npfd, tmop, NULL);
    } while (r < 0 && errno == EINTR && !tmop);
    if (r < 0 && errno != EINTR) return tm_errno_from_host(errno);

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now_mono = ts_ns(&ts);
    uint32_t nevents = 0;

    for (uint32_t i = 0; i < nsubscriptions; i++) {
        poll_item *it = &items[i];
        uint32_t e = out + nevents * TM_EVENT_SIZE;
        switch (it->state) {
        case PI_ERROR:
            put_event(h, e, it->userdata, it->error, it->type, 0, 0);
            nevents++;
            break;
        case PI_READY:
            put_event(h, e, it->userdata, 0, it->type, 1, 0);
            nevents++;
            break;
        case PI_POLL: {
            struct pollfd *p = &pfds[it->pidx];
            if (!p->revents) break;
            uint16_t err = (p->revents & POLLNVAL) ? TM_EBADF : 0;
            uint16_t flags = (p->revents & (POLLHUP | POLLERR)) ? TM_EVRW_HANGUP : 0;
            uint64_t nbytes = 1;
            int avail = 0;
            if (it->count && ioctl(p->fd, FIONREAD, &avail) == 0 && avail > 0)
                nbytes = (uint64_t)avail;
            put_event(h, e, it->userdata, err, it->type, nbytes, flags);
            nevents++;
            break;
        }
        default:
            break;
        }
    }
    /* Clocks fire when their deadline has passed; when nothing at all is reported
     * the earliest clock fires anyway, since ppoll() only returns early on a
     * signal and a poll() that returns nothing would look like a spurious wakeup. */
    bool any = nevents > 0;
    for (uint32_t i = 0; i < nsubscriptions; i++) {
        poll_item *it = &items[i];
        if (it->state != PI_CLOCK) continue;
        if (it->deadline <= now_mono || (!any && it->deadline == earliest)) {
            put_event(h, out + nevents * TM_EVENT_SIZE, it->userdata, 0, TM_EVT_CLOCK, 0, 0);
            nevents++;
        }
    }
    tm_st32(h, nevents_out, nevents);
    return TM_ESUCCESS;
}
