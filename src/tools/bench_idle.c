/*
 * bench_idle.c — many idle connections held by several processes, and the
 * broker's resident memory per connection (tmqtt-bench idle).
 *
 * The parent (the tmqtt-bench process) first makes one warm-up connection of
 * the same transport itself, so that the broker's one-off costs (TLS and
 * attestation set-up, the first allocations of its pools) are not charged to
 * the measured connections. It reads the broker's VmRSS and RssAnon from
 * /proc/PID/status (the baseline), then forks W workers. Worker k opens its
 * share of the N connections — over TCP, TLS 1.3, or TLS 1.3 with attestation:
 * every one a complete handshake (and appraisal) followed by CONNECT/CONNACK —
 * and holds them on its own tm_loop, answering keep-alives.
 *
 * Readiness protocol: one pair of pipes per worker, one line of text per
 * message.
 *   worker -> parent   "ready K"          all K of its connections got CONNACK
 *                      "fail K REASON"    it could not open them all (K did)
 *                      "lost K REASON"    K connections dropped while held
 *                      "alive K"          answer to "check": K still open
 *                      "done"             answer to "quit": all closed
 *   parent -> worker   "check", "quit"; end of file also means quit (parent gone)
 * The parent never sleeps to synchronise: it polls the workers' pipes against
 * a deadline. The one wait of fixed length is the settle time between "every
 * worker ready" and reading the memory, which is part of what is measured
 * (brokers release per-handshake memory lazily), not synchronisation; a loss
 * reported during it ends the wait at once.
 *
 * Per connection = (VmRSS with N open - VmRSS before) / N. RssAnon (heap and
 * other anonymous memory) is reported next to it: it leaves out file-backed
 * pages (code) that the first connections may page in.
 *
 * Invariants: every worker the parent forked is reaped (waitpid) before
 * bench_idle_procs returns, also on errors (a worker that does not answer
 * "quit" in time is killed); a worker never returns into the caller's code
 * (it ends with _exit, so the parent's stdio buffers are not flushed twice).
 */
#include "tools/bench_core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PER_WORKER_DEFAULT 5000
#define FD_MARGIN 64           /* descriptors a worker needs besides its connections */
#define MAX_WORKERS 256

/* ---- worker ------------------------------------------------------------- */

typedef struct idle_worker idle_worker;

typedef struct idle_conn {
    idle_worker *w;
    int state;                 /* 0 connecting, 1 connected, -1 gone */
} idle_conn;

struct idle_worker {
    int count, connected, failed, lost, closed;
    char why[200];
    int status_fd;
    char cmd[64];
    size_t cmd_len;
    bool quit;
};

static void worker_say(const idle_worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void worker_say(const idle_worker *w, const char *fmt, ...)
{
    char line[300];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    for (int i = 0; i < n; i++)   /* one message, one line */
        if (line[i] == '\n')
            line[i] = ' ';
    line[n++] = '\n';
    /* A short write to a pipe of less than PIPE_BUF bytes cannot happen. */
    if (write(w->status_fd, line, (size_t)n) < 0)
        return;
}

static void note_why(idle_worker *w, const char *why)
{
    if (!w->why[0] && why)
        snprintf(w->why, sizeof w->why, "%.*s", (int)sizeof w->why - 1, why);
}

static void wc_connect(tm_client *c, void *ud, uint8_t code, bool sp, const tm_props *pr)
{
    (void)c, (void)sp, (void)pr;
    idle_conn *k = ud;
    if (k->state != 0)
        return;
    if (code == 0) {
        k->state = 1;
        k->w->connected++;
    } else {
        k->state = -1;
        k->w->failed++;
        char why[64];
        snprintf(why, sizeof why, "CONNACK refused (code 0x%02x)", code);
        note_why(k->w, why);
    }
}

static void wc_disconnect(tm_client *c, void *ud, uint8_t reason, const char *error)
{
    (void)c, (void)reason;
    idle_conn *k = ud;
    k->w->closed++;
    if (k->state == 0)
        k->w->failed++;
    else if (k->state == 1 && error)
        k->w->lost++;
    if (k->state >= 0)
        note_why(k->w, error ? error : "closed by the broker");
    k->state = -1;
}

/* Commands from the parent ("check", "quit"; EOF = quit). */
static void worker_cmd(tm_loop *loop, int fd, unsigned events, void *ud)
{
    (void)events;
    idle_worker *w = ud;
    ssize_t r = read(fd, w->cmd + w->cmd_len, sizeof w->cmd - 1 - w->cmd_len);
    if (r <= 0) {
        if (r < 0 && errno == EINTR)
            return;
        w->quit = true;
        tm_loop_del(loop, fd);
        return;
    }
    w->cmd_len += (size_t)r;
    char *nl;
    while ((nl = memchr(w->cmd, '\n', w->cmd_len))) {
        *nl = 0;
        if (!strcmp(w->cmd, "check"))
            worker_say(w, "alive %d", w->connected - w->lost);
        else if (!strcmp(w->cmd, "quit"))
            w->quit = true;
        size_t used = (size_t)(nl - w->cmd) + 1;
        memmove(w->cmd, nl + 1, w->cmd_len - used);
        w->cmd_len -= used;
    }
    if (w->cmd_len == sizeof w->cmd - 1)   /* garbage without newline */
        w->cmd_len = 0;
}

static void tick_conns(tm_client **cl, int n, uint64_t *last)
{
    uint64_t now_ms = tm_client_now_ms();
    if (now_ms - *last < 1000)
        return;
    *last = now_ms;
    for (int i = 0; i < n; i++)
        if (cl[i])
            tm_client_tick(cl[i], now_ms);
}

/* Opens w->count connections, at most net->connect_parallel at once. */
static int worker_open(const bench_net *net, idle_worker *w, int first, tm_loop *loop,
                       tm_client **cl, idle_conn *ks)
{
    tm_client_cbs cbs = {.on_connect = wc_connect, .on_disconnect = wc_disconnect};
    int par = net->connect_parallel > 0 ? net->connect_parallel : 64, started = 0;
    /* A stall, not a slow machine, is an error: the deadline moves with progress. */
    uint64_t stall = (uint64_t)(net->connect_timeout_s * 1e9), dl = bench_now_ns() + stall;
    uint64_t last_tick = 0;
    int done = 0;
    while (w->connected + w->failed < w->count && !w->quit) {
        if (w->connected + w->failed > done) {
            done = w->connected + w->failed;
            dl = bench_now_ns() + stall;
        }
        while (started < w->count && started - w->connected - w->failed < par) {
            char err[256], id[64];
            snprintf(id, sizeof id, "bench-%d-idle-%d", (int)getpid(), first + started);
            ks[started].w = w;
            cl[started] = bench_make_client(loop, net, id, &ks[started], &cbs, 0, err, sizeof err);
            if (!cl[started] || tm_client_connect(cl[started]) < 0) {
                note_why(w, cl[started] ? tm_client_error(cl[started]) : err);
                return -1;
            }
            started++;
        }
        if (w->failed)
            return -1;
        if (bench_now_ns() > dl) {
            char why[96];
            snprintf(why, sizeof why, "timeout: no connection completed for %.0f s, %d of %d "
                     "connected", net->connect_timeout_s, w->connected, w->count);
            note_why(w, why);
            return -1;
        }
        tm_loop_run_once(loop, 50);
        tick_conns(cl, started, &last_tick);
    }
    return w->connected == w->count ? 0 : -1;
}

static void worker_close(tm_loop *loop, tm_client **cl, idle_conn *ks, idle_worker *w)
{
    int live = 0, closed0 = w->closed;
    for (int i = 0; i < w->count; i++)
        if (cl[i] && ks[i].state == 1 && tm_client_get_state(cl[i]) == TM_CS_CONNECTED) {
            tm_client_disconnect(cl[i], 0, NULL);
            live++;
        }
    uint64_t stop = bench_now_ns() + 5000000000ull;
    while (w->closed - closed0 < live && bench_now_ns() < stop)
        tm_loop_run_once(loop, 20);
    for (int i = 0; i < w->count; i++)
        if (cl[i])
            tm_client_free(cl[i]);
}

/* The whole life of a worker; never returns. */
static void worker_main(const bench_net *net, int first, int count, int cmd_fd, int status_fd)
{
    bench_raise_nofile();
    idle_worker w = {.count = count, .status_fd = status_fd};
    tm_loop *loop = tm_loop_new();
    tm_client **cl = calloc((size_t)count, sizeof *cl);
    idle_conn *ks = calloc((size_t)count, sizeof *ks);
    if (!loop || !cl || !ks || tm_loop_add(loop, cmd_fd, TM_EV_READ, worker_cmd, &w) < 0) {
        worker_say(&w, "fail 0 out of memory");
        _exit(1);
    }
    if (worker_open(net, &w, first, loop, cl, ks) == 0)
        worker_say(&w, "ready %d", w.connected);
    else
        worker_say(&w, "fail %d %s", w.connected, w.why[0] ? w.why : "connection failed");
    /* Hold until told to quit; report losses as they happen. */
    int reported = 0;
    uint64_t last_tick = 0;
    while (!w.quit) {
        tm_loop_run_once(loop, 200);
        tick_conns(cl, count, &last_tick);
        if (w.lost > reported) {
            reported = w.lost;
            worker_say(&w, "lost %d %s", w.lost, w.why);
        }
    }
    worker_close(loop, cl, ks, &w);
    worker_say(&w, "done");
    free(cl);
    free(ks);
    tm_loop_free(loop);
    _exit(0);
}

/* ---- parent --------------------------------------------------------------- */

typedef struct wproc {
    pid_t pid;
    int cmd_fd, status_fd;     /* -1 when closed */
    int count;
    char buf[512];
    size_t len;
    char last[16];             /* first word of the last line read */
    int value;                 /* its number */
} wproc;

static void set_why(bench_idle_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_why(bench_idle_result *out, const char *fmt, ...)
{
    if (out->why[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof out->why, fmt, ap);
    va_end(ap);
}

static void tell(wproc *ws, int nw, const char *cmd)
{
    for (int i = 0; i < nw; i++)
        if (ws[i].cmd_fd >= 0 && write(ws[i].cmd_fd, cmd, strlen(cmd)) < 0) {
            close(ws[i].cmd_fd);
            ws[i].cmd_fd = -1;
        }
}

/* Handles one line from worker i; a "lost" or "fail" line is an error. */
static void on_line(wproc *w, int i, char *line, bench_idle_result *out)
{
    char *rest = strchr(line, ' ');
    if (rest)
        *rest++ = 0;
    snprintf(w->last, sizeof w->last, "%s", line);
    w->value = rest ? atoi(rest) : 0;
    char *reason = rest ? strchr(rest, ' ') : NULL;
    if (!strcmp(line, "fail"))
        set_why(out, "worker %d opened %d of %d connections: %s", i, w->value, w->count,
                reason ? reason + 1 : "?");
    else if (!strcmp(line, "lost"))
        set_why(out, "worker %d: %d connection(s) dropped while idle: %s", i, w->value,
                reason ? reason + 1 : "?");
}

/* Reads the workers' lines until every worker's last line starts with one of
 * the words in `want` (space separated; NULL: wait until the deadline), a
 * worker fails, or the deadline passes. 0 when all answered as wanted. */
static int collect(wproc *ws, int nw, const char *want, uint64_t deadline_ns,
                   bench_idle_result *out)
{
    for (int i = 0; i < nw; i++)
        ws[i].last[0] = 0;
    for (;;) {
        int pending = 0;
        for (int i = 0; i < nw && want; i++) {
            char word[20];
            snprintf(word, sizeof word, " %s ", ws[i].last);
            char wanted[64];
            snprintf(wanted, sizeof wanted, " %s ", want);
            if (!ws[i].last[0] || !strstr(wanted, word))
                pending++;
        }
        if (out->why[0])
            return -1;
        if (want && !pending)
            return 0;
        uint64_t now = bench_now_ns();
        if (now >= deadline_ns) {
            if (!want)
                return 0;
            set_why(out, "timeout: %d of %d worker(s) did not answer '%s'", pending, nw, want);
            return -1;
        }
        struct pollfd pf[MAX_WORKERS];
        for (int i = 0; i < nw; i++)   /* a closed one (-1) is skipped by poll */
            pf[i] = (struct pollfd){.fd = ws[i].status_fd, .events = POLLIN};
        uint64_t left_ms = (deadline_ns - now + 999999) / 1000000;
        int r = poll(pf, (nfds_t)nw, left_ms > 1000 ? 1000 : (int)left_ms);
        if (r < 0 && errno != EINTR) {
            set_why(out, "poll: %s", strerror(errno));
            return -1;
        }
        for (int i = 0; i < nw && r > 0; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            wproc *w = &ws[i];
            ssize_t k = read(w->status_fd, w->buf + w->len, sizeof w->buf - 1 - w->len);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                /* End of file: expected right after "done", an error otherwise. */
                close(w->status_fd);
                w->status_fd = -1;
                if (strcmp(w->last, "done")) {
                    set_why(out, "worker %d exited unexpectedly", i);
                    return -1;
                }
                continue;
            }
            w->len += (size_t)k;
            char *nl;
            while ((nl = memchr(w->buf, '\n', w->len))) {
                *nl = 0;
                on_line(w, i, w->buf, out);
                size_t used = (size_t)(nl - w->buf) + 1;
                memmove(w->buf, nl + 1, w->len - used);
                w->len -= used;
            }
            if (w->len == sizeof w->buf - 1)
                w->len = 0;
        }
    }
}

/* Asks every worker to close its connections and exit; reaps them all. */
static void stop_workers(wproc *ws, int nw, bench_idle_result *out)
{
    tell(ws, nw, "quit\n");
    bench_idle_result scratch = {0};
    collect(ws, nw, "done", bench_now_ns() + 10000000000ull, out->why[0] ? &scratch : out);
    for (int i = 0; i < nw; i++) {
        if (ws[i].cmd_fd >= 0)
            close(ws[i].cmd_fd);
        if (ws[i].status_fd >= 0)
            close(ws[i].status_fd);
        /* "done" is its last word before _exit; any other worker is stuck. */
        if (strcmp(ws[i].last, "done"))
            kill(ws[i].pid, SIGKILL);
        int st;
        while (waitpid(ws[i].pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
}

static int start_workers(const bench_net *net, wproc *ws, int nw, int n, bench_idle_result *out)
{
    fflush(NULL);
    int first = 0;
    for (int i = 0; i < nw; i++) {
        int cmd[2], st[2];
        ws[i].count = n / nw + (i < n % nw ? 1 : 0);
        if (pipe2(cmd, O_CLOEXEC) < 0) {
            set_why(out, "pipe: %s", strerror(errno));
            return i;
        }
        if (pipe2(st, O_CLOEXEC) < 0) {
            set_why(out, "pipe: %s", strerror(errno));
            close(cmd[0]);
            close(cmd[1]);
            return i;
        }
        pid_t pid = fork();
        if (pid < 0) {
            set_why(out, "fork: %s", strerror(errno));
            close(cmd[0]), close(cmd[1]), close(st[0]), close(st[1]);
            return i;
        }
        if (pid == 0) {
            for (int j = 0; j < i; j++) {   /* the other workers' pipes are not ours */
                close(ws[j].cmd_fd);
                close(ws[j].status_fd);
            }
            close(cmd[1]);
            close(st[0]);
            worker_main(net, first, ws[i].count, cmd[0], st[1]);
        }
        close(cmd[0]);
        close(st[1]);
        ws[i] = (wproc){.pid = pid, .cmd_fd = cmd[1], .status_fd = st[0], .count = ws[i].count};
        first += ws[i].count;
    }
    return nw;
}

/* Descriptor limits of this process and of the broker, checked before forking. */
static int check_limits(const bench_idle_spec *sp, int nw, bench_idle_result *out)
{
    long mine = bench_raise_nofile();
    int share = sp->n / nw + 1;
    if (mine >= 0 && share + FD_MARGIN > mine) {
        set_why(out, "%d connections per worker exceed RLIMIT_NOFILE (%ld): use more "
                "--workers (or raise the hard limit)", share, mine);
        return -1;
    }
    long theirs = bench_proc_nofile(sp->broker_pid);
    if (theirs >= 0 && sp->n + 16 > theirs) {
        set_why(out, "the broker (pid %d) may open only %ld descriptors, fewer than %d "
                "connections: raise its limit (ulimit -n) before starting it",
                sp->broker_pid, theirs, sp->n);
        return -1;
    }
    return 0;
}

int bench_idle_procs(const bench_net *net, const bench_idle_spec *sp, bench_idle_result *out)
{
    memset(out, 0, sizeof *out);
    out->rss_before_kb = out->rss_connected_kb = out->rss_after_kb = -1;
    out->anon_before_kb = out->anon_connected_kb = -1;
    if (sp->n <= 0 || sp->broker_pid <= 0) {
        set_why(out, "idle needs a number of connections and the broker's pid");
        return -1;
    }
    int nw = sp->workers > 0 ? sp->workers : (sp->n + PER_WORKER_DEFAULT - 1) / PER_WORKER_DEFAULT;
    if (nw > sp->n)
        nw = sp->n;
    if (nw > MAX_WORKERS) {
        set_why(out, "at most %d workers", MAX_WORKERS);
        return -1;
    }
    out->workers = nw;
    if (check_limits(sp, nw, out) < 0)
        return -1;

    /* Warm-up: one connection of the same kind, made and closed here. */
    bench_hist h;
    bench_hist_init(&h);
    char why[256];
    int wf = bench_connect_seq(net, 1, &h, why, sizeof why);
    bench_hist_free(&h);
    if (wf) {
        set_why(out, "warm-up connection failed: %s", why);
        return -1;
    }
    out->rss_before_kb = bench_rss_kb(sp->broker_pid);
    out->anon_before_kb = bench_status_kb(sp->broker_pid, "RssAnon:");
    if (out->rss_before_kb < 0) {
        set_why(out, "cannot read /proc/%d/status", sp->broker_pid);
        return -1;
    }

    wproc *ws = calloc((size_t)nw, sizeof *ws);
    if (!ws) {
        set_why(out, "out of memory");
        return -1;
    }
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
    uint64_t t0 = bench_now_ns();
    int started = start_workers(net, ws, nw, sp->n, out);
    /* Only a safety net: a worker reports a stalled connection phase itself. */
    uint64_t connect_dl = t0 + (uint64_t)(net->connect_timeout_s * 1e9) +
                          (uint64_t)(sp->n / nw + 1) * 100000000ull + 5000000000ull;
    if (started == nw && collect(ws, nw, "ready fail", connect_dl, out) == 0) {
        out->connect_s = (double)(bench_now_ns() - t0) / 1e9;
        for (int i = 0; i < nw; i++)
            out->connected += ws[i].value;
        /* Settle (part of the measurement, see the top), then read the memory. */
        if (collect(ws, nw, NULL, bench_now_ns() + (uint64_t)(sp->settle_s * 1e9), out) == 0) {
            out->rss_connected_kb = bench_rss_kb(sp->broker_pid);
            out->anon_connected_kb = bench_status_kb(sp->broker_pid, "RssAnon:");
            tell(ws, nw, "check\n");
            if (collect(ws, nw, "alive", bench_now_ns() + 10000000000ull, out) == 0)
                for (int i = 0; i < nw; i++)
                    out->alive += ws[i].value;
        }
    }
    stop_workers(ws, started, out);
    signal(SIGPIPE, old_pipe);
    free(ws);
    out->rss_after_kb = bench_rss_kb(sp->broker_pid);
    if (out->rss_connected_kb >= 0) {
        out->bytes_per_conn = (double)(out->rss_connected_kb - out->rss_before_kb) * 1024.0 / sp->n;
        if (out->anon_connected_kb >= 0 && out->anon_before_kb >= 0)
            out->anon_bytes_per_conn =
                (double)(out->anon_connected_kb - out->anon_before_kb) * 1024.0 / sp->n;
    }
    if (!out->why[0] && out->alive != sp->n)
        set_why(out, "%d of %d connections were open when the memory was read", out->alive,
                sp->n);
    if (!out->why[0] && out->rss_after_kb < 0)
        set_why(out, "the broker (pid %d) is gone", sp->broker_pid);
    out->ok = !out->why[0];
    return out->ok ? 0 : -1;
}
