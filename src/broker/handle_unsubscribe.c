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
    tm_broker *b = tm_conn_b(c);
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
        tm_str key;
        char *mounted = tm_sess_sub_key(c, full, &key);
        uint8_t code = (uint8_t)tm_sess_unsubscribe(b, s, key);
        free(mounted);
        if (code == TM_RC_SUCCESS)
            tm_log(TM_LOG_UNSUBSCRIBE, "client '%s' unsubscribed from '%.*s'", tm_conn_client_id(c),
                   (int)full.len, (const char *)full.p);
        codes[i++] = code;
    }
    tm_encode_suback(&c->out, c->version, TM_UNSUBACK, un.packet_id, NULL, codes, i);
    tm_conn_mark_dirty(c);
    return TM_RC_SUCCESS;
}
