/*
 * handle_misc.c — PINGREQ, DISCONNECT and AUTH.
 */
#include <string.h>

#include "broker/broker_int.h"

tm_rc tm_handle_pingreq(tm_conn *c, uint8_t flags, size_t len)
{
    if (flags != 0 || len != 0)
        return TM_RC_MALFORMED;
    tm_encode_simple(&c->out, TM_PINGRESP);
    tm_conn_mark_dirty(c);
    return TM_RC_SUCCESS;
}

tm_rc tm_handle_disconnect(tm_conn *c, const uint8_t *body, size_t len)
{
    tm_disconnect d;
    tm_rc rc = tm_decode_disconnect(body, len, c->version, &d);
    if (rc != TM_RC_SUCCESS)
        return rc;
    tm_session *s = c->sess;
    if (c->version == TM_V5 && (d.props.present & TM_PBIT(TM_P_SESSION_EXPIRY))) {
        if (s->expiry == 0 && d.props.session_expiry != 0)
            return TM_RC_PROTOCOL_ERROR;   /* MQTT 5 3.14.2.2.2 */
        s->expiry = d.props.session_expiry;
    }
    /* 0x04: "disconnect with will message" — the will is still published */
    c->will_suppressed = !(c->version == TM_V5 && d.reason == TM_RC_DISCONNECT_WITH_WILL);
    tm_log(TM_LOG_INFO, "client '%s' disconnected (%s)", tm_conn_client_id(c), tm_rc_name(d.reason));
    c->state = TM_CS_CLOSING;
    return TM_RC_SUCCESS;
}

tm_rc tm_handle_auth(tm_conn *c, const uint8_t *body, size_t len)
{
    tm_disconnect a;
    tm_rc rc = tm_decode_auth(body, len, &a);
    if (rc != TM_RC_SUCCESS)
        return rc;
    /* No enhanced authentication method is configured, and a CONNECT with an
     * authentication method was already refused, so any AUTH is unexpected. */
    return TM_RC_PROTOCOL_ERROR;
}
