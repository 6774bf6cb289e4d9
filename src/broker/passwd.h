/*
 * passwd.h — password hashing shared by the broker (auth.c) and the
 * tmqtt-passwd tool: Mosquitto's `$7$` format, PBKDF2-HMAC-SHA512.
 */
#ifndef TM_PASSWD_H
#define TM_PASSWD_H

#include <stddef.h>
#include <stdint.h>

#define TM_PASSWD_DEFAULT_ITERATIONS 20000

int tm_passwd_hash(const char *password, const uint8_t *salt, size_t salt_len,
                   unsigned iterations, uint8_t out[64]);
/* Decode standard base64 with padding; returns bytes written or -1. */
int tm_b64_decode(const char *in, uint8_t *out, size_t cap);
/* Encode n bytes; out needs 4*ceil(n/3)+1 bytes. */
void tm_b64_encode(const uint8_t *in, size_t n, char *out);

#endif
