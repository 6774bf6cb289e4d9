/*
 * wasi_path.c — the WASI path_* calls, confined to the preopened directories.
 *
 * Every path is resolved here, one component at a time, with openat(O_PATH |
 * O_NOFOLLOW) relative to the directory descriptor the module names; symlinks are read
 * with readlinkat() and spliced into the remaining path by this code, never followed
 * by the kernel. A stack of the directories walked so far makes `..` pop one level;
 * popping past the starting directory, an absolute path, or an absolute symlink
 * target is refused with ENOTCAPABLE. The last step of every operation is an *at()
 * call on (parent directory descriptor, final name) with no-follow semantics, so a
 * symlink swapped in between resolution and use fails (ELOOP) instead of escaping.
 *
 * Why not openat2(RESOLVE_BENEATH): it covers only opening, while mkdir, unlink,
 * rename, stat and readlink need the same (parent, name) split anyway; and Gramine,
 * one of the targets, does not implement openat2. One code path, tested once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/host.h"
#include "runtime/host_imports.h"

#define TM_MAX_SYMLINKS 40

typedef struct {
    int dirfd;      /* parent directory of the final component (borrowed or owned) */
    char *name;     /* final component ("." for the directory itself) */
    int *stack;     /* owned descriptors of walked directories (stack[0] borrowed) */
    int depth;
    int cap;
} resolved;

static void resolved_free(resolved *r)
{
    for (int i = 1; i < r->depth; i++) close(r->stack[i]);
    free(r->stack);
    free(r->name);
    memset(r, 0, sizeof *r);
}

static uint16_t push(resolved *r, int fd)
{
    if (r->depth == r->cap) {
        int n = r->cap ? r->cap * 2 : 8;
        int *s = realloc(r->stack, (size_t)n * sizeof *s);
        if (!s) return TM_ENOMEM;
        r->stack = s;
        r->cap = n;
    }
    r->stack[r->depth++] = fd;
    return TM_ESUCCESS;
}

/* Read symlink `name` in dir `d`; 1 = is a symlink (target in *out), 0 = not one. */
static int read_link(int d, const char *name, char **out)
{
    char buf[PATH_MAX];
    ssize_t n = readlinkat(d, name, buf, sizeof buf - 1);
    if (n < 0) return errno == EINVAL || errno == ENOENT ? 0 : -1;
    buf[n] = 0;
    *out = strdup(buf);
    return *out ? 1 : -1;
}

/* Replace the consumed part of the path with the link target: the new path is
 * target + rest, where rest is empty or starts with '/'. */
static uint16_t path_splice(char **path, size_t *pos, const char *target)
{
    if (target[0] == '/') return TM_ENOTCAPABLE;
    if (target[0] == 0) return TM_ENOENT;
    const char *rest = *path + *pos;
    size_t tl = strlen(target), rl = strlen(rest);
    char *np = malloc(tl + rl + 1);
    if (!np) return TM_ENOMEM;
    memcpy(np, target, tl);
    memcpy(np + tl, rest, rl + 1);
    free(*path);
    *path = np;
    *pos = 0;
    return TM_ESUCCESS;
}

static uint16_t resolve_str(tm_host *h, uint32_t fd, const char *in, bool follow_final,
                            resolved *r)
{
    memset(r, 0, sizeof *r);
    tm_fd *f = tm_fd_get(h, fd);
    if (!f) return TM_EBADF;
    if (f->kind != TM_FD_PREOPEN && f->kind != TM_FD_DIR) return TM_ENOTDIR;
    if (in[0] == 0) return TM_ENOENT;
    if (in[0] == '/') return TM_ENOTCAPABLE;
    uint16_t e = push(r, f->host);
    if (e) return e;

    char *path = strdup(in);
    if (!path) return TM_ENOMEM;
    size_t pos = 0;
    int links = 0;
    char *final = NULL;

    for (;;) {
        while (path[pos] == '/') pos++;
        if (path[pos] == 0) { /* trailing slash or nothing left: the directory itself */
            final = strdup(".");
            break;
        }
        size_t start = pos;
        while (path[pos] && path[pos] != '/') pos++;
        char save = path[pos];
        path[pos] = 0;
        char comp[NAME_MAX + 1];
        if (pos - start > NAME_MAX) {
            e = TM_ENAMETOOLONG;
            break;
        }
        memcpy(comp, path + start, pos - start + 1);
        path[pos] = save;
        size_t after = pos;
        while (path[after] == '/') after++;
        bool last = path[after] == 0;
        bool trailing_slash = last && path[pos] == '/';

        if (strcmp(comp, ".") == 0) {
            if (last) { final = strdup("."); break; }
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            if (r->depth == 1) { e = TM_ENOTCAPABLE; break; }
            close(r->stack[--r->depth]);
            if (last) { final = strdup("."); break; }
            continue;
        }
        int top = r->stack[r->depth - 1];
        if (last && !trailing_slash && !follow_final) {
            final = strdup(comp);
            break;
        }
        if (last && !trailing_slash) {
            /* Final component to follow: expand it if it is a symlink. */
            char *target = NULL;
            int lk = read_link(top, comp, &target);
            if (lk < 0) { e = tm_errno_from_host(errno); break; }
            if (lk == 0) { final = strdup(comp); break; }
            if (++links > TM_MAX_SYMLINKS) { free(target); e = TM_ELOOP; break; }
            e = path_splice(&path, &pos, target);
            free(target);
            if (e) break;
            continue;
        }
        /* Intermediate component: a directory, or a symlink to expand. */
        int d = openat(top, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0) {
            int oe = errno;
            char *target = NULL;
            int lk = (oe == ENOTDIR || oe == ELOOP) ? read_link(top, comp, &target) : 0;
            if (lk < 0) { e = tm_errno_from_host(errno); break; }
            if (lk == 1) {
                if (++links > TM_MAX_SYMLINKS) { free(target); e = TM_ELOOP; break; }
                e = path_splice(&path, &pos, target);
                free(target);
                if (e) break;
                continue;
            }
            if (trailing_slash && oe == ENOENT) { final = strdup(comp); break; } /* "new/" */
            e = tm_errno_from_host(oe);
            break;
        }
        e = push(r, d);
        if (e) { close(d); break; }
        pos = after;
        if (last) { final = strdup("."); break; }
    }
    free(path);
    if (!e && !final) e = TM_ENOMEM;
    if (e) {
        free(final);
        resolved_free(r);
        return e;
    }
    r->name = final;
    r->dirfd = r->stack[r->depth - 1];
    return TM_ESUCCESS;
}

static uint16_t resolve(tm_host *h, uint32_t fd, uint32_t path, uint32_t len, bool follow,
                        resolved *r)
{
    char *s;
    memset(r, 0, sizeof *r);
    uint16_t e = tm_mem_strdup(h, path, len, &s);
    if (e) return e;
    e = resolve_str(h, fd, s, follow, r);
    TM_TRACE(h, "resolve(fd %u, \"%s\", follow=%d) -> %s", fd, s, follow, tm_errno_name(e));
    free(s);
    return e;
}

#define ERRNO_OR_OK(cond) ((cond) ? TM_ESUCCESS : tm_errno_from_host(errno))

u32 TM_WASI(path_open)(TM_WASI_CTX, u32 dirfd, u32 dirflags, u32 path, u32 path_len, u32 oflags,
                       u64 rights_base, u64 rights_inheriting, u32 fdflags, u32 fd_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, fd_out, 4)) return TM_EFAULT;
    resolved r;
    uint16_t e = resolve(h, dirfd, path, path_len, dirflags & TM_LOOKUP_SYMLINK_FOLLOW, &r);
    if (e) return e;

    const uint64_t want_read = TM_RIGHT_FD_READ | (1ULL << 14) /* fd_readdir */;
    const uint64_t want_write = TM_RIGHT_FD_WRITE | (1ULL << 8) /* fd_allocate */ |
                                (1ULL << 22) /* fd_filestat_set_size */;
    bool rd = rights_base & want_read, wr = rights_base & want_write;
    int flags = O_CLOEXEC | O_NOFOLLOW;
    if (oflags & TM_O_DIRECTORY) flags |= O_RDONLY | O_DIRECTORY;
    else if (wr && rd) flags |= O_RDWR;
    else if (wr) flags |= O_WRONLY;
    else flags |= O_RDONLY;
    if (oflags & TM_O_CREAT) flags |= O_CREAT;
    if (oflags & TM_O_EXCL) flags |= O_EXCL;
    if (oflags & TM_O_TRUNC) flags |= O_TRUNC;
    if (fdflags & TM_FDFLAG_APPEND) flags |= O_APPEND;
    if (fdflags & TM_FDFLAG_NONBLOCK) flags |= O_NONBLOCK;
    if (fdflags & TM_FDFLAG_DSYNC) flags |= O_DSYNC;
    if (fdflags & TM_FDFLAG_SYNC) flags |= O_SYNC;
    if (fdflags & TM_FDFLAG_RSYNC) flags |= O_RSYNC;

    int hfd = openat(r.dirfd, r.name, flags, 0666);
    int saved = errno;
    resolved_free(&r);
    if (hfd < 0) return tm_errno_from_host(saved);
    uint8_t ft = tm_filetype_of(hfd);
    uint32_t g;
    e = tm_fd_alloc(h, ft == TM_FT_DIR ? TM_FD_DIR : TM_FD_FILE, hfd, &g);
    if (e) {
        close(hfd);
        return e;
    }
    tm_st32(h, fd_out, g);
    return TM_ESUCCESS;
}

u32 TM_WASI(path_create_directory)(TM_WASI_CTX, u32 fd, u32 path, u32 path_len)
{
    tm_host *h = TM_HOST_OF(ctx);
    resolved r;
    uint16_t e = resolve(h, fd, path, path_len, false, &r);
    if (e) return e;
    e = ERRNO_OR_OK(mkdirat(r.dirfd, r.name, 0777) == 0);
    resolved_free(&r);
    return e;
}

void tm_filestat_put(tm_host *h, uint32_t p, const struct stat *st);
int tm_times_from_wasi(u64 atim, u64 mtim, u32 fst, struct timespec ts[2]);

u32 TM_WASI(path_filestat_get)(TM_WASI_CTX, u32 fd, u32 flags, u32 path, u32 path_len, u32 stat_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, stat_out, TM_FILESTAT_SIZE)) return TM_EFAULT;
    resolved r;
    uint16_t e = resolve(h, fd, path, path_len, flags & TM_LOOKUP_SYMLINK_FOLLOW, &r);
    if (e) return e;
    struct stat st;
    e = ERRNO_OR_OK(fstatat(r.dirfd, r.name, &st, AT_SYMLINK_NOFOLLOW) == 0);
    resolved_free(&r);
    if (!e) tm_filestat_put(h, stat_out, &st);
    return e;
}

u32 TM_WASI(path_filestat_set_times)(TM_WASI_CTX, u32 fd, u32 flags, u32 path, u32 path_len,
                                     u64 atim, u64 mtim, u32 fst_flags)
{
    tm_host *h = TM_HOST_OF(ctx);
    struct timespec ts[2];
    if (tm_times_from_wasi(atim, mtim, fst_flags, ts) != 0) return TM_EINVAL;
    resolved r;
    uint16_t e = resolve(h, fd, path, path_len, flags & TM_LOOKUP_SYMLINK_FOLLOW, &r);
    if (e) return e;
    e = ERRNO_OR_OK(utimensat(r.dirfd, r.name, ts, AT_SYMLINK_NOFOLLOW) == 0);
    resolved_free(&r);
    return e;
}

u32 TM_WASI(path_link)(TM_WASI_CTX, u32 old_fd, u32 old_flags, u32 old_path, u32 old_len,
                       u32 new_fd, u32 new_path, u32 new_len)
{
    tm_host *h = TM_HOST_OF(ctx);
    resolved a, b;
    uint16_t e = resolve(h, old_fd, old_path, old_len, old_flags & TM_LOOKUP_SYMLINK_FOLLOW, &a);
    if (e) return e;
    e = resolve(h, new_fd, new_path, new_len, false, &b);
    if (e) {
        resolved_free(&a);
        return e;
    }
    e = ERRNO_OR_OK(linkat(a.dirfd, a.name, b.dirfd, b.name, 0) == 0);
    resolved_free(&a);
    resolved_free(&b);
    return e;
}

u32 TM_WASI(path_readlink)(TM_WASI_CTX, u32 fd, u32 path, u32 path_len, u32 buf, u32 buf_len,
                           u32 bufused_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, buf, buf_len) || !tm_mem_ok(h, bufused_out, 4)) return TM_EFAULT;
    resolved r;
    uint16_t e = resolve(h, fd, path, path_len, false, &r);
    if (e) return e;
    char tmp[PATH_MAX];
    ssize_t n = readlinkat(r.dirfd, r.name, tmp, sizeof tmp);
    int saved = errno;
    resolved_free(&r);
    if (n < 0) return tm_errno_from_host(saved);
    uint32_t take = (uint64_t)n > buf_len ? buf_len : (uint32_t)n; /* truncates, as POSIX */
    memcpy(tm_mem(h, buf), tmp, take);
    tm_st32(h, bufused_out, take);
    return TM_ESUCCESS;
}

u32 TM_WASI(path_remove_directory)(TM_WASI_CTX, u32 fd, u32 path, u32 path_len)
{
    tm_host *h = TM_HOST_OF(ctx);
    resolved r;
    uint16_t e = resolve(h, fd, path, path_len, false, &r);
    if (e) return e;
    e = ERRNO_OR_OK(unlinkat(r.dirfd, r.name, AT_REMOVEDIR) == 0);
    resolved_free(&r);
    return e;
}

u32 TM_WASI(path_rename)(TM_WASI_CTX, u32 fd, u32 old_path, u32 old_len, u32 new_fd,
                         u32 new_path, u32 new_len)
{
    tm_host *h = TM_HOST_OF(ctx);
    resolved a, b;
    uint16_t e = resolve(h, fd, old_path, old_len, false, &a);
    if (e) return e;
    e = resolve(h, new_fd, new_path, new_len, false, &b);
    if (e) {
        resolved_free(&a);
        return e;
    }
    e = ERRNO_OR_OK(renameat(a.dirfd, a.name, b.dirfd, b.name) == 0);
    resolved_free(&a);
    resolved_free(&b);
    return e;
}

u32 TM_WASI(path_symlink)(TM_WASI_CTX, u32 old_path, u32 old_len, u32 fd, u32 new_path,
                          u32 new_len)
{
    tm_host *h = TM_HOST_OF(ctx);
    char *target;
    uint16_t e = tm_mem_strdup(h, old_path, old_len, &target);
    if (e) return e;
    /* The runtime never follows an absolute link, but other host programs would:
     * do not let a module plant one. */
    if (target[0] == '/') {
        free(target);
        return TM_ENOTCAPABLE;
    }
    resolved r;
    e = resolve(h, fd, new_path, new_len, false, &r);
    if (!e) {
        e = ERRNO_OR_OK(symlinkat(target, r.dirfd, r.name) == 0);
        resolved_free(&r);
    }
    free(target);
    return e;
}

u32 TM_WASI(path_unlink_file)(TM_WASI_CTX, u32 fd, u32 path, u32 path_len)
{
    tm_host *h = TM_HOST_OF(ctx);
    resolved r;
    uint16_t e = resolve(h, fd, path, path_len, false, &r);
    if (e) return e;
    e = ERRNO_OR_OK(unlinkat(r.dirfd, r.name, 0) == 0);
    resolved_free(&r);
    return e;
}
