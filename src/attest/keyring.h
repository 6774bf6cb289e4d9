/*
 * keyring.h — the attesting side of the +key formats: an attestation key that
 * is always there, and its rotation (attested-tls.md, "+key formats").
 *
 * A keyring holds the current attestation key of one platform format, made by
 * a provider (provider.h: tm_provider_key_new, one quote per key). The first
 * key is made when the keyring is created (one quote, before the caller
 * serves anyone). Each key is valid for `lifetime` seconds; when a quarter of
 * that is left, tm_keyring_tick starts the next one and adopts it when its
 * quote is ready, so that a valid key exists at every moment (no gap) while
 * rotation succeeds. A failed rotation is retried (every lifetime/8, at most
 * a minute apart) until the old key ends.
 *
 * Where the rotation's quote is made: with `worker` (natively, in the broker)
 * a thread makes it, holding the provider lent (tm_provider_lend) so that the
 * event loop neither blocks nor touches the provider meanwhile (direct-format
 * handshakes wait, see atls.c); tm_keyring_tick only starts the thread and
 * later adopts the result. Without a worker (clients; WebAssembly, which has
 * no threads) tm_keyring_tick makes it at once: one quote, between two
 * iterations of the caller's loop.
 *
 * Single-threaded API: every function is called by the owner's thread; the
 * worker touches only its job and the lent provider.
 */
#ifndef TM_ATTEST_KEYRING_H
#define TM_ATTEST_KEYRING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/provider.h"

#define TM_KEYRING_DEFAULT_LIFETIME 3600
#define TM_KEYRING_MIN_LIFETIME 10

typedef struct tm_keyring tm_keyring;

typedef struct tm_keyring_opts {
    tm_provider *provider;       /* borrowed: outlives the keyring */
    uint16_t format;             /* platform format (TM_FMT_SIM, ...) */
    uint32_t lifetime_s;         /* 0: TM_KEYRING_DEFAULT_LIFETIME */
    bool worker;                 /* rotate in a thread (ignored where there are none) */
} tm_keyring_opts;

/* Makes the first key now (one quote). NULL with a reason. */
tm_keyring *tm_keyring_new(const tm_keyring_opts *o, time_t now, char *err, size_t errcap);
/* Waits for a running rotation (at most one quote), frees every key. */
void tm_keyring_free(tm_keyring *r);
/* 1 when the current key is valid at `now` with a margin (a few seconds, so
 * that a verifier with a slightly later clock still accepts it). */
int tm_keyring_usable(const tm_keyring *r, time_t now);
/* KeyAttestedEvidence over rd with the current key: TM_PROV_OK,
 * TM_PROV_EFORMAT (no usable key: the reason says why), TM_PROV_ESPACE
 * (*len = size needed), TM_PROV_EINTERNAL. */
int tm_keyring_evidence(tm_keyring *r, time_t now, const uint8_t rd[64], uint8_t *out,
                        size_t cap, size_t *len, char *err, size_t errcap);
/* Rotation step; call at least every few seconds. Returns 0 (nothing to
 * report), 1 (a new key was adopted; note says which), 2 (a rotation started
 * in the worker), -1 (a rotation failed, note says why; retried later). */
int tm_keyring_tick(tm_keyring *r, time_t now, char *note, size_t notecap);
/* 1 while the worker holds the provider (a rotation quote is being made). */
int tm_keyring_busy(const tm_keyring *r);
/* The current key's end of validity (seconds since the epoch), 0 if none. */
uint64_t tm_keyring_not_after(const tm_keyring *r);
uint32_t tm_keyring_lifetime(const tm_keyring *r);

#endif
