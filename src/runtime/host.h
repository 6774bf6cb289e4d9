/*
 * host.h — the state of one tmqtt-wasm instance, shared by the WASI, socket,
 * attestation and trap parts of the host (internal to src/runtime/).
 *
 * One process runs exactly one module instance, single-threaded, so there is one
 * tm_host. Every import function receives it (disguised as wasm2c's per-import-module
 * instance pointer, see host_imports.h) and must treat every guest pointer and length
 * as hostile: check the range against the *current* linear memory size before each
 * access (tm_mem_*), never keep a host pointer into linear memory across a call that
 * could grow it, and answer with a WASI errno rather than crash.
 *
 * Guest file descriptors are indices into h->fds; they never alias host descriptor
 * numbers, so a module cannot name a host fd it was not given. Slots 0-2 are stdio,
 * the preopened directories follow contiguously from 3 (wasi-libc stops scanning at
 * the first fd that is not a preopen), then sockets and files opened at run time.
 */
#ifndef TM_RUNTIME_HOST_H
#define TM_RUNTIME_HOST_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "runtime/wasi_abi.h"

#include <wasm-rt.h>

typedef struct tm_ra tm_ra;
typedef struct tm_crypto tm_crypto;

/* Host import modules beyond WASI, as bits of tm_host.omit (--omit-import). */
#define TM_IMPORT_RA 1u     /* tmqtt_ra (ra.c) */
#define TM_IMPORT_CRYPTO 2u /* tmqtt_crypto (crypto.c) */
#define TM_IMPORT_SEAL 4u   /* tmqtt_seal (seal_host.c) */
#define TM_IMPORT_EVENT 8u  /* tmqtt_event (event.c) */

enum tm_fd_kind {
    TM_FD_FREE = 0,
    TM_FD_STDIO,   /* one of the host's 0,1,2; never closed on the host side */
    TM_FD_FILE,    /* regular file, device, pipe */
    TM_FD_DIR,     /* directory opened by path_open (readable: fd_readdir) */
    TM_FD_PREOPEN, /* preopened directory (O_PATH); root of a confinement tree */
    TM_FD_SOCKET,
};

typedef struct tm_fd {
    int kind;             /* enum tm_fd_kind */
    int host;             /* host descriptor */
    uint8_t filetype;     /* WASI filetype reported by fdstat */
    char *guest_path;     /* preopens only: the name the guest sees */
    /* Sockets: family and type (WAMR encoding) as opened, to decode addresses. */
    int sock_family;      /* AF_INET / AF_INET6 */
} tm_fd;

/* One --addr-pool entry: an IPv4 or IPv6 prefix. */
typedef struct tm_addr_net {
    int family;           /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;      /* bits */
} tm_addr_net;

typedef struct tm_host {
    /* Linear memory of the instance (set after instantiation). */
    wasm_rt_memory_t *mem; /* data/size re-read on every access (grow may move it) */

    /* Arguments and environment, as flat NUL-terminated strings. */
    char **argv;
    size_t argc;
    char **envp;
    size_t envc;

    /* Descriptor table. */
    tm_fd *fds;
    uint32_t nfds;        /* allocated slots */
    uint32_t max_fds;     /* hard limit on slots */

    /* Address pool for sock_bind / sock_connect (deny everything when empty). */
    tm_addr_net *pool;
    size_t npool;

    /* Name resolution: only numeric addresses and "localhost" unless enabled. */
    bool allow_dns;

    /* Scratch buffer for poll_oneoff (grown on demand, never shrunk). */
    void *poll_buf;
    size_t poll_cap;

    /* Attestation provider behind the tmqtt_ra import. */
    tm_ra *ra;

    /* The store's sealing key behind the tmqtt_seal import (--seal), and the
     * per-file keys the module holds handles to. */
    struct tm_seal *seal;
#define TM_SEAL_FILES 8
    struct tm_seal_file *seal_files[TM_SEAL_FILES];
    /* Readiness sets behind the tmqtt_event import: host epoll descriptors, -1 =
     * free slot (set up by tm_event_init, closed by tm_event_fini). */
#define TM_EVENT_SETS 8
    int event_sets[TM_EVENT_SETS];
    /* AEAD contexts behind the tmqtt_crypto import (NULL only if omitted). */
    tm_crypto *crypto;

    /* Import modules this run leaves out, as a host without them would
     * (--omit-import): not announced in TMQTT_HOST_IMPORTS, and a call traps. */
    unsigned omit;

    /* proc_exit unwinds to here with the exit code. */
    sigjmp_buf *exit_jmp;
    int exit_code;

    bool trace;           /* --trace: log every import call to stderr */
} tm_host;

/* -- linear memory ------------------------------------------------------------ */

static inline bool tm_mem_ok(const tm_host *h, uint32_t ptr, uint64_t len)
{
    return (uint64_t)ptr + len <= (uint64_t)h->mem->size;
}
static inline uint8_t *tm_mem(const tm_host *h, uint32_t ptr) { return h->mem->data + ptr; }

/* Little-endian loads/stores at a guest address already checked by tm_mem_ok. The
 * host is little-endian like WebAssembly (static assertion in wasi_fd.c). */
static inline uint16_t tm_ld16(const tm_host *h, uint32_t p) { uint16_t v; memcpy(&v, tm_mem(h, p), 2); return v; }
static inline uint32_t tm_ld32(const tm_host *h, uint32_t p) { uint32_t v; memcpy(&v, tm_mem(h, p), 4); return v; }
static inline uint64_t tm_ld64(const tm_host *h, uint32_t p) { uint64_t v; memcpy(&v, tm_mem(h, p), 8); return v; }
static inline void tm_st8(const tm_host *h, uint32_t p, uint8_t v) { *tm_mem(h, p) = v; }
static inline void tm_st16(const tm_host *h, uint32_t p, uint16_t v) { memcpy(tm_mem(h, p), &v, 2); }
static inline void tm_st32(const tm_host *h, uint32_t p, uint32_t v) { memcpy(tm_mem(h, p), &v, 4); }
static inline void tm_st64(const tm_host *h, uint32_t p, uint64_t v) { memcpy(tm_mem(h, p), &v, 8); }

/* Store a u32 result after checking the pointer; returns a WASI errno. */
static inline uint16_t tm_put32(const tm_host *h, uint32_t p, uint32_t v)
{
    if (!tm_mem_ok(h, p, 4)) return TM_EFAULT;
    tm_st32(h, p, v);
    return TM_ESUCCESS;
}
static inline uint16_t tm_put64(const tm_host *h, uint32_t p, uint64_t v)
{
    if (!tm_mem_ok(h, p, 8)) return TM_EFAULT;
    tm_st64(h, p, v);
    return TM_ESUCCESS;
}

/* Copy a guest string (ptr, len) into a fresh NUL-terminated host string; rejects
 * embedded NULs. Returns a WASI errno; *out must be freed. */
uint16_t tm_mem_strdup(const tm_host *h, uint32_t ptr, uint32_t len, char **out);

/* -- errno ------------------------------------------------------------------ */

/* Map a host errno value to the WASI errno. */
uint16_t tm_errno_from_host(int e);
/* Name of a WASI errno, for --trace and messages. */
const char *tm_errno_name(uint16_t e);

/* -- descriptor table (wasi_fd.c) -------------------------------------------- */

int tm_fd_init(tm_host *h, uint32_t max_fds);
void tm_fd_fini(tm_host *h);
/* Find a used slot; NULL when fd is out of range or free. */
tm_fd *tm_fd_get(tm_host *h, uint32_t fd);
/* Take the lowest free slot >= 3 for host descriptor hostfd. Returns WASI errno;
 * on failure the caller still owns hostfd. */
uint16_t tm_fd_alloc(tm_host *h, int kind, int hostfd, uint32_t *out);
/* Release a slot and close its host descriptor (stdio is only detached). */
void tm_fd_release(tm_host *h, uint32_t fd);
/* WASI filetype of a host descriptor (fstat + SO_TYPE). */
uint8_t tm_filetype_of(int hostfd);
/* Add a preopen; hostpath is opened now. Returns 0 or -1 with a message in err. */
int tm_fd_add_preopen(tm_host *h, const char *hostpath, const char *guestpath,
                      char *err, size_t errlen);

/* Build a host iovec array from a guest (c)iovec array. Returns WASI errno.
 * *iov is h-owned scratch or malloc'd (free with tm_iov_free). */
struct iovec;
uint16_t tm_iov_from_guest(tm_host *h, uint32_t iovs, uint32_t n, struct iovec **iov,
                           int *niov);
void tm_iov_free(struct iovec *iov);

/* -- sockets (wasi_sock.c) --------------------------------------------------- */

/* Parse "127.0.0.1/32,::1/128" (also bare addresses) into h->pool. */
int tm_pool_parse(tm_host *h, const char *spec, char *err, size_t errlen);
void tm_pool_fini(tm_host *h);

/* -- readiness sets (event.c) ------------------------------------------------ */

void tm_event_init(tm_host *h);
void tm_event_fini(tm_host *h);

/* -- traps (trap.c) ------------------------------------------------------------ */

void tm_trap_install(tm_host *h);
/* A call to an import module omitted with --omit-import: trap the way WAMR does for
 * an import it could not link, naming the import in the report. */
_Noreturn void tm_trap_unlinked(tm_host *h, const char *module, const char *field);
/* After a trap has unwound to the caller: print the message naming the trap and,
 * when the executable's symbol table allows, the wasm function. */
void tm_trap_report(int trap_code);

#define TM_TRACE(h, ...) do { if ((h)->trace) tm_trace_printf(__VA_ARGS__); } while (0)
void tm_trace_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
