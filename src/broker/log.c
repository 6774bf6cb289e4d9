/*
 * log.c — see log.h. Streams are flushed after every line so that tests and
 * operators reading the log see lines as they happen.
 *
 * Line format: "TIMESTAMP: TYPE: message" (without "TIMESTAMP: " when
 * log_timestamp is false). The timestamp is Mosquitto's: seconds since the
 * epoch, or strftime(log_timestamp_format) in local time. Syslog gets the
 * message alone (syslog stamps its own lines) at the matching priority.
 */
#include "broker/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#ifndef __wasi__
#include <syslog.h>
#endif

static uint32_t g_types = TM_LOG_DEFAULT_TYPES;
static uint32_t g_dest = TM_LOGD_STDERR;
static FILE *g_file;
static bool g_syslog_open;
static bool g_ts = true;
static char g_ts_fmt[128];
static tm_log_sink_fn g_sink;
static void *g_sink_ud;
static bool g_in_sink;

static const char *const type_names[TM_LOG_NTYPES] = {
    "error", "warning", "notice", "info", "debug", "subscribe", "unsubscribe", "websockets",
};

void tm_log_set_level(int level)
{
    g_types = level < 0 ? 0 : (1u << (level + 1)) - 1;
}

void tm_log_set_types(uint32_t mask) { g_types = mask & TM_LOG_ALL_TYPES; }
uint32_t tm_log_types(void) { return g_types; }

void tm_log_set_dest(uint32_t dest, FILE *file, int facility)
{
    g_dest = dest;
    g_file = file;
#ifndef __wasi__
    if ((dest & TM_LOGD_SYSLOG) && !g_syslog_open) {
        openlog("tmqtt", LOG_PID | LOG_NDELAY, facility);
        g_syslog_open = true;
    }
#else
    (void)facility;
#endif
}

void tm_log_set_file(FILE *f)
{
    g_file = f;
    g_dest |= TM_LOGD_FILE;
}

void tm_log_set_timestamp(bool on, const char *fmt)
{
    g_ts = on;
    g_ts_fmt[0] = 0;
    if (fmt)
        snprintf(g_ts_fmt, sizeof g_ts_fmt, "%s", fmt);
}

void tm_log_set_sink(tm_log_sink_fn fn, void *ud)
{
    g_sink = fn;
    g_sink_ud = ud;
}

int tm_log_reopen(const char *path)
{
    if (!path || !g_file)
        return 0;
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    if (g_file != stdout && g_file != stderr)
        fclose(g_file);
    g_file = f;
    return 0;
}

void tm_log_close(void)
{
    if (g_file && g_file != stdout && g_file != stderr)
        fclose(g_file);
    g_file = NULL;
    g_dest &= ~(uint32_t)TM_LOGD_FILE;
#ifndef __wasi__
    if (g_syslog_open)
        closelog();
#endif
    g_syslog_open = false;
    g_sink = NULL;
}

static void stamp(char *ts, size_t cap)
{
    time_t now = time(NULL);
    ts[0] = 0;
    if (!g_ts)
        return;
    if (!g_ts_fmt[0]) {
        snprintf(ts, cap, "%lld: ", (long long)now);
        return;
    }
    struct tm tmv;
    localtime_r(&now, &tmv);
    size_t n = strftime(ts, cap - 2, g_ts_fmt, &tmv);
    memcpy(ts + n, ": ", 3);
}

static void put(FILE *f, const char *ts, int type, const char *msg)
{
    fprintf(f, "%s%s: %s\n", ts, type_names[type], msg);
    fflush(f);
}

#ifndef __wasi__
static int syslog_priority(int type)
{
    switch (type) {
    case TM_LOG_ERR: return LOG_ERR;
    case TM_LOG_WARN: return LOG_WARNING;
    case TM_LOG_NOTICE: return LOG_NOTICE;
    case TM_LOG_DEBUG: return LOG_DEBUG;
    default: return LOG_INFO;
    }
}
#endif

void tm_log(int type, const char *fmt, ...)
{
    if (type < 0 || type >= TM_LOG_NTYPES || !(g_types & TM_LOG_BIT(type)) || !g_dest)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char ts[160];
    stamp(ts, sizeof ts);
    if (g_dest & TM_LOGD_STDERR)
        put(stderr, ts, type, msg);
    if (g_dest & TM_LOGD_STDOUT)
        put(stdout, ts, type, msg);
    if ((g_dest & TM_LOGD_FILE) && g_file)
        put(g_file, ts, type, msg);
#ifndef __wasi__
    if (g_dest & TM_LOGD_SYSLOG)
        syslog(syslog_priority(type), "%s", msg);
#endif
    if ((g_dest & TM_LOGD_TOPIC) && g_sink && !g_in_sink && type != TM_LOG_DEBUG) {
        g_in_sink = true;
        g_sink(g_sink_ud, type, msg);
        g_in_sink = false;
    }
}
