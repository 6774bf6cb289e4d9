/*
 * hex.h — the project's one hexadecimal codec (over OpenSSL's
 * OPENSSL_hexstr2buf_ex / OPENSSL_buf2hexstr_ex), for logs, policies,
 * claims and tools.
 */
#ifndef TM_ATTEST_HEX_H
#define TM_ATTEST_HEX_H
#include <stddef.h>
#include <stdint.h>

/* hexlen digits (either case) into at most cap bytes: the byte count, or -1
 * for odd length, a non-hex digit or too little room. */
long tm_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t cap);
/* n bytes as 2n lower-case digits plus a NUL into out (room: 2n + 1). */
void tm_hex_encode(const uint8_t *in, size_t n, char *out);

#endif
