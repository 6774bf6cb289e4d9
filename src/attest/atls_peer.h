/*
 * atls_peer.h — what the broker keeps about a peer whose attestation was
 * appraised: its claims and the policy that appraised them, for ACL rules
 * on `attested SETNAME` blocks.
 *
 * Reference-counted, because it outlives the connection: the session keeps
 * it as long as the session's Will can fire (a delayed Will is checked
 * against the same claims as the connection that set it). It holds a
 * reference to the listener's attestation configuration, so the policy stays
 * valid across a SIGHUP that replaces the listener's configuration.
 */
#ifndef TM_ATTEST_ATLS_PEER_H
#define TM_ATTEST_ATLS_PEER_H

#include <stdbool.h>

#include "attest/atls.h"
#include "attest/claims.h"

typedef struct tm_atls_peer tm_atls_peer;

/* A copy of the claims appraised under srv's client policy (srv may be NULL:
 * no sets). NULL when out of memory. */
tm_atls_peer *tm_atls_peer_new(const tm_claims *claims, tm_atls_server *srv);
tm_atls_peer *tm_atls_peer_ref(tm_atls_peer *p);
void tm_atls_peer_unref(tm_atls_peer *p);   /* NULL is a no-op */
const tm_claims *tm_atls_peer_get_claims(const tm_atls_peer *p);
/* Are the claims in measurement set `set` of the appraising policy? */
bool tm_atls_peer_in_set(const tm_atls_peer *p, const char *set);

#endif
