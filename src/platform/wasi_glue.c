/*
 * wasi_glue.c — the few POSIX functions a WASI program links against but that
 * WASI preview 1 has no notion of (guest side; compiled only for wasm32-wasi).
 *
 * WASI has no processes and no users: OpenSSL (RNG fork detection, file
 * permission checks) and the broker only need a stable answer. Identity is not a
 * security boundary inside the sandbox; the runtime's preopens and address pool are.
 * Do not also link -lwasi-emulated-getpid (duplicate getpid).
 */
#ifdef __wasi__
#include <sys/types.h>
#include <unistd.h>

pid_t getpid(void) { return 1; }
uid_t getuid(void) { return 0; }
uid_t geteuid(void) { return 0; }
gid_t getgid(void) { return 0; }
gid_t getegid(void) { return 0; }
#endif
