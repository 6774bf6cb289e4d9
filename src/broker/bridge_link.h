/*
 * bridge_link.h — the transport side of bridges: connecting each configured
 * bridge to its remote broker and reconnecting it (bridge_link.c). The
 * engine's side, from CONNECT on, is bridge.c (broker.h).
 */
#ifndef TM_BROKER_BRIDGE_LINK_H
#define TM_BROKER_BRIDGE_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "net/netsrv.h"

typedef struct tm_bridge_links tm_bridge_links;

/* One link per configured bridge (TLS contexts and attested TLS built now:
 * NULL with a reason when a file or a policy cannot be read). The first
 * attempts are due at `now`. */
tm_bridge_links *tm_bridge_links_new(const tm_config *cfg, tm_netsrv *net, int64_t now,
                                     char *err, size_t errcap);
void tm_bridge_links_free(tm_bridge_links *set);
/* Is this connection cookie one of ours (an outgoing bridge connection)? */
bool tm_bridge_links_owns(const tm_bridge_links *set, const void *cookie);
/* netsrv's open() for one of ours: the engine's bridge connection. */
tm_conn *tm_bridge_links_open(tm_bridge_links *set, tm_broker *b, tm_nconn *nc, int64_t now);
/* netsrv's closed(): remembered when it is one of ours (for the log). */
void tm_bridge_links_closed(tm_bridge_links *set, const void *up, const char *why);
/* netsrv's failed() for one of ours. */
void tm_bridge_links_failed(tm_bridge_links *set, void *cookie, const char *why, int64_t now);
/* Starts what is due, notices connections the engine ended. Returns when it
 * wants to be called next (INT64_MAX: nothing scheduled). */
int64_t tm_bridge_links_tick(tm_bridge_links *set, tm_broker *b, int64_t now);

#endif
