/*
 * wasi_abi.h — WASI preview 1 and WAMR socket-extension constants and structure
 * offsets, as seen from the host (internal to src/runtime/).
 *
 * The values are those of wasi-libc's <wasi/api.h> (witx-generated) for the module's
 * side; they are restated here because that header only compiles for wasm32. Layout
 * offsets are for wasm32 (4-byte pointers, little-endian), checked against the
 * _Static_assert lines of <wasi/api.h> and WAMR's wasi_socket_ext.h.
 */
#ifndef TM_RUNTIME_WASI_ABI_H
#define TM_RUNTIME_WASI_ABI_H

/* errno */
#define TM_ESUCCESS 0
#define TM_E2BIG 1
#define TM_EACCES 2
#define TM_EADDRINUSE 3
#define TM_EADDRNOTAVAIL 4
#define TM_EAFNOSUPPORT 5
#define TM_EAGAIN 6
#define TM_EALREADY 7
#define TM_EBADF 8
#define TM_EBADMSG 9
#define TM_EBUSY 10
#define TM_ECANCELED 11
#define TM_ECHILD 12
#define TM_ECONNABORTED 13
#define TM_ECONNREFUSED 14
#define TM_ECONNRESET 15
#define TM_EDEADLK 16
#define TM_EDESTADDRREQ 17
#define TM_EDOM 18
#define TM_EDQUOT 19
#define TM_EEXIST 20
#define TM_EFAULT 21
#define TM_EFBIG 22
#define TM_EHOSTUNREACH 23
#define TM_EIDRM 24
#define TM_EILSEQ 25
#define TM_EINPROGRESS 26
#define TM_EINTR 27
#define TM_EINVAL 28
#define TM_EIO 29
#define TM_EISCONN 30
#define TM_EISDIR 31
#define TM_ELOOP 32
#define TM_EMFILE 33
#define TM_EMLINK 34
#define TM_EMSGSIZE 35
#define TM_EMULTIHOP 36
#define TM_ENAMETOOLONG 37
#define TM_ENETDOWN 38
#define TM_ENETRESET 39
#define TM_ENETUNREACH 40
#define TM_ENFILE 41
#define TM_ENOBUFS 42
#define TM_ENODEV 43
#define TM_ENOENT 44
#define TM_ENOEXEC 45
#define TM_ENOLCK 46
#define TM_ENOLINK 47
#define TM_ENOMEM 48
#define TM_ENOMSG 49
#define TM_ENOPROTOOPT 50
#define TM_ENOSPC 51
#define TM_ENOSYS 52
#define TM_ENOTCONN 53
#define TM_ENOTDIR 54
#define TM_ENOTEMPTY 55
#define TM_ENOTRECOVERABLE 56
#define TM_ENOTSOCK 57
#define TM_ENOTSUP 58
#define TM_ENOTTY 59
#define TM_ENXIO 60
#define TM_EOVERFLOW 61
#define TM_EOWNERDEAD 62
#define TM_EPERM 63
#define TM_EPIPE 64
#define TM_EPROTO 65
#define TM_EPROTONOSUPPORT 66
#define TM_EPROTOTYPE 67
#define TM_ERANGE 68
#define TM_EROFS 69
#define TM_ESPIPE 70
#define TM_ESRCH 71
#define TM_ESTALE 72
#define TM_ETIMEDOUT 73
#define TM_ETXTBSY 74
#define TM_EXDEV 75
#define TM_ENOTCAPABLE 76

/* filetype */
#define TM_FT_UNKNOWN 0
#define TM_FT_BLOCK 1
#define TM_FT_CHAR 2
#define TM_FT_DIR 3
#define TM_FT_REG 4
#define TM_FT_SOCK_DGRAM 5
#define TM_FT_SOCK_STREAM 6
#define TM_FT_SYMLINK 7

/* fdflags */
#define TM_FDFLAG_APPEND 1
#define TM_FDFLAG_DSYNC 2
#define TM_FDFLAG_NONBLOCK 4
#define TM_FDFLAG_RSYNC 8
#define TM_FDFLAG_SYNC 16

/* oflags */
#define TM_O_CREAT 1
#define TM_O_DIRECTORY 2
#define TM_O_EXCL 4
#define TM_O_TRUNC 8

/* lookupflags */
#define TM_LOOKUP_SYMLINK_FOLLOW 1

/* rights: the first 30 bits (fd_datasync .. sock_accept). Rights are reported but
 * confinement does not rely on them: see docs/wasm-runtime.md. */
#define TM_RIGHTS_ALL 0x3fffffffULL
#define TM_RIGHT_FD_READ (1ULL << 1)
#define TM_RIGHT_FD_WRITE (1ULL << 6)

/* whence */
#define TM_WHENCE_SET 0
#define TM_WHENCE_CUR 1
#define TM_WHENCE_END 2

/* clocks */
#define TM_CLOCK_REALTIME 0
#define TM_CLOCK_MONOTONIC 1
#define TM_CLOCK_PROCESS_CPUTIME 2
#define TM_CLOCK_THREAD_CPUTIME 3

/* fstflags (filestat_set_times) */
#define TM_FST_ATIM 1
#define TM_FST_ATIM_NOW 2
#define TM_FST_MTIM 4
#define TM_FST_MTIM_NOW 8

/* poll_oneoff */
#define TM_EVT_CLOCK 0
#define TM_EVT_FD_READ 1
#define TM_EVT_FD_WRITE 2
#define TM_SUBCLOCK_ABSTIME 1
#define TM_EVRW_HANGUP 1
#define TM_SUBSCRIPTION_SIZE 48
#define TM_EVENT_SIZE 32

/* sock_recv / sock_send / sock_shutdown */
#define TM_RIFLAG_PEEK 1
#define TM_RIFLAG_WAITALL 2
#define TM_ROFLAG_TRUNCATED 1
#define TM_SDFLAG_RD 1
#define TM_SDFLAG_WR 2

/* structure sizes (wasm32) */
#define TM_FDSTAT_SIZE 24
#define TM_FILESTAT_SIZE 64
#define TM_DIRENT_SIZE 24
#define TM_PRESTAT_SIZE 8
#define TM_IOVEC_SIZE 8

/* WAMR socket extension (wasi_socket_ext.h):
 *   __wasi_address_family_t: INET4 = 0, INET6 = 1 (INET_UNSPEC = 2 in newer WAMR)
 *   __wasi_sock_type_t: SOCKET_DGRAM = 0, SOCKET_STREAM = 1
 *   __wasi_addr_t (24 bytes): u32 kind (IPv4 = 0, IPv6 = 1) @0, then
 *     ip4: u8 n0..n3 @4..7, u16 port @8 (host = little-endian order)
 *     ip6: u16 n0,n1,n2,n3,h0,h1,h2,h3 @4..19 (each a host-order 16-bit group),
 *          u16 port @20
 *   __wasi_addr_info_t (28 bytes): __wasi_addr_t @0, u32 type @24
 *   __wasi_addr_info_hints_t (12 bytes): u32 type @0, u32 family @4, u8 enabled @8
 */
#define TM_WAMR_INET4 0
#define TM_WAMR_INET6 1
#define TM_WAMR_INET_UNSPEC 2
#define TM_WAMR_SOCK_DGRAM 0
#define TM_WAMR_SOCK_STREAM 1
#define TM_WAMR_ADDR_SIZE 24
#define TM_WAMR_ADDRINFO_SIZE 28

#endif
