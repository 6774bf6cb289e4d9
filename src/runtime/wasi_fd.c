/*
 * wasi_fd.c — the guest descriptor table and the WASI fd_* calls.
 *
 * Owns h->fds: guest fd -> host descriptor, kind, WASI filetype. Invariants: slot 0-2
 * are the host's stdio (detached, never closed, on fd_close); preopens occupy 3..n
 * contiguously when the module starts; every other slot was created by path_open,
 * sock_open or sock_accept and owns its host descriptor, which is closed exactly once
 * by tm_fd_release. Rights are reported as "everything" and not enforced: what a
 * module can reach is bounded by which descriptors it holds (preopens, sockets it
 * opened within the address pool) and by the host's own open mode.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/host.h"
#include "runtime/host_imports.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the host copies WebAssembly's little-endian values as they are");

#define TM_IOV_STACK 16

int tm_fd_init(tm_host *h, uint32_t max_fds)
{
    h->max_fds = max_fds < 16 ? 16 : max_fds;
    h->nfds = 16;
    h->fds = calloc(h->nfds, sizeof *h->fds);
    if (!h->fds) return -1;
    for (int i = 0; i < 3; i++) {
        h->fds[i].kind = TM_FD_STDIO;
        h->fds[i].host = i;
        h->fds[i].filetype = tm_filetype_of(i);
    }
    return 0;
}

void tm_fd_fini(tm_host *h)
{
    for (uint32_t i = 0; i < h->nfds; i++)
        if (h->fds[i].kind != TM_FD_FREE) tm_fd_release(h, i);
    free(h->fds);
    h->fds = NULL;
    h->nfds = 0;
}

tm_fd *tm_fd_get(tm_host *h, uint32_t fd)
{
    if (fd >= h->nfds || h->fds[fd].kind == TM_FD_FREE) return NULL;
    return &h->fds[fd];
}

uint16_t tm_fd_alloc(tm_host *h, int kind, int hostfd, uint32_t *out)
{
    uint32_t i;
    for (i = 3; i < h->nfds; i++)
        if (h->fds[i].kind == TM_FD_FREE) break;
    if (i == h->nfds) {
        if (h->nfds >= h->max_fds) return TM_EMFILE;
        uint32_t n = h->nfds * 2 > h->max_fds ? h->max_fds : h->nfds * 2;
        tm_fd *nf = realloc(h->fds, n * sizeof *nf);
        if (!nf) return TM_ENOMEM;
        memset(nf + h->nfds, 0, (n - h->nfds) * sizeof *nf);
        h->fds = nf;
        h->nfds = n;
    }
    memset(&h->fds[i], 0, sizeof h->fds[i]);
    h->fds[i].kind = kind;
    h->fds[i].host = hostfd;
    h->fds[i].filetype = tm_filetype_of(hostfd);
    *out = i;
    return TM_ESUCCESS;
}

void tm_fd_release(tm_host *h, uint32_t fd)
{
    tm_fd *f = tm_fd_get(h, fd);
    if (!f) return;
    if (f->kind != TM_FD_STDIO) close(f->host);
    free(f->guest_path);
    memset(f, 0, sizeof *f);
}

uint8_t tm_filetype_of(int hostfd)
{
    struct stat st;
    if (fstat(hostfd, &st) != 0) return TM_FT_UNKNOWN;
    switch (st.st_mode & S_IFMT) {
    case S_IFREG: return TM_FT_REG;
    case S_IFDIR: return TM_FT_DIR;
    case S_IFCHR: return TM_FT_CHAR;
    case S_IFBLK: return TM_FT_BLOCK;
    case S_IFLNK: return TM_FT_SYMLINK;
    case S_IFSOCK: {
        int type = 0;
        socklen_t l = sizeof type;
        if (getsockopt(hostfd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_DGRAM)
            return TM_FT_SOCK_DGRAM;
        return TM_FT_SOCK_STREAM;
    }
    default: return TM_FT_UNKNOWN; /* pipes and FIFOs have no WASI filetype */
    }
}

int tm_fd_add_preopen(tm_host *h, const char *hostpath, const char *guestpath, char *err,
                      size_t errlen)
{
    int d = open(hostpath, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) {
        snprintf(err, errlen, "--dir %s: %s", hostpath, strerror(errno));
        return -1;
    }
    uint32_t g;
    if (tm_fd_alloc(h, TM_FD_PREOPEN, d, &g) != TM_ESUCCESS) {
        close(d);
        snprintf(err, errlen, "--dir %s: too many descriptors", hostpath);
        return -1;
    }
    h->fds[g].filetype = TM_FT_DIR;
    h->fds[g].guest_path = strdup(guestpath);
    if (!h->fds[g].guest_path) {
        tm_fd_release(h, g);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

uint16_t tm_iov_from_guest(tm_host *h, uint32_t iovs, uint32_t n, struct iovec **iov, int *niov)
{
    if (n > IOV_MAX) n = IOV_MAX; /* a short transfer is allowed; WASI callers loop */
    if (!tm_mem_ok(h, iovs, (uint64_t)n * TM_IOVEC_SIZE)) return TM_EFAULT;
    struct iovec *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return TM_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t base = tm_ld32(h, iovs + i * TM_IOVEC_SIZE);
        uint32_t len = tm_ld32(h, iovs + i * TM_IOVEC_SIZE + 4);
        if (!tm_mem_ok(h, base, len)) {
            free(v);
            return TM_EFAULT;
        }
        v[i].iov_base = tm_mem(h, base);
        v[i].iov_len = len;
    }
    *iov = v;
    *niov = (int)n;
    return TM_ESUCCESS;
}

void tm_iov_free(struct iovec *iov) { free(iov); }

/* -- fd_* ---------------------------------------------------------------------- */

#define GET_FD(h, fd, f)                          \
    tm_fd *f = tm_fd_get((h), (fd));              \
    if (!f) return TM_EBADF

u32 TM_WASI(fd_close)(TM_WASI_CTX, u32 fd)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    (void)f;
    tm_fd_release(h, fd);
    return TM_ESUCCESS;
}

u32 TM_WASI(fd_advise)(TM_WASI_CTX, u32 fd, u64 offset, u64 len, u32 advice)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    (void)f;
    return advice > 5 ? TM_EINVAL : TM_ESUCCESS; /* advice is only a hint */
}

u32 TM_WASI(fd_allocate)(TM_WASI_CTX, u32 fd, u64 offset, u64 len)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (offset > INT64_MAX || len > INT64_MAX) return TM_EINVAL;
    int r = posix_fallocate(f->host, (off_t)offset, (off_t)len);
    return tm_errno_from_host(r);
}

u32 TM_WASI(fd_datasync)(TM_WASI_CTX, u32 fd)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    return fdatasync(f->host) == 0 ? TM_ESUCCESS : tm_errno_from_host(errno);
}

u32 TM_WASI(fd_sync)(TM_WASI_CTX, u32 fd)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    return fsync(f->host) == 0 ? TM_ESUCCESS : tm_errno_from_host(errno);
}

u32 TM_WASI(fd_fdstat_get)(TM_WASI_CTX, u32 fd, u32 stat_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (!tm_mem_ok(h, stat_out, TM_FDSTAT_SIZE)) return TM_EFAULT;
    uint16_t flags = 0;
    if (f->kind != TM_FD_PREOPEN) {
        int fl = fcntl(f->host, F_GETFL);
        if (fl < 0) return tm_errno_from_host(errno);
        if (fl & O_APPEND) flags |= TM_FDFLAG_APPEND;
        if (fl & O_NONBLOCK) flags |= TM_FDFLAG_NONBLOCK;
        if (fl & O_DSYNC) flags |= TM_FDFLAG_DSYNC;
        if ((fl & O_SYNC) == O_SYNC) flags |= TM_FDFLAG_SYNC;
    }
    memset(tm_mem(h, stat_out), 0, TM_FDSTAT_SIZE);
    tm_st8(h, stat_out, f->filetype);
    tm_st16(h, stat_out + 2, flags);
    tm_st64(h, stat_out + 8, TM_RIGHTS_ALL);
    tm_st64(h, stat_out + 16, TM_RIGHTS_ALL);
    return TM_ESUCCESS;
}

u32 TM_WASI(fd_fdstat_set_flags)(TM_WASI_CTX, u32 fd, u32 flags)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (f->kind == TM_FD_PREOPEN) return TM_EBADF;
    /* Only APPEND and NONBLOCK can change on an open Linux descriptor. */
    if (flags & ~(u32)(TM_FDFLAG_APPEND | TM_FDFLAG_NONBLOCK | TM_FDFLAG_DSYNC |
                       TM_FDFLAG_RSYNC | TM_FDFLAG_SYNC))
        return TM_EINVAL;
    if (flags & (TM_FDFLAG_DSYNC | TM_FDFLAG_RSYNC | TM_FDFLAG_SYNC)) return TM_ENOTSUP;
    int fl = fcntl(f->host, F_GETFL);
    if (fl < 0) return tm_errno_from_host(errno);
    fl &= ~(O_APPEND | O_NONBLOCK);
    if (flags & TM_FDFLAG_APPEND) fl |= O_APPEND;
    if (flags & TM_FDFLAG_NONBLOCK) fl |= O_NONBLOCK;
    return fcntl(f->host, F_SETFL, fl) == 0 ? TM_ESUCCESS : tm_errno_from_host(errno);
}

u32 TM_WASI(fd_fdstat_set_rights)(TM_WASI_CTX, u32 fd, u64 base, u64 inheriting)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    (void)f;
    /* Dropping rights is always allowed; they are not tracked (see file comment). */
    return TM_ESUCCESS;
}

void tm_filestat_put(tm_host *h, uint32_t p, const struct stat *st);
void tm_filestat_put(tm_host *h, uint32_t p, const struct stat *st)
{
    uint8_t ft;
    switch (st->st_mode & S_IFMT) {
    case S_IFREG: ft = TM_FT_REG; break;
    case S_IFDIR: ft = TM_FT_DIR; break;
    case S_IFCHR: ft = TM_FT_CHAR; break;
    case S_IFBLK: ft = TM_FT_BLOCK; break;
    case S_IFLNK: ft = TM_FT_SYMLINK; break;
    case S_IFSOCK: ft = TM_FT_SOCK_STREAM; break;
    default: ft = TM_FT_UNKNOWN; break;
    }
    memset(tm_mem(h, p), 0, TM_FILESTAT_SIZE);
    tm_st64(h, p, (uint64_t)st->st_dev);
    tm_st64(h, p + 8, (uint64_t)st->st_ino);
    tm_st8(h, p + 16, ft);
    tm_st64(h, p + 24, (uint64_t)st->st_nlink);
    tm_st64(h, p + 32, (uint64_t)st->st_size);
    tm_st64(h, p + 40, (uint64_t)st->st_atim.tv_sec * 1000000000ULL + (uint64_t)st->st_atim.tv_nsec);
    tm_st64(h, p + 48, (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + (uint64_t)st->st_mtim.tv_nsec);
    tm_st64(h, p + 56, (uint64_t)st->st_ctim.tv_sec * 1000000000ULL + (uint64_t)st->st_ctim.tv_nsec);
}

u32 TM_WASI(fd_filestat_get)(TM_WASI_CTX, u32 fd, u32 stat_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (!tm_mem_ok(h, stat_out, TM_FILESTAT_SIZE)) return TM_EFAULT;
    struct stat st;
    if (fstat(f->host, &st) != 0) return tm_errno_from_host(errno);
    tm_filestat_put(h, stat_out, &st);
    if (f->kind == TM_FD_SOCKET || f->kind == TM_FD_STDIO) tm_st8(h, stat_out + 16, f->filetype);
    return TM_ESUCCESS;
}

u32 TM_WASI(fd_filestat_set_size)(TM_WASI_CTX, u32 fd, u64 size)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (size > INT64_MAX) return TM_EINVAL;
    return ftruncate(f->host, (off_t)size) == 0 ? TM_ESUCCESS : tm_errno_from_host(errno);
}

int tm_times_from_wasi(u64 atim, u64 mtim, u32 fst, struct timespec ts[2]);
int tm_times_from_wasi(u64 atim, u64 mtim, u32 fst, struct timespec ts[2])
{
    if ((fst & TM_FST_ATIM && fst & TM_FST_ATIM_NOW) || (fst & TM_FST_MTIM && fst & TM_FST_MTIM_NOW))
        return -1;
    ts[0].tv_sec = (time_t)(atim / 1000000000ULL);
    ts[0].tv_nsec = (long)(atim % 1000000000ULL);
    ts[1].tv_sec = (time_t)(mtim / 1000000000ULL);
    ts[1].tv_nsec = (long)(mtim % 1000000000ULL);
    if (fst & TM_FST_ATIM_NOW) ts[0].tv_nsec = UTIME_NOW;
    else if (!(fst & TM_FST_ATIM)) ts[0].tv_nsec = UTIME_OMIT;
    if (fst & TM_FST_MTIM_NOW) ts[1].tv_nsec = UTIME_NOW;
    else if (!(fst & TM_FST_MTIM)) ts[1].tv_nsec = UTIME_OMIT;
    return 0;
}

u32 TM_WASI(fd_filestat_set_times)(TM_WASI_CTX, u32 fd, u64 atim, u64 mtim, u32 fst_flags)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    struct timespec ts[2];
    if (tm_times_from_wasi(atim, mtim, fst_flags, ts) != 0) return TM_EINVAL;
    return futimens(f->host, ts) == 0 ? TM_ESUCCESS : tm_errno_from_host(errno);
}

/* fd_write on a socket (OpenSSL's fd BIO writes TLS records this way): like writev,
 * but a peer that reset the connection is EPIPE, never SIGPIPE, whatever the
 * process's SIGPIPE disposition (tmqtt-wasm --keep-sigpipe, or a host like iwasm). */
static ssize_t send_nosignal(int fd, struct iovec *iov, int niov)
{
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)niov;
    return sendmsg(fd, &m, MSG_NOSIGNAL);
}

static u32 do_rw(tm_host *h, u32 fd, u32 iovs, u32 n, u32 out, bool write, bool positional,
                 u64 offset)
{
    GET_FD(h, fd, f);
    if (f->kind == TM_FD_PREOPEN || f->kind == TM_FD_DIR) return TM_EISDIR;
    if (!tm_mem_ok(h, out, 4)) return TM_EFAULT;
    if (positional && offset > INT64_MAX) return TM_EINVAL;
    struct iovec *iov;
    int niov;
    uint16_t e = tm_iov_from_guest(h, iovs, n, &iov, &niov);
    if (e) return e;
    ssize_t r;
    if (positional)
        r = write ? pwritev(f->host, iov, niov, (off_t)offset) : preadv(f->host, iov, niov, (off_t)offset);
    else if (write && (f->filetype == TM_FT_SOCK_STREAM || f->filetype == TM_FT_SOCK_DGRAM))
        r = send_nosignal(f->host, iov, niov);
    else
        r = write ? writev(f->host, iov, niov) : readv(f->host, iov, niov);
    int saved = errno;
    tm_iov_free(iov);
    if (r < 0) return tm_errno_from_host(saved);
    tm_st32(h, out, (uint32_t)r);
    return TM_ESUCCESS;
}

u32 TM_WASI(fd_read)(TM_WASI_CTX, u32 fd, u32 iovs, u32 iovs_len, u32 nread_out)
{
    return do_rw(TM_HOST_OF(ctx), fd, iovs, iovs_len, nread_out, false, false, 0);
}
u32 TM_WASI(fd_write)(TM_WASI_CTX, u32 fd, u32 iovs, u32 iovs_len, u32 nwritten_out)
{
    return do_rw(TM_HOST_OF(ctx), fd, iovs, iovs_len, nwritten_out, true, false, 0);
}
u32 TM_WASI(fd_pread)(TM_WASI_CTX, u32 fd, u32 iovs, u32 iovs_len, u64 offset, u32 nread_out)
{
    return do_rw(TM_HOST_OF(ctx), fd, iovs, iovs_len, nread_out, false, true, offset);
}
u32 TM_WASI(fd_pwrite)(TM_WASI_CTX, u32 fd, u32 iovs, u32 iovs_len, u64 offset, u32 nwritten_out)
{
    return do_rw(TM_HOST_OF(ctx), fd, iovs, iovs_len, nwritten_out, true, true, offset);
}

u32 TM_WASI(fd_seek)(TM_WASI_CTX, u32 fd, u64 offset, u32 whence, u32 newoffset_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (!tm_mem_ok(h, newoffset_out, 8)) return TM_EFAULT;
    if (f->kind == TM_FD_SOCKET) return TM_ESPIPE;
    if (f->kind == TM_FD_PREOPEN || f->kind == TM_FD_DIR) return TM_EBADF;
    int w;
    switch (whence) {
    case TM_WHENCE_SET: w = SEEK_SET; break;
    case TM_WHENCE_CUR: w = SEEK_CUR; break;
    case TM_WHENCE_END: w = SEEK_END; break;
    default: return TM_EINVAL;
    }
    off_t r = lseek(f->host, (off_t)(int64_t)offset, w);
    if (r < 0) return tm_errno_from_host(errno);
    tm_st64(h, newoffset_out, (uint64_t)r);
    return TM_ESUCCESS;
}

u32 TM_WASI(fd_tell)(TM_WASI_CTX, u32 fd, u32 offset_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (!tm_mem_ok(h, offset_out, 8)) return TM_EFAULT;
    if (f->kind == TM_FD_SOCKET) return TM_ESPIPE;
    off_t r = lseek(f->host, 0, SEEK_CUR);
    if (r < 0) return tm_errno_from_host(errno);
    tm_st64(h, offset_out, (uint64_t)r);
    return TM_ESUCCESS;
}

u32 TM_WASI(fd_prestat_get)(TM_WASI_CTX, u32 fd, u32 prestat_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (f->kind != TM_FD_PREOPEN) return TM_EBADF;
    if (!tm_mem_ok(h, prestat_out, TM_PRESTAT_SIZE)) return TM_EFAULT;
    memset(tm_mem(h, prestat_out), 0, TM_PRESTAT_SIZE);
    tm_st8(h, prestat_out, 0); /* preopentype dir */
    tm_st32(h, prestat_out + 4, (uint32_t)strlen(f->guest_path));
    return TM_ESUCCESS;
}

u32 TM_WASI(fd_prestat_dir_name)(TM_WASI_CTX, u32 fd, u32 path, u32 path_len)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (f->kind != TM_FD_PREOPEN) return TM_EBADF;
    size_t l = strlen(f->guest_path);
    if (path_len < l) return TM_ENAMETOOLONG;
    if (!tm_mem_ok(h, path, l)) return TM_EFAULT;
    memcpy(tm_mem(h, path), f->guest_path, l);
    return TM_ESUCCESS;
}

u32 TM_WASI(fd_renumber)(TM_WASI_CTX, u32 from, u32 to)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, from, f);
    tm_fd *t = tm_fd_get(h, to);
    if (!t) return TM_EBADF;
    if (from == to) return TM_ESUCCESS;
    tm_fd moved = *f;
    memset(f, 0, sizeof *f); /* detach first so release(to) cannot touch it */
    tm_fd_release(h, to);
    h->fds[to] = moved;
    return TM_ESUCCESS;
}

/*
 * fd_readdir: the cookie is the kernel's directory offset (d_off of the previous
 * entry), so a module can resume anywhere with one lseek + getdents64. The buffer
 * is filled completely, the last entry possibly truncated, which is how a module
 * learns that it must call again with a bigger buffer.
 */
struct tm_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

u32 TM_WASI(fd_readdir)(TM_WASI_CTX, u32 fd, u32 buf, u32 buf_len, u64 cookie, u32 bufused_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    GET_FD(h, fd, f);
    if (f->kind != TM_FD_DIR) return f->kind == TM_FD_PREOPEN ? TM_ENOTSUP : TM_ENOTDIR;
    if (!tm_mem_ok(h, buf, buf_len) || !tm_mem_ok(h, bufused_out, 4)) return TM_EFAULT;
    if (cookie > INT64_MAX) return TM_EINVAL;
    if (lseek(f->host, (off_t)cookie, SEEK_SET) < 0) return tm_errno_from_host(errno);

    char kbuf[8192] __attribute__((aligned(8)));
    uint32_t used = 0;
    while (used < buf_len) {
        long n = syscall(SYS_getdents64, f->host, kbuf, sizeof kbuf);
        if (n < 0) return tm_errno_from_host(errno);
        if (n == 0) break;
        for (long off = 0; off < n && used < buf_len;) {
            struct tm_dirent64 *d = (struct tm_dirent64 *)(void *)(kbuf + off);
            off += d->d_reclen;
            uint8_t type;
            switch (d->d_type) {
            case DT_DIR: type = TM_FT_DIR; break;
            case DT_REG: type = TM_FT_REG; break;
            case DT_LNK: type = TM_FT_SYMLINK; break;
            case DT_CHR: type = TM_FT_CHAR; break;
            case DT_BLK: type = TM_FT_BLOCK; break;
            case DT_SOCK: type = TM_FT_SOCK_STREAM; break;
            default: type = TM_FT_UNKNOWN; break;
            }
            size_t namlen = strlen(d->d_name);
            uint8_t ent[TM_DIRENT_SIZE];
            memset(ent, 0, sizeof ent);
            uint64_t next = (uint64_t)d->d_off;
            uint64_t ino = d->d_ino;
            uint32_t nl = (uint32_t)namlen;
            memcpy(ent, &next, 8);
            memcpy(ent + 8, &ino, 8);
            memcpy(ent + 16, &nl, 4);
            ent[20] = type;
            uint32_t take = buf_len - used < TM_DIRENT_SIZE ? buf_len - used : TM_DIRENT_SIZE;
            memcpy(tm_mem(h, buf + used), ent, take);
            used += take;
            take = buf_len - used < nl ? buf_len - used : nl;
            memcpy(tm_mem(h, buf + used), d->d_name, take);
            used += take;
        }
    }
    tm_st32(h, bufused_out, used);
    return TM_ESUCCESS;
}
