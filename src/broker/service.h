/*
 * service.h — run the broker as a network service until SIGTERM/SIGINT
 * (service.c). Returns 0 after a clean stop, 1 when the loop failed, 2 when
 * it could not start (reason in err).
 */
#ifndef TM_BROKER_SERVICE_H
#define TM_BROKER_SERVICE_H

#include <stddef.h>

#include "broker/config.h"

int tm_service_run(tm_config *cfg, char *err, size_t errcap);

#endif
