/*
 * wasi_socket.h — BSD sockets for C code compiled to wasm32-wasi (guest side).
 *
 * wasi-libc (2022-05) can accept/recv/send/shutdown on sockets it is given, but has
 * no socket(), bind(), listen(), connect(), setsockopt(), getsockname(),
 * getpeername() nor getaddrinfo(). This header declares them and wasi_socket.c
 * implements them on WAMR's socket-extension imports (module
 * "wasi_snapshot_preview1": sock_open, sock_bind, ...), which both tmqtt-wasm and
 * WAMR's iwasm provide. Include it instead of <netdb.h> on WASI:
 *
 *   #ifdef __wasi__
 *   #include "platform/wasi_socket.h"
 *   #else
 *   #include <netdb.h>
 *   #endif
 *
 * Errors are reported as in POSIX (-1 and errno; WASI errno values are wasi-libc's
 * errno values). Limits: no SO_ERROR from the host (getsockopt(SO_ERROR) reports 0, so
 * use blocking connect or check the first send/recv), getaddrinfo resolves numeric
 * addresses locally and names through the runtime (tmqtt-wasm: "localhost" only,
 * unless started with --allow-dns). Everything is empty on other platforms.
 */
#ifndef TM_PLATFORM_WASI_SOCKET_H
#define TM_PLATFORM_WASI_SOCKET_H
#ifdef __wasi__

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol);
int bind(int fd, const struct sockaddr *addr, socklen_t len);
int connect(int fd, const struct sockaddr *addr, socklen_t len);
int listen(int fd, int backlog);
int setsockopt(int fd, int level, int name, const void *value, socklen_t len);
int getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int getpeername(int fd, struct sockaddr *addr, socklen_t *len);
/* accept, accept4 and getsockopt are declared by <sys/socket.h>; wasi_socket.c
 * provides versions that also fill the peer address and know more options. */

/* Socket options wasi-libc leaves out; values as in WAMR's wasi_socket_ext.h (Linux). */
#ifndef SO_REUSEADDR
#define SO_REUSEADDR 2
#endif
#ifndef SO_ERROR
#define SO_ERROR 4
#endif
#ifndef SO_BROADCAST
#define SO_BROADCAST 6
#endif
#ifndef SO_SNDBUF
#define SO_SNDBUF 7
#endif
#ifndef SO_RCVBUF
#define SO_RCVBUF 8
#endif
#ifndef SO_KEEPALIVE
#define SO_KEEPALIVE 9
#endif
#ifndef SO_LINGER
#define SO_LINGER 13
#endif
#ifndef SO_REUSEPORT
#define SO_REUSEPORT 15
#endif
#ifndef SO_RCVTIMEO
#define SO_RCVTIMEO 20
#endif
#ifndef SO_SNDTIMEO
#define SO_SNDTIMEO 21
#endif
/* The runtime never raises SIGPIPE (a vanished peer is EPIPE), so "no signal" is the
 * default and the flag is 0; wasi-libc's send() refuses any non-zero flag. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#ifndef SOMAXCONN
#define SOMAXCONN 128
#endif
#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE 4
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 5
#endif
#ifndef TCP_QUICKACK
#define TCP_QUICKACK 12
#endif

struct addrinfo {
    int ai_flags;
    int ai_family;
    int ai_socktype;
    int ai_protocol;
    socklen_t ai_addrlen;
    struct sockaddr *ai_addr;
    char *ai_canonname;
    struct addrinfo *ai_next;
};

#define AI_PASSIVE 0x01
#define AI_CANONNAME 0x02
#define AI_NUMERICHOST 0x04
#define AI_V4MAPPED 0x08
#define AI_ALL 0x10
#define AI_ADDRCONFIG 0x20
#define AI_NUMERICSERV 0x400

#define EAI_BADFLAGS -1
#define EAI_NONAME -2
#define EAI_AGAIN -3
#define EAI_FAIL -4
#define EAI_FAMILY -6
#define EAI_SOCKTYPE -7
#define EAI_SERVICE -8
#define EAI_MEMORY -10
#define EAI_SYSTEM -11

#define NI_MAXHOST 1025
#define NI_MAXSERV 32
#define NI_NUMERICHOST 0x01
#define NI_NUMERICSERV 0x02
#define NI_NAMEREQD 0x08

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res);
void freeaddrinfo(struct addrinfo *res);
const char *gai_strerror(int code);
/* Numeric only (there is no reverse DNS in the sandbox); NI_NAMEREQD fails. */
int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen, char *serv,
                socklen_t servlen, int flags);

#endif /* __wasi__ */
#endif
