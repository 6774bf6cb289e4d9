/*
 * tls_none.c — the TLS transport for builds without TLS support: a TLS
 * listener in the configuration is refused at start-up with a clear reason.
 */
#include <stdio.h>

#include "broker/transport.h"

static int listener_new(const tm_listener_cfg *cfg, void **state, char *err, size_t errcap)
{
    (void)cfg;
    (void)state;
    snprintf(err, errcap, "TLS listeners are not supported by this build");
    return -1;
}

const tm_transport tm_tls_transport = {.name = "none", .listener_new = listener_new};
