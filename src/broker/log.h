/*
 * log.h — the broker's log: one line per event, with a timestamp and a type,
 * to the destinations `log_dest` names (stderr, stdout, a file, syslog, and
 * $SYS topics through a sink the service registers). Messages say what
 * happened and to whom ("client 'x' (127.0.0.1:5000): ...") so a person can
 * act on them.
 *
 * Types follow Mosquitto's `log_type`: each is a bit of a mask, so
 * `log_type error` + `log_type subscribe` logs exactly those two.
 *
 * State is process-wide (one broker per process logs): set up once by
 * main.c from the configuration, before the service starts.
 */
#ifndef TM_LOG_H
#define TM_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum tm_log_level {
    TM_LOG_ERR = 0,
    TM_LOG_WARN,
    TM_LOG_NOTICE,
    TM_LOG_INFO,
    TM_LOG_DEBUG,
    TM_LOG_SUBSCRIBE,      /* log_type subscribe: one line per SUBSCRIBE filter */
    TM_LOG_UNSUBSCRIBE,    /* log_type unsubscribe */
    TM_LOG_WEBSOCKETS,     /* log_type websockets */
    TM_LOG_NTYPES
};

#define TM_LOG_BIT(t) (1u << (t))
/* Mosquitto's default: error, warning, notice and information. */
#define TM_LOG_DEFAULT_TYPES                                                              \
    (TM_LOG_BIT(TM_LOG_ERR) | TM_LOG_BIT(TM_LOG_WARN) | TM_LOG_BIT(TM_LOG_NOTICE) |       \
     TM_LOG_BIT(TM_LOG_INFO))
#define TM_LOG_ALL_TYPES ((1u << TM_LOG_NTYPES) - 1)

/* Destinations (log_dest), a mask. */
enum {
    TM_LOGD_STDERR = 1,
    TM_LOGD_STDOUT = 2,
    TM_LOGD_FILE = 4,
    TM_LOGD_SYSLOG = 8,
    TM_LOGD_TOPIC = 16,
};

/* A destination outside this module ($SYS topics): called with the type and
 * the message without timestamp. Never called for debug lines, nor while it
 * is running (a line logged by the sink itself goes to the other
 * destinations only). */
typedef void (*tm_log_sink_fn)(void *ud, int type, const char *msg);

/* Everything through level: ERR..level (compatibility: -1 logs nothing). */
void tm_log_set_level(int level);
void tm_log_set_types(uint32_t mask);
uint32_t tm_log_types(void);
/* Destinations: mask of TM_LOGD_*; file for TM_LOGD_FILE (kept, closed by
 * tm_log_close); facility for syslog (LOG_DAEMON, LOG_LOCAL0..7). */
void tm_log_set_dest(uint32_t dest, FILE *file, int syslog_facility);
void tm_log_set_file(FILE *f);                       /* adds TM_LOGD_FILE */
/* Timestamps: on/off, and a strftime(3) format (NULL: seconds since the
 * epoch, as Mosquitto). */
void tm_log_set_timestamp(bool on, const char *strftime_format);
void tm_log_set_sink(tm_log_sink_fn fn, void *ud);
/* SIGHUP: reopen the log file at `path` (logrotate); the old stream stays on
 * failure. 0 or -1. */
int tm_log_reopen(const char *path);
void tm_log_close(void);
void tm_log(int type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tm_log_enabled(t) ((tm_log_types() & TM_LOG_BIT(t)) != 0)

#endif
