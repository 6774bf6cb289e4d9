/*
 * t_wasi.c — test module for tmqtt-wasm (compiled with clang --target=wasm32-wasi).
 *
 * One module, many sub-commands (argv[1]); tests/runtime/driver.py runs it under the
 * runtime with the right options and checks its output and exit status. Each
 * sub-command prints "ok <what>" lines, or "FAIL <what>: <why>" and exits 1, so a
 * failure names the WASI call that misbehaved.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

#include "platform/wasi_ra.h"
#include "platform/wasi_socket.h"
#include "t_check.h"

/* -- args, env, clocks, random ------------------------------------------------------ */

static int cmd_args(int argc, char **argv)
{
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    return 0;
}

extern char **environ;
static int cmd_env(void)
{
    int n = 0;
    for (char **e = environ; e && *e; e++, n++) printf("env %s\n", *e);
    printf("envc=%d\n", n);
    const char *v = getenv("TM_TEST");
    printf("TM_TEST=%s\n", v ? v : "(unset)");
    return 0;
}

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmd_clock(void)
{
    uint64_t rt = now_ns(CLOCK_REALTIME);
    CHECK(rt > 1600000000ull * 1000000000ull, "clock realtime after 2020");
    struct timespec res;
    CHECK(clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0, "clock_res_get");
    uint64_t a = now_ns(CLOCK_MONOTONIC);
    struct timespec d = {0, 30 * 1000000};
    CHECK(nanosleep(&d, NULL) == 0, "nanosleep (poll_oneoff clock)");
    uint64_t b = now_ns(CLOCK_MONOTONIC);
    CHECK(b - a >= 29000000ull && b - a < 2000000000ull, "monotonic advanced by the sleep");
    CHECK(now_ns(CLOCK_PROCESS_CPUTIME_ID) > 0, "process cputime clock");
    __wasi_timestamp_t t;
    CHECK(__wasi_clock_time_get(99, 1, &t) == __WASI_ERRNO_INVAL, "unknown clock -> EINVAL");
    return done();
}

static int cmd_random(void)
{
    uint8_t a[64], b[64];
    CHECK(getentropy(a, sizeof a) == 0 && getentropy(b, sizeof b) == 0, "random_get");
    CHECK(memcmp(a, b, sizeof a) != 0, "two draws differ");
    CHECK(__wasi_random_get((uint8_t *)0xfffffff0u, 64) == __WASI_ERRNO_FAULT, "random_get out of bounds -> EFAULT");
    return done();
}

/* -- descriptors and files ---------------------------------------------------------- */

static int cmd_fdstat(void)
{
    __wasi_fdstat_t st;
    CHECK(__wasi_fd_fdstat_get(1, &st) == 0, "fdstat stdout");
    CHECK(__wasi_fd_fdstat_get(77, &st) == __WASI_ERRNO_BADF, "fdstat unknown fd -> EBADF");
    __wasi_prestat_t ps;
    CHECK(__wasi_fd_prestat_get(3, &ps) == 0 && ps.u.dir.pr_name_len == strlen("/sandbox"), "prestat of preopen 3");
    char name[32] = {0};
    CHECK(__wasi_fd_prestat_dir_name(3, (uint8_t *)name, sizeof name) == 0 && strcmp(name, "/sandbox") == 0,
          "prestat_dir_name");
    CHECK(__wasi_fd_prestat_get(4, &ps) == __WASI_ERRNO_BADF, "no second preopen");
    return done();
}

static int cmd_files(void)
{
    const char *msg = "hello, sandbox\n";
    int fd = open("/sandbox/a.txt", O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK(fd >= 0, "path_open create");
    CHECK(write(fd, msg, strlen(msg)) == (ssize_t)strlen(msg), "fd_write");
    CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)strlen(msg), "fd_tell");
    CHECK(lseek(fd, 7, SEEK_SET) == 7, "fd_seek");
    char buf[64] = {0};
    CHECK(read(fd, buf, sizeof buf) == (ssize_t)strlen(msg) - 7 && strcmp(buf, "sandbox\n") == 0, "fd_read");
    CHECK(pwrite(fd, "HELLO", 5, 0) == 5, "fd_pwrite");
    memset(buf, 0, sizeof buf);
    CHECK(pread(fd, buf, 5, 0) == 5 && memcmp(buf, "HELLO", 5) == 0, "fd_pread");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == (off_t)strlen(msg) && S_ISREG(st.st_mode), "fd_filestat_get");
    CHECK(ftruncate(fd, 3) == 0 && fstat(fd, &st) == 0 && st.st_size == 3, "fd_filestat_set_size");
    CHECK(fsync(fd) == 0 && fdatasync(fd) == 0, "fd_sync / fd_datasync");
    int fl = fcntl(fd, F_GETFL);
    CHECK(fl >= 0 && fcntl(fd, F_SETFL, fl | O_APPEND) == 0 && (fcntl(fd, F_GETFL) & O_APPEND),
          "fd_fdstat_set_flags append");
    CHECK(close(fd) == 0, "fd_close");
    CHECK(close(fd) != 0 && errno == EBADF, "double close -> EBADF");

    CHECK(stat("/sandbox/a.txt", &st) == 0 && st.st_size == 3, "path_filestat_get");
    CHECK(mkdir("/sandbox/d", 0755) == 0, "path_create_directory");
    CHECK(mkdir("/sandbox/d", 0755) != 0 && errno == EEXIST, "mkdir existing -> EEXIST");
    CHECK(rename("/sandbox/a.txt", "/sandbox/d/b.txt") == 0, "path_rename");
    CHECK(access("/sandbox/a.txt", F_OK) != 0 && errno == ENOENT, "renamed away");
    CHECK(symlink("b.txt", "/sandbox/d/link") == 0, "path_symlink");
    char lk[64] = {0};
    CHECK(readlink("/sandbox/d/link", lk, sizeof lk) == 5 && memcmp(lk, "b.txt", 5) == 0, "path_readlink");
    CHECK(stat("/sandbox/d/link", &st) == 0 && S_ISREG(st.st_mode), "stat follows relative symlink");
    CHECK(lstat("/sandbox/d/link", &st) == 0 && S_ISLNK(st.st_mode), "lstat does not follow");
    CHECK(symlink("/etc/passwd", "/sandbox/d/abs") != 0 && errno == ENOTCAPABLE, "absolute symlink refused");
    CHECK(link("/sandbox/d/b.txt", "/sandbox/d/hard") == 0, "path_link");

    DIR *dir = opendir("/sandbox/d");
    CHECK(dir != NULL, "opendir (path_open directory)");
    int seen = 0;
    struct dirent *de;
    while (dir && (de = readdir(dir)) != NULL) {
        if (!strcmp(de->d_name, "b.txt") || !strcmp(de->d_name, "link") || !strcmp(de->d_name, "hard")) seen++;
    }
    if (dir) closedir(dir);
    CHECK(seen == 3, "fd_readdir lists the entries");

    /* Many entries: forces several fd_readdir calls with cookies. */
    CHECK(mkdir("/sandbox/many", 0755) == 0, "mkdir many");
    for (int i = 0; i < 300; i++) {
        char p[64];
        snprintf(p, sizeof p, "/sandbox/many/file-with-a-long-name-%03d", i);
        int f = open(p, O_CREAT | O_WRONLY, 0644);
        if (f >= 0) close(f);
    }
    dir = opendir("/sandbox/many");
    int n = 0;
    while (dir && (de = readdir(dir)) != NULL)
        if (de->d_name[0] != '.') n++;
    if (dir) closedir(dir);
    CHECK(n == 300, "fd_readdir with cookies (300 entries)");
    for (int i = 0; i < 300; i++) {
        char p[64];
        snprintf(p, sizeof p, "/sandbox/many/file-with-a-long-name-%03d", i);
        unlink(p);
    }
    CHECK(rmdir("/sandbox/many") == 0, "rmdir many");

    CHECK(unlink("/sandbox/d/link") == 0 && unlink("/sandbox/d/hard") == 0, "path_unlink_file");
    CHECK(rmdir("/sandbox/d") != 0 && errno == ENOTEMPTY, "rmdir non-empty -> ENOTEMPTY");
    CHECK(unlink("/sandbox/d/b.txt") == 0 && rmdir("/sandbox/d") == 0, "path_remove_directory");

    /* fd_renumber */
    int f1 = open("/sandbox/r1", O_CREAT | O_RDWR, 0644), f2 = open("/sandbox/r2", O_CREAT | O_RDWR, 0644);
    CHECK(f1 >= 0 && f2 >= 0 && __wasi_fd_renumber(f1, f2) == 0, "fd_renumber");
    CHECK(write(f2, "x", 1) == 1 && close(f1) != 0, "renumbered fd works, old one gone");
    CHECK(stat("/sandbox/r1", &st) == 0 && st.st_size == 1, "write went to r1");
    close(f2);
    unlink("/sandbox/r1");
    unlink("/sandbox/r2");
    return done();
}

/* Raw path_open relative to the preopen (fd 3), bypassing wasi-libc's own checks. */
static __wasi_errno_t raw_open(const char *path, __wasi_lookupflags_t lf)
{
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(3, lf, path, 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
    if (e == 0) (void)__wasi_fd_close(fd);
    return e;
}

static int cmd_confine(void)
{
    /* Set up by the driver: sandbox/inside.txt, sandbox/sub/, outside/secret.txt next to
     * sandbox, sandbox/esc -> ../outside, sandbox/abs -> /etc,
     * sandbox/sub/up -> .. (stays inside), sandbox/loop -> loop */
    const __wasi_lookupflags_t F = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;
    CHECK(raw_open("inside.txt", F) == 0, "plain file inside");
    CHECK(raw_open("sub/../inside.txt", F) == 0, "dot-dot that stays inside");
    CHECK(raw_open("./sub/./../inside.txt", F) == 0, "dots inside");
    CHECK(raw_open("../outside/secret.txt", F) == __WASI_ERRNO_NOTCAPABLE, "dot-dot escape refused");
    CHECK(raw_open("sub/../../outside/secret.txt", F) == __WASI_ERRNO_NOTCAPABLE, "nested dot-dot escape refused");
    CHECK(raw_open("/etc/passwd", F) == __WASI_ERRNO_NOTCAPABLE, "absolute path refused");
    CHECK(raw_open("esc/secret.txt", F) == __WASI_ERRNO_NOTCAPABLE, "symlink escape (relative target) refused");
    CHECK(raw_open("abs/passwd", F) == __WASI_ERRNO_NOTCAPABLE, "symlink escape (absolute target) refused");
    CHECK(raw_open("esc", F) == __WASI_ERRNO_NOTCAPABLE, "final symlink escape refused");
    CHECK(raw_open("esc", 0) == __WASI_ERRNO_LOOP, "final symlink without follow -> ELOOP");
    CHECK(raw_open("sub/up/inside.txt", F) == 0, "symlink to .. that stays inside");
    CHECK(raw_open("loop", F) == __WASI_ERRNO_LOOP, "symlink loop -> ELOOP");
    CHECK(raw_open("", F) == __WASI_ERRNO_NOENT, "empty path -> ENOENT");
    __wasi_fd_t fd;
    CHECK(__wasi_path_open(3, F, "../x", __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_WRITE, 0, 0, &fd) ==
              __WASI_ERRNO_NOTCAPABLE, "create outside refused");
    CHECK(__wasi_path_create_directory(3, "../newdir") == __WASI_ERRNO_NOTCAPABLE, "mkdir outside refused");
    CHECK(__wasi_path_unlink_file(3, "esc/secret.txt") == __WASI_ERRNO_NOTCAPABLE, "unlink through symlink refused");
    CHECK(__wasi_path_rename(3, "inside.txt", 3, "../stolen.txt") == __WASI_ERRNO_NOTCAPABLE, "rename outside refused");
    __wasi_filestat_t fs;
    CHECK(__wasi_path_filestat_get(3, F, "esc/secret.txt", &fs) == __WASI_ERRNO_NOTCAPABLE, "stat through symlink refused");
    CHECK(__wasi_path_filestat_get(3, 0, "esc", &fs) == 0 && fs.filetype == __WASI_FILETYPE_SYMBOLIC_LINK,
          "lstat of the escaping link itself is fine");
    CHECK(open("/sandbox/../outside/secret.txt", O_RDONLY) < 0, "libc open with .. refused");
    CHECK(open("/etc/passwd", O_RDONLY) < 0, "libc open outside any preopen refused");
    CHECK(__wasi_path_open(1, F, "x", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd) == __WASI_ERRNO_NOTDIR,
          "path_open relative to a non-directory -> ENOTDIR");
    return done();
}

/* -- poll --------------------------------------------------------------------------- */

static int cmd_poll(void)
{
    uint64_t a = now_ns(CLOCK_MONOTONIC);
    CHECK(poll(NULL, 0, 50) == 0, "poll timeout only");
    uint64_t b = now_ns(CLOCK_MONOTONIC);
    CHECK(b - a >= 49000000ull, "poll waited 50 ms");
    /* stdin is a pipe from the driver: it writes once it has read the line above and
     * sees this process blocked (in the poll below), so flush that line. */
    fflush(stdout);
    struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = 1, .events = POLLOUT}};
    int r = poll(p, 1, 5000);
    CHECK(r == 1 && (p[0].revents & POLLIN), "poll stdin readable");
    char buf[16] = {0};
    CHECK(read(0, buf, sizeof buf - 1) > 0 && strncmp(buf, "wake", 4) == 0, "read what woke us");
    fflush(stdout);   /* the driver closes stdin once it has this line and we block */
    r = poll(p, 2, 0);
    CHECK(r >= 1 && (p[1].revents & POLLOUT), "stdout writable, poll with 0 timeout");
    /* EOF on stdin: readable (hangup). */
    r = poll(p, 1, 5000);
    CHECK(r == 1 && (p[0].revents & (POLLIN | POLLHUP)), "poll reports EOF/hangup");
    return done();
}

/* -- traps and limits ------------------------------------------------------------------ */

typedef int (*int_fn)(int);
static void void_fn(void) {}
static int (*volatile recurse_ptr)(int);
static int recurse(int n) { return recurse_ptr(n + 1) + 1; }

static int cmd_trap(const char *kind)
{
    fflush(stdout);
    if (!strcmp(kind, "unreachable")) __builtin_trap();
    if (!strcmp(kind, "div0")) {
        volatile int a = 1, b = 0;
        printf("%d\n", a / b);
    }
    if (!strcmp(kind, "oob")) {
        volatile uint32_t addr = 0xfffffff0u;
        volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)addr;
        *p = 1;
    }
    if (!strcmp(kind, "stack")) {
        recurse_ptr = recurse;
        printf("%d\n", recurse(0));
    }
    if (!strcmp(kind, "indirect")) {
        void (*volatile v)(void) = void_fn;
        printf("%d\n", ((int_fn)(void (*)(void))v)(1));
    }
    if (!strcmp(kind, "null")) {
        int_fn volatile f = NULL;
        printf("%d\n", f(1));
    }
    printf("no trap for '%s'\n", kind);
    return 1;
}

static void *volatile keep[4096]; /* keeps the allocations observable to the optimiser */

static int cmd_memory(int mb)
{
    int got = 0;
    for (int i = 0; i < mb && i < 4096; i++) {
        void *p = malloc(1 << 20);
        if (!p) break;
        memset(p, 1, 1 << 20);
        keep[i] = p;
        got++;
    }
    printf("allocated %d MiB\n", got);
    return 0;
}

/* -- attestation import ------------------------------------------------------------------ */

static int cmd_ra(uint32_t format)
{
    uint8_t f[64];
    uint32_t n = 0;
    uint32_t e = tm_ra_formats(f, sizeof f, &n);
    printf("formats errno=%u bytes=%u", e, n);
    for (uint32_t i = 0; i + 1 < n; i += 2) printf(" 0x%04x", f[i] << 8 | f[i + 1]);
    printf("\n");
    uint8_t rd[64];
    for (int i = 0; i < 64; i++) rd[i] = (uint8_t)(0xa0 + i);
    uint32_t len = 0;
    e = tm_ra_collect_evidence(format, rd, f, 4, &len);
    printf("collect small errno=%u len=%u\n", e, len);
    if (e == ENOBUFS && len > 0) {
        uint8_t *ev = malloc(len);
        uint32_t l2 = 0;
        e = tm_ra_collect_evidence(format, rd, ev, len, &l2);
        printf("collect errno=%u len=%u\n", e, l2);
        if (format == 1 && l2 >= 116) {
            printf("magic=%.8s measurement=", (char *)ev);
            for (int i = 8; i < 40; i++) printf("%02x", ev[i]);
            /* report_data follows magic, measurement, flags, timestamp */
            printf("\nreport_data_bound=%d\n", memcmp(ev + 52, rd, 64) == 0);
        }
        free(ev);
    }
    e = tm_ra_collect_evidence(format, (const uint8_t *)0xfffffff0u, f, sizeof f, &len);
    printf("collect bad pointer errno=%u\n", e);
    return 0;
}

/* -- sockets -------------------------------------------------------------------------------- */

static int make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof *s4;
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof *s6;
        return AF_INET6;
    }
    return -1;
}

static int cmd_echo_server(const char *host)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fam = make_addr(host, 0, &ss, &len);
    int s = socket(fam, SOCK_STREAM, 0);
    CHECK(s >= 0, "socket");
    int one = 1;
    CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "setsockopt SO_REUSEADDR");
    CHECK(bind(s, (struct sockaddr *)&ss, len) == 0, "bind");
    CHECK(listen(s, 16) == 0, "listen");
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    CHECK(getsockname(s, (struct sockaddr *)&me, &ml) == 0, "getsockname");
    int port = fam == AF_INET ? ntohs(((struct sockaddr_in *)&me)->sin_port)
                              : ntohs(((struct sockaddr_in6 *)&me)->sin6_port);
    printf("PORT %d\n", port);
    fflush(stdout);
    /* wait for the connection with poll (fd_read subscription on a listener) */
    struct pollfd pl = {.fd = s, .events = POLLIN};
    CHECK(poll(&pl, 1, 10000) == 1, "poll listener");
    struct sockaddr_storage peer;
    socklen_t pl2 = sizeof peer;
    int c = accept(s, (struct sockaddr *)&peer, &pl2);
    CHECK(c >= 0, "accept");
    char ip[64] = "?";
    if (c >= 0) {
        if (peer.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, ip, sizeof ip);
        else inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, ip, sizeof ip);
    }
    printf("peer %s\n", ip);
    char nh[NI_MAXHOST], ns[NI_MAXSERV];
    CHECK(getnameinfo((struct sockaddr *)&peer, pl2, nh, sizeof nh, ns, sizeof ns, NI_NUMERICHOST | NI_NUMERICSERV) == 0 &&
              strcmp(nh, ip) == 0, "getnameinfo numeric");
    CHECK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "TCP_NODELAY");
    int v = 0;
    socklen_t vl = sizeof v;
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v == 1, "getsockopt TCP_NODELAY");
    CHECK(fcntl(c, F_SETFL, O_NONBLOCK) == 0, "nonblocking");
    size_t total = 0;
    for (;;) {
        struct pollfd pc = {.fd = c, .events = POLLIN};
        if (poll(&pc, 1, 10000) != 1) break;
        char buf[4096];
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n < 0 && errno == EAGAIN) continue;
        if (n <= 0) break;
        total += (size_t)n;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(c, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0 && errno == EAGAIN) {
                struct pollfd pw = {.fd = c, .events = POLLOUT};
                poll(&pw, 1, 1000);
                continue;
            }
            if (w <= 0) break;
            off += w;
        }
    }
    printf("echoed %zu bytes\n", total);
    CHECK(shutdown(c, SHUT_RDWR) == 0 || errno == ENOTCONN, "shutdown");
    close(c);
    close(s);
    return done();
}

static int cmd_bind(const char *host)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fam = make_addr(host, 0, &ss, &len);
    int s = socket(fam, SOCK_STREAM, 0);
    if (s < 0) {
        printf("socket errno %d\n", errno);
        return 2;
    }
    if (bind(s, (struct sockaddr *)&ss, len) != 0) {
        int e = errno; /* printf may change errno */
        printf("bind %s refused errno %d (%s)\n", host, e, strerror(e));
        return e == EACCES ? 13 : 2;
    }
    printf("bind %s ok\n", host);
    close(s);
    return 0;
}

static int cmd_connect(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fam = make_addr(host, port, &ss, &len);
    int s = socket(fam, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&ss, len) != 0) {
        int e = errno;
        printf("connect refused errno %d (%s)\n", e, strerror(e));
        return e == EACCES ? 13 : 2;
    }
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    CHECK(getpeername(s, (struct sockaddr *)&peer, &pl) == 0 &&
              ntohs(((struct sockaddr_in *)&peer)->sin_port) == port, "getpeername");
    const char *msg = "ping from wasm";
    CHECK(send(s, msg, strlen(msg), 0) == (ssize_t)strlen(msg), "sock_send");
    char buf[64] = {0};
    ssize_t n = recv(s, buf, sizeof buf - 1, MSG_WAITALL);
    printf("reply %s\n", n > 0 ? buf : "(none)");
    close(s);
    return done();
}

static int cmd_resolve(const char *name)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int r = getaddrinfo(name, "1883", &hints, &res);
    if (r) {
        printf("getaddrinfo %s: %s\n", name, gai_strerror(r));
        return 2;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char ip[64];
        if (ai->ai_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof ip);
        else inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ip, sizeof ip);
        printf("addr %s port %d\n", ip,
               ntohs(ai->ai_family == AF_INET ? ((struct sockaddr_in *)ai->ai_addr)->sin_port
                                              : ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port));
    }
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "args")) return cmd_args(argc, argv);
    if (!strcmp(cmd, "env")) return cmd_env();
    if (!strcmp(cmd, "clock")) return cmd_clock();
    if (!strcmp(cmd, "random")) return cmd_random();
    if (!strcmp(cmd, "exit")) exit(argc > 2 ? atoi(argv[2]) : 0);
    if (!strcmp(cmd, "return")) return argc > 2 ? atoi(argv[2]) : 0;
    if (!strcmp(cmd, "fdstat")) return cmd_fdstat();
    if (!strcmp(cmd, "files")) return cmd_files();
    if (!strcmp(cmd, "confine")) return cmd_confine();
    if (!strcmp(cmd, "poll")) return cmd_poll();
    if (!strcmp(cmd, "trap") && argc > 2) return cmd_trap(argv[2]);
    if (!strcmp(cmd, "memory") && argc > 2) return cmd_memory(atoi(argv[2]));
    if (!strcmp(cmd, "ra")) return cmd_ra(argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 1);
    if (!strcmp(cmd, "echo-server") && argc > 2) return cmd_echo_server(argv[2]);
    if (!strcmp(cmd, "bind") && argc > 2) return cmd_bind(argv[2]);
    if (!strcmp(cmd, "connect") && argc > 3) return cmd_connect(argv[2], atoi(argv[3]));
    if (!strcmp(cmd, "resolve") && argc > 2) return cmd_resolve(argv[2]);
    fprintf(stderr, "t_wasi: unknown command '%s'\n", cmd);
    return 64;
}
