/*
 * test_store.c — the durable store's file half (src/broker/store.c): frames
 * committed are recovered in order; a rewrite from a snapshot in several
 * pieces becomes the store only when it is complete; a rewrite that fails
 * leaves the store exactly as it was, and frames committed after it are
 * recovered (each file has its own key and chain: going on with the new
 * file's after a failed rewrite would make them unreadable).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/seal.h"
#include "broker/store.h"
#include "tm_test.h"

static char dir[] = "/tmp/tmqtt-test-store-XXXXXX";
static char path[256], keypath[256];
static tm_seal *seal;

/* What recovery applied: the frames' contents, joined with '|'. */
static char seen[4096];
static int apply(void *ud, const uint8_t *batch, size_t len, char *why, size_t cap)
{
    (void)ud, (void)why, (void)cap;
    size_t n = strlen(seen);
    snprintf(seen + n, sizeof seen - n, "%s%.*s", n ? "|" : "", (int)len, (const char *)batch);
    return 0;
}

static void note(void *ud, int warn, const char *msg)
{
    (void)ud;
    fprintf(stderr, "store note (%s): %s\n", warn ? "warn" : "info", msg);
}

static tm_store *open_store(tm_store_report *rep)
{
    char err[300] = "";
    seen[0] = 0;
    tm_store *st = tm_store_open(path, seal, apply, note, NULL, rep, err, sizeof err);
    if (!st)
        fprintf(stderr, "open: %s\n", err);
    TM_CHECK(st != NULL);
    return st;
}

static void commit(tm_store *st, const char *s)
{
    char err[300] = "";
    TM_CHECK_EQ(tm_store_commit(st, (const uint8_t *)s, strlen(s), true, err, sizeof err), 0);
}

static void add(tm_store *st, const char *s)
{
    char err[300] = "";
    TM_CHECK_EQ(tm_store_rewrite_add(st, (const uint8_t *)s, strlen(s), err, sizeof err), 0);
}

static void init(void)
{
    TM_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/tmqtt.db", dir);
    snprintf(keypath, sizeof keypath, "keyfile %s/tmqtt.db.key", dir);
    char err[300] = "";
    seal = tm_seal_open(keypath, err, sizeof err);
    TM_CHECK(seal != NULL);
}

static void test_commits_are_recovered_in_order(void)
{
    tm_store_report rep;
    tm_store *st = open_store(&rep);
    TM_CHECK(rep.created);
    commit(st, "a");
    commit(st, "b");
    tm_store_close(st);
    st = open_store(&rep);
    TM_CHECK_EQ(rep.frames, 2);
    TM_CHECK(!rep.damaged);
    TM_CHECK(strcmp(seen, "a|b") == 0);
    commit(st, "c");
    tm_store_close(st);
    st = open_store(&rep);
    TM_CHECK(strcmp(seen, "a|b|c") == 0);
    tm_store_close(st);
}

static void test_rewrite_in_pieces(void)
{
    tm_store_report rep;
    tm_store *st = open_store(&rep);
    char err[300] = "";
    TM_CHECK_EQ(tm_store_rewrite_begin(st, err, sizeof err), 0);
    add(st, "s1");
    add(st, "s2");
    /* no commit while the new file is being written */
    TM_CHECK_EQ(tm_store_commit(st, (const uint8_t *)"x", 1, true, err, sizeof err), -1);
    add(st, "s3");
    TM_CHECK_EQ(tm_store_rewrite_commit(st, err, sizeof err), 0);
    commit(st, "after");
    tm_store_close(st);
    st = open_store(&rep);
    TM_CHECK(!rep.damaged);
    TM_CHECK(strcmp(seen, "s1|s2|s3|after") == 0);
    tm_store_close(st);
}

/* A crash in the middle of a rewrite: the old file is the store. */
static void test_unfinished_rewrite_is_not_the_store(void)
{
    tm_store_report rep;
    tm_store *st = open_store(&rep);
    char err[300] = "";
    TM_CHECK_EQ(tm_store_rewrite_begin(st, err, sizeof err), 0);
    add(st, "never");
    tm_store_close(st);   /* as a crash would leave it, less the .new file */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    struct stat sb;
    TM_CHECK(stat(tmp, &sb) != 0);
    st = open_store(&rep);
    TM_CHECK(strcmp(seen, "s1|s2|s3|after") == 0);
    tm_store_close(st);
}

static void test_failed_rewrite_leaves_the_store_as_it_was(void)
{
    tm_store_report rep;
    tm_store *st = open_store(&rep);
    char err[300] = "";
    /* fails once the new file has its own header, key and chain: a piece
     * too large for a frame (refused before anything is read from it) */
    TM_CHECK_EQ(tm_store_rewrite_begin(st, err, sizeof err), 0);
    add(st, "piece");
    static const uint8_t one = 0;
    TM_CHECK_EQ(tm_store_rewrite_add(st, &one, (size_t)1 << 31, err, sizeof err), -1);
    TM_CHECK(strstr(err, "too large") != NULL);
    tm_store_rewrite_abort(st);   /* harmless when already abandoned */
    /* the old file goes on, with its own key and chain */
    commit(st, "more");
    /* and the same after a rewrite that cannot even start */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    TM_CHECK_EQ(mkdir(tmp, 0700), 0);
    TM_CHECK_EQ(tm_store_rewrite_begin(st, err, sizeof err), -1);
    TM_CHECK_EQ(rmdir(tmp), 0);
    commit(st, "again");
    tm_store_close(st);
    st = open_store(&rep);
    TM_CHECK(!rep.damaged);
    TM_CHECK(strcmp(seen, "s1|s2|s3|after|more|again") == 0);
    tm_store_close(st);
}

static void done(void)
{
    tm_seal_close(seal);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    TM_CHECK_EQ(system(cmd), 0);
}

TM_TEST_MAIN(TM_CASE(init), TM_CASE(test_commits_are_recovered_in_order),
             TM_CASE(test_rewrite_in_pieces), TM_CASE(test_unfinished_rewrite_is_not_the_store),
             TM_CASE(test_failed_rewrite_leaves_the_store_as_it_was), TM_CASE(done))
