/*
 * test_journal.c — persistence's engine half (src/broker/journal.c): every
 * change to durable state becomes a record, and records become state again.
 *
 * The property tested: the state rebuilt from the batches an engine wrote is
 * the durable state of that engine (sessions with an expiry, their
 * subscriptions, queued and in-flight messages with their packet ids,
 * incoming QoS 2 ids, delayed wills, retained messages) — compared as the
 * sorted dump tmqtt-db prints; and a snapshot restores to the same state.
 * Plus what must NOT be durable (clean sessions, QoS 0) and hostile
 * batches (never a crash, a reason instead).
 */
#include "broker_harness.h"

static void publish_retained(tc *t, const char *topic, const char *payload, uint8_t qos,
                             uint16_t pid)
{
    tm_publish pb;
    memset(&pb, 0, sizeof pb);
    pb.topic = S(topic);
    pb.payload = S(payload);
    pb.qos = qos;
    pb.retain = true;
    pb.packet_id = pid;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_publish(&b, t->v, &pb);
    send_bytes(t, &b);
    tm_buf_free(&b);
}

static void start_journaled(void)
{
    start();
    tm_broker_journal_enable(B, true);
}

static char *dump_of(tm_broker *b)
{
    tm_buf out;
    tm_buf_init(&out);
    tm_broker_dump(b, &out);
    tm_buf_u8(&out, 0);
    return (char *)out.data;
}

/* A fresh broker restored from batches[0..n) (or from one snapshot buffer). */
static tm_broker *restored(const tm_buf *bufs, int n)
{
    char err[256];
    tm_broker *r = tm_broker_new(&cfg, now, err, sizeof err);
    TM_CHECK(r != NULL);
    for (int i = 0; i < n; i++) {
        char why[256] = "";
        int rc = tm_broker_restore(r, bufs[i].data, bufs[i].len, now, why, sizeof why);
        if (rc != 0)
            fprintf(stderr, "batch %d: %s\n", i, why);
        TM_CHECK_EQ(rc, 0);
    }
    tm_broker_restore_done(r, now);
    return r;
}

static void check_same(tm_broker *a, tm_broker *b)
{
    char *da = dump_of(a), *db = dump_of(b);
    if (strcmp(da, db)) {
        fprintf(stderr, "---- original\n%s---- restored\n%s", da, db);
    }
    TM_CHECK(strcmp(da, db) == 0);
    free(da);
    free(db);
}

/* A busy broker: persistent and clean sessions, every QoS, acknowledged and
 * not, retained set and cleared, a delayed will, an incoming QoS 2 in the
 * middle of its flow, an unsubscribe, an ended session. */
static void scenario(void)
{
    conn_opts per = {.clean = false, .expiry = 600};
    tc *sub = connected(TM_V5, "sub", &per);
    subscribe(sub, "t/#", 2);
    subscribe(sub, "other/#", 1);
    tc *clean = connected(TM_V5, "clean", NULL);          /* not durable */
    subscribe(clean, "t/#", 1);
    tc *pub = connected(TM_V5, "pub", &per);
    publish(pub, "t/0", "qos0", 0, 0);                     /* not durable */
    publish(pub, "t/1", "one", 1, 1);
    publish(pub, "t/2", "two", 2, 2);                      /* PUBREC, no PUBREL yet */
    publish_retained(pub, "r/x", "retained", 1, 3);
    tm_publish rp;
    memset(&rp, 0, sizeof rp);
    /* sub: QoS 0 "qos0", then "one" (acked), "two" (PUBREC'd), all in order */
    char buf[64];
    TM_CHECK(got_publish(sub, buf, sizeof buf, NULL));       /* qos0 */
    int a = got_publish(sub, buf, sizeof buf, &rp) ? rp.packet_id : 0;
    ack(sub, TM_PUBACK, (uint16_t)a);
    int b = got_publish(sub, buf, sizeof buf, &rp) ? rp.packet_id : 0;
    ack(sub, TM_PUBREC, (uint16_t)b);                      /* now waiting for PUBCOMP */
    pkt rel;
    TM_CHECK_EQ(next_pkt(sub, &rel), TM_PUBREL);
    publish(pub, "t/3", "three", 1, 4);                    /* in flight, never acked */
    TM_CHECK(expect_publish(sub, "three"));
    subscribe(sub, "gone/#", 1);
    tm_buf u;
    tm_buf_init(&u);
    tm_str f = S("gone/#");
    tm_encode_unsubscribe(&u, TM_V5, 9, NULL, &f, 1);
    send_bytes(sub, &u);
    tm_buf_free(&u);
    /* an offline persistent session collects a queue */
    tc *off = connected(TM_V311, "offline", &(conn_opts){.clean = false});
    subscribe(off, "t/#", 1);
    disconnect(off);
    for (int i = 0; i < 5; i++) {
        char m[16];
        snprintf(m, sizeof m, "q%d", i);
        publish(pub, "t/q", m, (uint8_t)(1 + i % 2), (uint16_t)(10 + i));
    }
    /* a delayed will on a persistent session whose connection vanished */
    tc *w = connected(TM_V5, "willer", &(conn_opts){.clean = false, .expiry = 600,
                                                    .will_topic = "t/will",
                                                    .will_payload = "bye", .will_delay = 60});
    drop(w);
    /* a session that ends: nothing of it may come back */
    tc *e = connected(TM_V5, "ephemeral", &(conn_opts){.clean = false, .expiry = 600});
    subscribe(e, "t/#", 1);
    tc *e2 = open_conn(TM_V5, NULL);
    TM_CHECK_EQ(do_connect(e2, "ephemeral", &(conn_opts){.clean = true}, NULL), 0);
    disconnect(e2);
    /* retained cleared and set again */
    publish_retained(pub, "r/y", "first", 1, 20);
    publish_retained(pub, "r/y", "", 1, 21);
    publish_retained(pub, "r/z", "kept", 0, 0);
    (void)clean;
}

static void test_batches_restore_the_durable_state(void)
{
    start_journaled();
    scenario();
    TM_CHECK(n_batches > 10);
    tm_broker *r = restored(batches, n_batches);
    check_same(B, r);
    char *d = dump_of(r);
    TM_CHECK(strstr(d, "session sub ") != NULL);
    TM_CHECK(strstr(d, "session clean ") == NULL);
    TM_CHECK(strstr(d, "session ephemeral") == NULL);
    TM_CHECK(strstr(d, "wait-pubcomp") != NULL);
    TM_CHECK(strstr(d, "qos2-in pid=2") != NULL);
    TM_CHECK(strstr(d, "will t/will delay=60") != NULL);
    TM_CHECK(strstr(d, "retained r/x") != NULL && strstr(d, "retained r/z") != NULL);
    TM_CHECK(strstr(d, "retained r/y") == NULL);
    TM_CHECK(strstr(d, "qos0") == NULL);
    TM_CHECK(strstr(d, "gone/#") == NULL);
    free(d);
    tm_broker_free(r);
    stop();
}

/* A snapshot's pieces, kept in order. */
typedef struct pieces {
    tm_buf b[64];
    int n;
    int refuse_at;                       /* -1: accept every piece */
} pieces;

static bool keep_piece(void *ud, const uint8_t *p, size_t n)
{
    pieces *ps = ud;
    if (ps->n == ps->refuse_at || ps->n == 64)
        return false;
    tm_buf_init(&ps->b[ps->n]);
    tm_buf_put(&ps->b[ps->n], p, n);
    ps->n++;
    return true;
}

static void pieces_free(pieces *ps)
{
    for (int i = 0; i < ps->n; i++)
        tm_buf_free(&ps->b[i]);
    ps->n = 0;
}

static void test_snapshot_restores_the_same_state(void)
{
    start_journaled();
    scenario();
    for (int i = 0; i < n_batches; i++)
        tm_buf_free(&batches[i]);
    n_batches = 0;
    pieces snap = {.refuse_at = -1};
    TM_CHECK(tm_broker_snapshot(B, now, keep_piece, &snap));
    TM_CHECK_EQ(snap.n, 1);
    tm_broker *r = restored(snap.b, snap.n);
    check_same(B, r);
    /* and the snapshot of the restored broker restores once more to the same */
    tm_broker_journal_enable(r, true);
    pieces snap2 = {.refuse_at = -1};
    TM_CHECK(tm_broker_snapshot(r, now, keep_piece, &snap2));
    tm_broker *r2 = restored(snap2.b, snap2.n);
    check_same(r, r2);
    tm_broker_free(r2);
    tm_broker_free(r);
    pieces_free(&snap);
    pieces_free(&snap2);
    stop();
}

/* A state larger than a piece leaves in several pieces, cut between records
 * (each restores on its own, in order); a piece refused stops the snapshot
 * with false, and after tm_broker_snapshot_failed the journal still restores
 * (messages are written again in the next generation). */
static void test_large_snapshot_in_pieces(void)
{
    start_journaled();
    scenario();
    tc *pub = connected(TM_V5, "bulk", &(conn_opts){.clean = false, .expiry = 600});
    static char big[600 * 1024];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 30; i++) {   /* about 18 MB of retained and queued messages */
        char topic[32];
        snprintf(topic, sizeof topic, "t/big/%d", i);
        big[0] = (char)('a' + i % 26);
        publish_retained(pub, topic, big, 1, (uint16_t)(100 + i));
    }
    pieces snap = {.refuse_at = -1};
    TM_CHECK(tm_broker_snapshot(B, now, keep_piece, &snap));
    TM_CHECK(snap.n >= 3);
    for (int i = 0; i < snap.n; i++)
        TM_CHECK(snap.b[i].len <= TM_SNAPSHOT_PIECE + 2 * sizeof big);
    tm_broker *r = restored(snap.b, snap.n);
    check_same(B, r);
    tm_broker_free(r);
    pieces_free(&snap);

    /* refused at the second piece: false, nothing more produced */
    pieces part = {.refuse_at = 1};
    TM_CHECK(!tm_broker_snapshot(B, now, keep_piece, &part));
    TM_CHECK_EQ(part.n, 1);
    pieces_free(&part);
    tm_broker_snapshot_failed(B);
    /* the store is still the batches written so far; what comes next must
     * restore on top of them */
    publish(pub, "t/after", "after", 1, 200);
    tm_broker *r2 = restored(batches, n_batches);
    check_same(B, r2);
    tm_broker_free(r2);
    stop();
}

/* The restored broker behaves: the queued messages go to the client that comes
 * back, in order, in-flight ones again with DUP and their packet ids. */
static void test_restored_sessions_deliver(void)
{
    start_journaled();
    scenario();
    tm_broker *orig = B;
    B = restored(batches, n_batches);
    tm_broker_journal_enable(B, true);
    tc *back = open_conn(TM_V311, NULL);
    bool present = false;
    TM_CHECK_EQ(do_connect(back, "offline", &(conn_opts){.clean = false}, &present), 0);
    TM_CHECK(present);
    for (int i = 0; i < 5; i++) {
        char m[16];
        snprintf(m, sizeof m, "q%d", i);
        TM_CHECK(expect_publish(back, m));
    }
    tc *s2 = open_conn(TM_V5, NULL);
    TM_CHECK_EQ(do_connect(s2, "sub", &(conn_opts){.clean = false, .expiry = 600}, &present), 0);
    TM_CHECK(present);
    pkt p;
    /* PUBREL for the QoS 2 message awaiting PUBCOMP, then "three" again with DUP */
    int saw_pubrel = 0, saw_three = 0;
    while (next_pkt(s2, &p)) {
        if (p.type == TM_PUBREL)
            saw_pubrel++;
        if (p.type == TM_PUBLISH) {
            tm_publish pb;
            TM_CHECK_EQ(tm_decode_publish(p.body, p.len, p.flags, TM_V5, &pb), TM_RC_SUCCESS);
            if (pb.payload.len == 5 && !memcmp(pb.payload.p, "three", 5)) {
                saw_three++;
                TM_CHECK(pb.dup);
            }
        }
    }
    TM_CHECK_EQ(saw_pubrel, 1);
    TM_CHECK_EQ(saw_three, 1);
    tm_broker_free(orig);
    stop();
}

static void test_hostile_batches_never_crash(void)
{
    start_journaled();
    scenario();
    char err[128];
    /* every truncation and a bit flip in every byte of the first batches */
    for (int bi = 0; bi < n_batches && bi < 12; bi++) {
        tm_buf *bt = &batches[bi];
        for (size_t cut = 0; cut < bt->len; cut++) {
            tm_broker *r = tm_broker_new(&cfg, now, err, sizeof err);
            char why[256];
            for (int k = 0; k < bi; k++)
                tm_broker_restore(r, batches[k].data, batches[k].len, now, why, sizeof why);
            tm_broker_restore(r, bt->data, cut, now, why, sizeof why);
            bt->data[cut] ^= 0x40;
            tm_broker_restore(r, bt->data, bt->len, now, why, sizeof why);
            bt->data[cut] ^= 0x40;
            tm_broker_restore_done(r, now);
            tm_broker_free(r);
        }
    }
    const uint8_t junk[] = {6, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 1};
    tm_broker *r = tm_broker_new(&cfg, now, err, sizeof err);
    char why[256] = "";
    TM_CHECK_EQ(tm_broker_restore(r, junk, sizeof junk, now, why, sizeof why), -1);
    TM_CHECK(strstr(why, "unknown session") != NULL || strstr(why, "truncated") != NULL);
    tm_broker_restore_done(r, now);
    tm_broker_free(r);
    stop();
}

static void init(void)
{
    tm_log_set_level(TM_LOG_ERR + 1);
    setup_cfg();
}

static void done(void) { tm_config_free(&cfg); }

TM_TEST_MAIN(TM_CASE(init), TM_CASE(test_batches_restore_the_durable_state),
             TM_CASE(test_snapshot_restores_the_same_state),
             TM_CASE(test_large_snapshot_in_pieces), TM_CASE(test_restored_sessions_deliver),
             TM_CASE(test_hostile_batches_never_crash), TM_CASE(done))
