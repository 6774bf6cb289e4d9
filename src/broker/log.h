/*
 * log.h — the broker's log: one line per event, with a timestamp and a level,
 * to stderr/stdout/a file as `log_dest` says. Messages say what happened and
 * to whom ("client 'x' (127.0.0.1:5000): ...") so a person can act on them.
 */
#ifndef TM_LOG_H
#define TM_LOG_H

#include <stdio.h>

enum tm_log_level { TM_LOG_ERR = 0, TM_LOG_WARN, TM_LOG_NOTICE, TM_LOG_INFO, TM_LOG_DEBUG };

void tm_log_set_level(int level);
int tm_log_level(void);
void tm_log_set_file(FILE *f);
void tm_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tm_log_enabled(lvl) ((lvl) <= tm_log_level())

#endif
