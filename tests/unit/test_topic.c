/*
 * test_topic.c — topic names, topic filters, matching (the examples of MQTT 5
 * section 4.7 and more), and shared-subscription splitting (4.8.2).
 */
#include <string.h>

#include "mqtt/mqtt.h"
#include "tm_test.h"

#define U8(s) (const uint8_t *)(s), strlen(s)

static void test_name_valid(void)
{
    TM_CHECK(tm_topic_name_valid(U8("a")));
    TM_CHECK(tm_topic_name_valid(U8("/")));
    TM_CHECK(tm_topic_name_valid(U8("sport/tennis/player1")));
    TM_CHECK(tm_topic_name_valid(U8("$SYS/broker/uptime")));
    TM_CHECK(tm_topic_name_valid(U8(" ")));
    TM_CHECK(!tm_topic_name_valid(U8("")));
    TM_CHECK(!tm_topic_name_valid(U8("a/+")));
    TM_CHECK(!tm_topic_name_valid(U8("#")));
    TM_CHECK(!tm_topic_name_valid(U8("a#")));
}

static void test_filter_valid(void)
{
    static const struct { const char *f; int ok; } t[] = {
        { "#", 1 }, { "+", 1 }, { "/", 1 }, { "sport/#", 1 }, { "sport/tennis/#", 1 },
        { "+/tennis/#", 1 }, { "sport/+/player1", 1 }, { "+/+", 1 }, { "/+", 1 },
        { "//", 1 }, { "$SYS/#", 1 }, { "a//#", 1 }, { "+/#", 1 },
        { "", 0 }, { "sport/tennis#", 0 }, { "sport/tennis/#/ranking", 0 },
        { "sport+", 0 }, { "sp+rt/x", 0 }, { "##", 0 }, { "#/", 0 }, { "++", 0 },
        { "a/#b", 0 }, { "a/b#", 0 }, { "+a", 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int got = tm_topic_filter_valid(U8(t[i].f));
        if (got != t[i].ok) fprintf(stderr, "filter \"%s\"\n", t[i].f);
        TM_CHECK_EQ(got, t[i].ok);
    }
}

static void test_match(void)
{
    static const struct { const char *f, *n; int m; } t[] = {
        /* 4.7.1.2 */
        { "sport/tennis/player1/#", "sport/tennis/player1", 1 },
        { "sport/tennis/player1/#", "sport/tennis/player1/ranking", 1 },
        { "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1 },
        { "sport/#", "sport", 1 },
        { "#", "sport/tennis", 1 },
        { "#", "/", 1 },
        { "#", "a", 1 },
        /* 4.7.1.3 */
        { "sport/tennis/+", "sport/tennis/player1", 1 },
        { "sport/tennis/+", "sport/tennis/player2", 1 },
        { "sport/tennis/+", "sport/tennis/player1/ranking", 0 },
        { "sport/+", "sport", 0 },
        { "sport/+", "sport/", 1 },
        { "+/+", "/finance", 1 },
        { "/+", "/finance", 1 },
        { "+", "/finance", 0 },
        { "+/tennis/#", "sport/tennis/player1", 1 },
        { "+/tennis/#", "sport/tennis", 1 },
        { "+/tennis/#", "sport/golf", 0 },
        { "sport/+/player1", "sport/tennis/player1", 1 },
        { "sport/+/player1", "sport/tennis/player2", 0 },
        /* 4.7.2: '$' topics */
        { "#", "$SYS/broker", 0 },
        { "+/monitor/Clients", "$SYS/monitor/Clients", 0 },
        { "$SYS/#", "$SYS/monitor/Clients", 1 },
        { "$SYS/monitor/+", "$SYS/monitor/Clients", 1 },
        { "+", "$SYS", 0 },
        { "a/$b", "a/$b", 1 },
        { "a/+", "a/$b", 1 },
        /* exact and level edge cases */
        { "a/b", "a/b", 1 },
        { "a/b", "a/bc", 0 },
        { "a/bc", "a/b", 0 },
        { "a/b", "a", 0 },
        { "a", "a/b", 0 },
        { "a/b/", "a/b", 0 },
        { "a/b", "a/b/", 0 },
        { "a/b/#", "a/b/", 1 },
        { "a//b", "a//b", 1 },
        { "a/+/b", "a//b", 1 },
        { "+", "a", 1 },
        { "+", "", 0 },
        { "/", "/", 1 },
        { "+/+", "/", 1 },
        { "/#", "/", 1 },
        { "/#", "a", 0 },
        { "a/#", "b", 0 },
        { "A", "a", 0 },
        { "\xc3\xa9/+", "\xc3\xa9/x", 1 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int got = tm_topic_match((const uint8_t *)t[i].f, strlen(t[i].f),
                                 (const uint8_t *)t[i].n, strlen(t[i].n));
        if (got != t[i].m) fprintf(stderr, "filter \"%s\" name \"%s\"\n", t[i].f, t[i].n);
        TM_CHECK_EQ(got, t[i].m);
    }
}

static void test_shared(void)
{
    static const struct { const char *full, *group, *filter; int shared, bad; } t[] = {
        { "$share/g/a/b", "g", "a/b", 1, 0 },
        { "$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", 1, 0 },
        { "$share/consumer2/sport/tennis/+", "consumer2", "sport/tennis/+", 1, 0 },
        { "$share/g/#", "g", "#", 1, 0 },
        { "$share/g//", "g", "/", 1, 0 },
        { "$share/g/$SYS/x", "g", "$SYS/x", 1, 0 },
        { "a/b", NULL, NULL, 0, 0 },
        { "$SYS/#", NULL, NULL, 0, 0 },
        { "$share", NULL, NULL, 0, 0 },
        { "$sharex/g/a", NULL, NULL, 0, 0 },
        { "$Share/g/a", NULL, NULL, 0, 0 },
        { "$share/", NULL, NULL, 0, 1 },
        { "$share/g", NULL, NULL, 0, 1 },
        { "$share/g/", NULL, NULL, 0, 1 },
        { "$share//a", NULL, NULL, 0, 1 },
        { "$share/+/a", NULL, NULL, 0, 1 },
        { "$share/#/a", NULL, NULL, 0, 1 },
        { "$share/g+/a", NULL, NULL, 0, 1 },
        { "$share/g/a/#/b", NULL, NULL, 0, 1 },
        { "$share/g/a+", NULL, NULL, 0, 1 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        tm_str full = { (const uint8_t *)t[i].full, (uint32_t)strlen(t[i].full) };
        tm_str g = { NULL, 0 }, f = { NULL, 0 };
        bool bad = !t[i].bad;
        bool sh = tm_topic_split_shared(full, &g, &f, &bad);
        if (sh != t[i].shared || bad != t[i].bad) fprintf(stderr, "shared \"%s\"\n", t[i].full);
        TM_CHECK_EQ(sh, t[i].shared);
        TM_CHECK_EQ(bad, t[i].bad);
        if (sh) {
            TM_CHECK(g.len == strlen(t[i].group) && memcmp(g.p, t[i].group, g.len) == 0);
            TM_CHECK(f.len == strlen(t[i].filter) && memcmp(f.p, t[i].filter, f.len) == 0);
        }
    }
    tm_str full = { (const uint8_t *)"$share/g/x", 10 };
    TM_CHECK(tm_topic_split_shared(full, NULL, NULL, NULL));
    tm_str none = { NULL, 0 };
    TM_CHECK(!tm_topic_split_shared(none, NULL, NULL, NULL));
}

TM_TEST_MAIN(TM_CASE(test_name_valid), TM_CASE(test_filter_valid), TM_CASE(test_match),
             TM_CASE(test_shared))
