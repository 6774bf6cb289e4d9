/*
 * fuzz_decode.c — libFuzzer target for the MQTT codec (src/mqtt).
 *
 * One input is one packet as it arrives on the wire. We parse the fixed header,
 * run the decoder for its type under MQTT 3.1.1 and MQTT 5, and for every
 * successful decode check the round trip: encoding the decoded struct and
 * decoding the result again must succeed and give the same fields (compared by
 * content, codec_eq.h). The topic functions get the same bytes split in two.
 * Any difference aborts, so the fuzzer reports it with the input.
 *
 * Built with -DTM_FUZZ_REPLAY (a normal gcc build), the same file is a plain
 * program that replays corpus files and directories given on the command line,
 * so CI can always run the seed corpus without clang's libFuzzer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_eq.h"
#include "mqtt/mqtt.h"

#define REQUIRE(c)                                                              \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "fuzz_decode: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* Parse the one packet in b (fixed header + body), which must be complete. */
static const uint8_t *reparse(const tm_buf *b, uint8_t want_type, tm_frame *f)
{
    REQUIRE(!b->oom);
    REQUIRE(tm_frame_parse(b->data, b->len, 0, f) == TM_RC_SUCCESS);
    REQUIRE(f->type == want_type);
    REQUIRE((size_t)f->header_len + f->remaining == b->len);
    return b->data + f->header_len;
}

static void rt_connect(const tm_connect *c)
{
    tm_buf b;
    tm_frame f;
    tm_connect d;
    tm_buf_init(&b);
    tm_encode_connect(&b, c);
    const uint8_t *body = reparse(&b, TM_CONNECT, &f);
    REQUIRE(tm_decode_connect(body, f.remaining, &d) == TM_RC_SUCCESS);
    REQUIRE(tm_eq_connect(c, &d));
    tm_buf_free(&b);
}

static void rt_connack(uint8_t ver, const tm_connack *c)
{
    tm_buf b;
    tm_frame f;
    tm_connack d;
    tm_buf_init(&b);
    tm_encode_connack(&b, ver, c);
    const uint8_t *body = reparse(&b, TM_CONNACK, &f);
    REQUIRE(tm_decode_connack(body, f.remaining, ver, &d) == TM_RC_SUCCESS);
    REQUIRE(tm_eq_connack(c, &d));
    tm_buf_free(&b);
}

static void rt_publish(uint8_t ver, const tm_publish *p)
{
    tm_buf b;
    tm_frame f;
    tm_publish d;
    tm_buf_init(&b);
    tm_encode_publish(&b, ver, p);
    REQUIRE(b.len == tm_publish_size(ver, p));
    const uint8_t *body = reparse(&b, TM_PUBLISH, &f);
    REQUIRE(tm_decode_publish(body, f.remaining, f.flags, ver, &d) == TM_RC_SUCCESS);
    REQUIRE(tm_eq_publish(p, &d));
    tm_buf_free(&b);
}

static void rt_ack(uint8_t ver, const tm_ack *a)
{
    tm_buf b;
    tm_frame f;
    tm_ack d;
    tm_buf_init(&b);
    tm_encode_ack(&b, ver, a);
    const uint8_t *body = reparse(&b, a->type, &f);
    REQUIRE(tm_decode_ack(f.type, body, f.remaining, f.flags, ver, &d) == TM_RC_SUCCESS);
    REQUIRE(tm_eq_ack(a, &d));
    tm_buf_free(&b);
}

static void rt_subscribe(uint8_t ver, const tm_subscribe *s)
{
    tm_str *filters = calloc(s->count, sizeof *filters);
    tm_subopts *opts = calloc(s->count, sizeof *opts);
    REQUIRE(filters && opts);
    uint32_t pos = 0, i = 0;
    while (tm_sub_next(s, &pos, &filters[i], &opts[i])) {
        REQUIRE(i < s->count);
        i++;
    }
    REQUIRE(i == s->count);
    tm_buf b;
    tm_frame f;
    tm_subscribe d;
    tm_buf_init(&b);
    if (s->unsubscribe)
        tm_encode_unsubscribe(&b, ver, s->packet_id, &s->props, filters, s->count);
    else
        tm_encode_subscribe(&b, ver, s->packet_id, &s->props, filters, opts, s->count);
    const uint8_t *body = reparse(&b, s->unsubscribe ? TM_UNSUBSCRIBE : TM_SUBSCRIBE, &f);
    tm_rc rc = s->unsubscribe ? tm_decode_unsubscribe(body, f.remaining, f.flags, ver, &d)
                              : tm_decode_subscribe(body, f.remaining, f.flags, ver, &d);
    REQUIRE(rc == TM_RC_SUCCESS);
    REQUIRE(tm_eq_subscribe(s, &d));
    tm_buf_free(&b);
    free(filters);
    free(opts);
}

static void rt_suback(uint8_t type, uint8_t ver, const tm_suback *s)
{
    tm_buf b;
    tm_frame f;
    tm_suback d;
    tm_buf_init(&b);
    tm_encode_suback(&b, ver, type, s->packet_id, &s->props, s->codes.p, s->codes.len);
    const uint8_t *body = reparse(&b, type, &f);
    REQUIRE(tm_decode_suback(type, body, f.remaining, ver, &d) == TM_RC_SUCCESS);
    REQUIRE(tm_eq_suback(s, &d));
    tm_buf_free(&b);
}

static void rt_disconnect(uint8_t ver, const tm_disconnect *x, bool auth)
{
    tm_buf b;
    tm_frame f;
    tm_disconnect d;
    tm_buf_init(&b);
    if (auth)
        tm_encode_auth(&b, x);
    else
        tm_encode_disconnect(&b, ver, x);
    const uint8_t *body = reparse(&b, auth ? TM_AUTH : TM_DISCONNECT, &f);
    tm_rc rc = auth ? tm_decode_auth(body, f.remaining, &d)
                    : tm_decode_disconnect(body, f.remaining, ver, &d);
    REQUIRE(rc == TM_RC_SUCCESS);
    REQUIRE(tm_eq_disconnect(x, &d));
    tm_buf_free(&b);
}

/* Every decoder must return a known code; the round trip runs on success. */
static void decode_as(const tm_frame *f, const uint8_t *body, uint8_t ver)
{
    size_t len = f->remaining;
    tm_rc rc;
    switch (f->type) {
    case TM_CONNECT: {
        tm_connect c;
        if (ver != TM_V5) break;   /* the version comes from the packet: run once */
        if (tm_decode_connect(body, len, &c) == TM_RC_SUCCESS) rt_connect(&c);
        break;
    }
    case TM_CONNACK: {
        tm_connack c;
        if (tm_decode_connack(body, len, ver, &c) == TM_RC_SUCCESS) rt_connack(ver, &c);
        break;
    }
    case TM_PUBLISH: {
        tm_publish p;
        if (tm_decode_publish(body, len, f->flags, ver, &p) == TM_RC_SUCCESS) rt_publish(ver, &p);
        break;
    }
    case TM_PUBACK: case TM_PUBREC: case TM_PUBREL: case TM_PUBCOMP: {
        tm_ack a;
        if (tm_decode_ack(f->type, body, len, f->flags, ver, &a) == TM_RC_SUCCESS)
            rt_ack(ver, &a);
        break;
    }
    case TM_SUBSCRIBE: case TM_UNSUBSCRIBE: {
        tm_subscribe s;
        rc = f->type == TM_SUBSCRIBE ? tm_decode_subscribe(body, len, f->flags, ver, &s)
                                     : tm_decode_unsubscribe(body, len, f->flags, ver, &s);
        if (rc == TM_RC_SUCCESS) rt_subscribe(ver, &s);
        break;
    }
    case TM_SUBACK: case TM_UNSUBACK: {
        tm_suback s;
        if (tm_decode_suback(f->type, body, len, ver, &s) == TM_RC_SUCCESS)
            rt_suback(f->type, ver, &s);
        break;
    }
    case TM_DISCONNECT: {
        tm_disconnect d;
        if (tm_decode_disconnect(body, len, ver, &d) == TM_RC_SUCCESS) rt_disconnect(ver, &d, false);
        break;
    }
    case TM_AUTH: {
        tm_disconnect d;
        if (ver != TM_V5) break;
        if (tm_decode_auth(body, len, &d) == TM_RC_SUCCESS) rt_disconnect(ver, &d, true);
        break;
    }
    default:
        break;
    }
}

/* Topic functions on the input split at its first byte's position. */
static void fuzz_topics(const uint8_t *data, size_t size)
{
    if (size < 1) return;
    size_t cut = data[0] % size;
    const uint8_t *a = data + 1;
    size_t alen = cut ? cut - 1 : 0;
    const uint8_t *n = data + 1 + alen;
    size_t nlen = size - 1 - alen;
    bool fv = tm_topic_filter_valid(a, alen);
    bool nv = tm_topic_name_valid(n, nlen);
    if (fv) (void)tm_topic_match(a, alen, n, nlen);
    /* A valid name is a valid filter that matches exactly itself. */
    if (nv) {
        REQUIRE(tm_topic_filter_valid(n, nlen));
        REQUIRE(tm_topic_match(n, nlen, n, nlen));
    }
    tm_str full = { data, (uint32_t)size }, g, fl;
    bool bad;
    if (tm_topic_split_shared(full, &g, &fl, &bad)) {
        REQUIRE(!bad && g.len > 0 && fl.len > 0 && tm_topic_filter_valid(fl.p, fl.len));
    }
    (void)tm_utf8_valid(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tm_frame f;
    fuzz_topics(data, size);
    if (tm_frame_parse(data, size, 0, &f) != TM_RC_SUCCESS) return 0;
    if ((size_t)f.header_len + f.remaining > size) return 0;
    /* Decode from a copy of exactly the body, so ASan catches any over-read. */
    uint8_t *body = malloc(f.remaining ? f.remaining : 1);
    REQUIRE(body);
    memcpy(body, data + f.header_len, f.remaining);
    decode_as(&f, body, TM_V311);
    decode_as(&f, body, TM_V5);
    free(body);
    (void)tm_rc_name(f.type);
    (void)tm_ptype_name(f.type);
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#include <dirent.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fuzz_decode: cannot open %s\n", path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return 1;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        if (got == 0) break;
        len += got;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_decode: no such file %s\n", argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += replay_file(argv[i]);
            runs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            errors += replay_file(path);
            runs++;
        }
        if (d) closedir(d);
    }
    printf("replayed %d inputs, %d errors\n", runs, errors);
    return errors || runs == 0;
}
#endif
