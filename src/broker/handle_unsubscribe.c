/*
 * handle_unsubscribe.c — what happens on UNSUBSCRIBE: each filter leaves the
 * session and the topic tree; v5 answers 0x11 for a filter that was not
 * subscribed.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

tm_rc tm_handle_unsubscribe(tm_conn *c, uint8_t flags, const uint8_t *body, size_t len)
{
    tm_broker *b = c->b;
    tm_session *s = c->sess;
    tm_subscribe un;
    tm_rc rc = tm_decode_unsubscribe(body, len, flags, c->version, &un);
    if (rc != TM_RC_SUCCESS)
        return rc;
    if (un.count > 1024)
        return TM_RC_QUOTA_EXCEEDED;
    uint8_t codes[1024];
    uint32_t pos = 0, i = 0;
    tm_str full;
    tm_subopts opts;
    while (tm_sub_next(&un, &pos, &full, &opts)) {
        uint8_t code = TM_RC_NO_SUBSCRIPTION_EXISTED;
        for (uint32_t k = 0; k < s->n_subs; k++) {
            tm_sess_sub *ss = &s->subs[k];
            if (strlen(ss->filter) != full.len || memcmp(ss->filter, full.p, full.len))
                continue;
            tm_str group = {0}, filter;
            bool bad;
            if (!tm_topic_split_shared(full, &group, &filter, &bad))
                group = (tm_str){0};
            tm_trie_sub_del(b, ss->node, group, s);
            tm_trie_prune(b, ss->node);
            free(ss->filter);
            s->subs[k] = s->subs[--s->n_subs];
            code = TM_RC_SUCCESS;
            tm_log(TM_LOG_UNSUBSCRIBE, "client '%s' unsubscribed from '%.*s'", c->client_id,
                   (int)full.len, (const char *)full.p);
            break;
        }
        codes[i++] = code;
    }
    tm_encode_suback(&c->out, c->version, TM_UNSUBACK, un.packet_id, NULL, codes, i);
    tm_conn_mark_dirty(c);
    return TM_RC_SUCCESS;
}
