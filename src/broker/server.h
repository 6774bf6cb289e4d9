/*
 * server.h — what the protocol handlers need from the server part (listeners,
 * connections, transport), beyond broker.h.
 */
#ifndef TM_SERVER_H
#define TM_SERVER_H

#include <stdbool.h>

#include "broker/broker.h"
#include "broker/config.h"

const tm_listener_cfg *tm_listener_config(const tm_listener *l);
/* End a connection now: its will is processed, its session detached. */
void tm_server_end_conn(tm_conn *c, const char *why);
/* The peer certificate's identity (subject CN) for use_identity_as_username,
 * malloc'd; NULL when there is none. */
char *tm_server_tls_identity(tm_conn *c);
/* False when the listener requires client attestation and the peer did not
 * pass it. */
bool tm_server_attest_ok(tm_conn *c);

#endif
