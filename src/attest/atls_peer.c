/*
 * atls_peer.c — see atls_peer.h.
 */
#include "attest/atls_peer.h"

#include <stdlib.h>

#include <openssl/crypto.h>

#include "attest/policy.h"

struct tm_atls_peer {
    unsigned refs;
    tm_claims claims;
    tm_atls_server *srv;         /* one reference; owns the policy */
};

tm_atls_peer *tm_atls_peer_new(const tm_claims *claims, tm_atls_server *srv)
{
    tm_atls_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->refs = 1;
    p->claims = *claims;
    p->srv = srv ? tm_atls_server_ref(srv) : NULL;
    return p;
}

tm_atls_peer *tm_atls_peer_ref(tm_atls_peer *p)
{
    if (p)
        p->refs++;
    return p;
}

void tm_atls_peer_unref(tm_atls_peer *p)
{
    if (!p || --p->refs)
        return;
    tm_atls_server_free(p->srv);
    OPENSSL_cleanse(p, sizeof *p);
    free(p);
}

const tm_claims *tm_atls_peer_get_claims(const tm_atls_peer *p) { return &p->claims; }

bool tm_atls_peer_in_set(const tm_atls_peer *p, const char *set)
{
    const tm_policy *pol = p && p->srv ? tm_atls_server_client_policy(p->srv) : NULL;
    return pol && tm_policy_in_set(pol, set, &p->claims) == 1;
}
