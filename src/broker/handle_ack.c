/*
 * handle_ack.c — PUBACK, PUBREC, PUBCOMP (acknowledgements of what we sent)
 * and PUBREL (second half of a QoS 2 message the client sent us).
 */
#include <string.h>

#include "broker/broker_int.h"

tm_rc tm_handle_ack(tm_conn *c, uint8_t type, uint8_t flags, const uint8_t *body, size_t len)
{
    tm_ack a;
    tm_rc rc = tm_decode_ack(type, body, len, flags, c->version, &a);
    if (rc != TM_RC_SUCCESS)
        return rc;
    tm_session *s = c->sess;
    if (type == TM_PUBREL) {
        bool known = tm_sess_qos2_has(s, a.packet_id);
        tm_sess_qos2_del(s, a.packet_id);
        if (known)
            tm_jr_q2(tm_conn_b(c), s, a.packet_id, false);
        tm_ack comp;
        memset(&comp, 0, sizeof comp);
        comp.type = TM_PUBCOMP;
        comp.packet_id = a.packet_id;
        comp.reason = (!known && c->version == TM_V5) ? TM_RC_PACKET_ID_NOT_FOUND : 0;
        tm_encode_ack(&c->out, c->version, &comp);
        tm_conn_mark_dirty(c);
        return TM_RC_SUCCESS;
    }
    if (!tm_outq_ack(tm_conn_b(c), s, a.packet_id, type, a.reason)) {
        /* An ack for a packet we do not have in flight: harmless after a
         * reconnect race; logged, not fatal. */
        tm_log(TM_LOG_DEBUG, "client '%s': %s for unknown packet id %u", tm_conn_client_id(c),
               tm_ptype_name(type), a.packet_id);
    }
    return TM_RC_SUCCESS;
}
