/*
 * tm_test.h — the smallest unit-test harness that does the job: each test is a
 * function, TM_CHECK records a failure with file and line and goes on, and
 * TM_TEST_MAIN runs the listed tests and prints "N passed, N failed".
 */
#ifndef TM_TEST_H
#define TM_TEST_H
#include <stdio.h>
#include <string.h>

static int tm_test_failures_;
static int tm_test_checks_;

#define TM_CHECK(cond)                                                          \
    do {                                                                        \
        tm_test_checks_++;                                                      \
        if (!(cond)) {                                                          \
            tm_test_failures_++;                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                       \
    } while (0)

#define TM_CHECK_EQ(a, b)                                                       \
    do {                                                                        \
        long long va_ = (long long)(a), vb_ = (long long)(b);                   \
        tm_test_checks_++;                                                      \
        if (va_ != vb_) {                                                       \
            tm_test_failures_++;                                                \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, \
                    __LINE__, #a, #b, va_, vb_);                                \
        }                                                                       \
    } while (0)

#define TM_CHECK_MEM(a, b, n) TM_CHECK(memcmp((a), (b), (n)) == 0)

typedef struct { const char *name; void (*fn)(void); } tm_test_case;

#define TM_TEST_MAIN(...)                                                       \
    int main(void) {                                                            \
        static const tm_test_case cases_[] = {__VA_ARGS__};                     \
        int passed = 0, failed = 0;                                             \
        for (size_t i = 0; i < sizeof cases_ / sizeof cases_[0]; i++) {         \
            int before = tm_test_failures_;                                     \
            cases_[i].fn();                                                     \
            if (tm_test_failures_ == before) passed++;                          \
            else { failed++; fprintf(stderr, "FAIL %s\n", cases_[i].name); }   \
        }                                                                       \
        printf("%d passed, %d failed\n", passed, failed);                       \
        return failed ? 1 : 0;                                                  \
    }
#define TM_CASE(fn) { #fn, fn }
#endif
