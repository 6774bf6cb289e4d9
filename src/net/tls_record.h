/*
 * tls_record.h — the TLS 1.3 record layer (RFC 8446 section 5) of a server
 * connection whose handshake OpenSSL completed: what kTLS does in the
 * kernel, done here, so that the connection's SSL object (about 14 KB while
 * idle, docs/tls-record-layer.md) can be freed after the handshake.
 *
 * What it does: application data both ways in records of at most 2^14
 * bytes (nonce = iv XOR sequence number, the 5-byte header as additional
 * data); TLSInnerPlaintext padding stripped; alerts (close_notify ends the
 * stream, user_canceled is ignored as OpenSSL does, any other alert fails
 * it with the alert's name); KeyUpdate from the peer (split over records or
 * not; answered with our own KeyUpdate when the peer asks for it). Every
 * violation is a fatal error that queues the matching encrypted alert.
 * What it does not do: the handshake, TLS 1.2, 0-RTT, session tickets,
 * post-handshake client authentication, the client role, padding its own
 * records. Our sending key moves on by itself every 2^24 records (RFC 8446
 * section 5.5's AES-GCM limit is about 2^24.5 full-size records).
 *
 * Per connection it keeps only the traffic secrets (for KeyUpdate), keys,
 * IVs, sequence numbers and a few flags. Two allocations exist only while
 * non-empty: `in`, a record of which only a part arrived or decrypted bytes
 * the caller's buffer could not take (never both), and `out`, ciphertext the
 * socket has not taken yet (the tail of a record, a KeyUpdate, an alert).
 * No EVP_CIPHER_CTX per connection: one per suite and direction per thread,
 * re-keyed when another connection's record comes through it. A tm_tlsrec
 * is used and freed by one thread.
 *
 * I/O goes through the two callbacks of tm_tlsrec_io (the socket below, in
 * the broker; canned bytes in the fuzzer), so the same code reads in both.
 * Reading decrypts whole records in place in the caller's buffer: the
 * ciphertext is read there and its plaintext compacted to the front.
 *
 * Conventions are those of stream.h: read >0 bytes, 0 end of stream, -1
 * failed, -2 would block (*want = TM_EV_READ / TM_EV_WRITE); write >0, -1,
 * -2. A write that returned -2 while holding a record's ciphertext must be
 * retried with the same bytes (at least as many): the retry reports them
 * written once their record left (OpenSSL's SSL_write contract).
 */
#ifndef TM_NET_TLS_RECORD_H
#define TM_NET_TLS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TM_TLSREC_MAX_PLAIN 16384u          /* 2^14 bytes of plaintext per record */
#define TM_TLSREC_MAX_CIPHER (16384u + 256u) /* largest TLSCiphertext.length accepted */
#define TM_TLSREC_OVERHEAD 22u               /* header 5 + content type 1 + tag 16 */
#define TM_TLSREC_MAX_SECRET 48u             /* SHA-384 */

/* Record content types and the alerts this layer sends or names. */
enum {
    TM_TLS_CT_CHANGE_CIPHER_SPEC = 20,
    TM_TLS_CT_ALERT = 21,
    TM_TLS_CT_HANDSHAKE = 22,
    TM_TLS_CT_APPLICATION_DATA = 23,
};
enum {
    TM_TLS_AD_CLOSE_NOTIFY = 0,
    TM_TLS_AD_UNEXPECTED_MESSAGE = 10,
    TM_TLS_AD_BAD_RECORD_MAC = 20,
    TM_TLS_AD_RECORD_OVERFLOW = 22,
    TM_TLS_AD_ILLEGAL_PARAMETER = 47,
    TM_TLS_AD_DECODE_ERROR = 50,
    TM_TLS_AD_INTERNAL_ERROR = 80,
    TM_TLS_AD_USER_CANCELED = 90,
};

typedef struct tm_tlsrec tm_tlsrec;

/* The bytes below: read into buf / send from buf, up to n. Both return >0
 * bytes, -1 failed (the reason is the callee's), -2 would block; read
 * returns 0 at end of stream. */
typedef struct tm_tlsrec_io {
    long (*read)(void *arg, void *buf, size_t n);
    long (*write)(void *arg, const void *buf, size_t n);
    void *arg;
} tm_tlsrec_io;

/* Is `suite` (the IANA number: 0x1301 TLS_AES_128_GCM_SHA256, 0x1302
 * TLS_AES_256_GCM_SHA384, 0x1303 TLS_CHACHA20_POLY1305_SHA256) one we do? */
bool tm_tlsrec_suite_supported(uint16_t suite);
/* Hash length of the suite's traffic secrets (0 for another suite). */
size_t tm_tlsrec_secret_len(uint16_t suite);

/* The record layer from the two application traffic secrets of generation
 * 0 (RFC 8446 section 7.1): rx the peer's, tx ours, each
 * tm_tlsrec_secret_len(suite) bytes; both sequence numbers start at 0. The
 * caller's copies may be cleansed at once. NULL with a reason. */
tm_tlsrec *tm_tlsrec_new(uint16_t suite, const uint8_t *rx_secret, const uint8_t *tx_secret,
                         size_t secret_len, char *err, size_t errcap);
/* Cleanses and frees (NULL is a no-op). */
void tm_tlsrec_free(tm_tlsrec *r);

/* Plaintext into buf (at most n bytes). Decrypted bytes that did not fit
 * are kept for the next call (tm_tlsrec_pending). After close_notify, 0
 * for ever. -1: a fatal error; err says why ("" when the I/O below failed:
 * the reason is the callee's), and the alert is sent as far as the socket
 * takes it at once. */
long tm_tlsrec_read(tm_tlsrec *r, const tm_tlsrec_io *io, void *buf, size_t n, unsigned *want,
                    char *err, size_t errcap);
/* buf[0..n) in records of at most 2^14 bytes; see the retry contract above.
 * n == 0 only sends what waits (0 done, -2 not yet). */
long tm_tlsrec_write(tm_tlsrec *r, const tm_tlsrec_io *io, const void *buf, size_t n,
                     unsigned *want, char *err, size_t errcap);
/* Sends close_notify (after whatever waits): 1 sent, 0 would block (*want
 * set; call again), -1 nothing may be sent (a fatal error) or the I/O failed. */
int tm_tlsrec_shutdown(tm_tlsrec *r, const tm_tlsrec_io *io, unsigned *want);
/* Decrypted bytes wait that no socket readiness will announce. */
bool tm_tlsrec_pending(const tm_tlsrec *r);
/* The peer sent close_notify. */
bool tm_tlsrec_closed(const tm_tlsrec *r);
/* A fatal error happened (ours or the peer's alert): nothing more is sent. */
bool tm_tlsrec_failed(const tm_tlsrec *r);
/* Bytes this connection holds beyond its fixed state (in + out buffers). */
size_t tm_tlsrec_buffered(const tm_tlsrec *r);

/* For tests: move our sending key on after this many records (0: the
 * default, 2^24). Process-wide. */
void tm_tlsrec_set_rekey_interval(uint64_t records);

/* Frees this thread's cipher contexts (at thread or program end; they are
 * made again when needed). */
void tm_tlsrec_thread_cleanup(void);

#endif
