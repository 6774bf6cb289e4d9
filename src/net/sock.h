/*
 * sock.h — the few socket operations the broker, the client library and the
 * benchmark need, written once. Addresses are numeric IPv4/IPv6 literals or
 * "localhost"; names are turned into them with tm_sock_resolve (the tools,
 * bridges). Everything returns -1 and fills `err` on failure.
 */
#ifndef TM_SOCK_H
#define TM_SOCK_H

#include <stddef.h>
#include <stdint.h>

/* Listening socket on host:port (host NULL or "" = all IPv4 and IPv6
 * addresses), non-blocking, SO_REUSEADDR. Returns the fd. */
int tm_sock_listen(const char *host, uint16_t port, int backlog, char *err, size_t errcap);

/* Connect to host:port. Blocking connect when nonblock is 0; otherwise the
 * connect is started and the fd returned (EINPROGRESS is not an error). */
int tm_sock_connect(const char *host, uint16_t port, int nonblock, char *err, size_t errcap);

/* A host name or address as a numeric address (the first the resolver gives;
 * a numeric address or "localhost" as it is). Blocks while the resolver
 * works. */
int tm_sock_resolve(const char *host, char *numeric, size_t cap, char *err, size_t errcap);
int tm_sock_nonblock(int fd);
int tm_sock_nodelay(int fd);
uint16_t tm_sock_local_port(int fd);
/* "127.0.0.1:4711" or "[::1]:4711" of the peer into buf. */
void tm_sock_peer_name(int fd, char *buf, size_t cap);

#endif
