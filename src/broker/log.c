/*
 * log.c — see log.h. Line-buffered so that tests reading the log see lines
 * as they happen.
 */
#include "broker/log.h"

#include <stdarg.h>
#include <time.h>

static int g_level = TM_LOG_NOTICE;
static FILE *g_file;

void tm_log_set_level(int level) { g_level = level; }
int tm_log_level(void) { return g_level; }
void tm_log_set_file(FILE *f) { g_file = f; }

void tm_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "notice", "info", "debug"};
    if (level > g_level)
        return;
    FILE *f = g_file ? g_file : stderr;
    time_t now = time(NULL);
    struct tm tmv;
    char ts[32];
    gmtime_r(&now, &tmv);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    fprintf(f, "%s %s: ", ts, names[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}
