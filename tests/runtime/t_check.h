/*
 * t_check.h — the check helpers of the runtime's test modules (t_wasi.c, t_host.c):
 * each check prints "ok <what>" or "FAIL <what>: <condition> (errno ...) at line N";
 * done() prints PASSED or FAILED, which tests/runtime/driver.py looks for, and gives
 * the exit status. One module per program, so the counter is a static.
 */
#ifndef TM_TESTS_RUNTIME_T_CHECK_H
#define TM_TESTS_RUNTIME_T_CHECK_H
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define OK(what) printf("ok %s\n", what)
#define CHECK(cond, what)                                                                     \
    do {                                                                                      \
        if (cond) OK(what);                                                                   \
        else {                                                                                \
            printf("FAIL %s: %s (errno %d %s) at line %d\n", what, #cond, errno, strerror(errno), \
                   __LINE__);                                                                 \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

static inline int done(void)
{
    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}

#endif
