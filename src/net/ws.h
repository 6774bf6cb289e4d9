/*
 * ws.h — the WebSocket layer of the transport stack (stream.h), server role:
 * MQTT over WebSockets (RFC 6455, subprotocol "mqtt" or "mqttv3.1") on top of
 * TCP (ws) or TLS (wss), plus static files from http_dir for plain GETs.
 *
 * Its handshake completes the layer below first (so a wss listener runs the
 * same TLS handshake, attestation included, as an MQTT-over-TLS listener),
 * then reads one HTTP request head and answers it: 101 and the connection
 * carries MQTT in binary frames; or a file, or an error status, after which
 * the handshake fails with a line saying what happened (netsrv logs it and
 * closes). docs/websockets.md describes the behaviour and its limits.
 */
#ifndef TM_NET_WS_H
#define TM_NET_WS_H

#include <stddef.h>

#include "net/stream.h"
#include "net/ws_http.h"

/* The WebSocket layer over `below`. `o` must outlive the stream (a
 * listener's options). NULL with a reason when out of memory; `below` is then
 * untouched. */
tm_stream *tm_stream_ws_server(const tm_ws_opts *o, tm_stream *below, char *err, size_t errcap);

#endif
