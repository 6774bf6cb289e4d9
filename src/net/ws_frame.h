/*
 * ws_frame.h — RFC 6455 framing for the server side, sans I/O.
 *
 * The decoder is incremental and works in place: it is handed the wire bytes
 * as they arrive, strips frame headers, unmasks payloads and moves the data
 * bytes of binary frames to the front of the same buffer. It keeps no copy of
 * data: a frame of any length streams through, split across reads or with
 * several frames in one read, and only a header being assembled (<= 14
 * bytes) or a control frame's payload (<= 125 bytes) is held between calls.
 * That is what keeps a WebSocket connection's memory small whatever its
 * traffic (docs/websockets.md).
 *
 * Checked, as a server must (each failure carries the close status to send):
 * client frames masked; no RSV bits (no extension is ever negotiated); known
 * opcodes; control frames final and <= 125 bytes; continuation frames only
 * inside a fragmented message, no new data message inside one; minimal
 * length encodings; close frames with a valid status code and a UTF-8
 * reason. MQTT travels in binary frames only [MQTT-6.0.0-1]: a text frame is
 * refused with 1003.
 */
#ifndef TM_NET_WS_FRAME_H
#define TM_NET_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    TM_WS_OP_CONT = 0x0, TM_WS_OP_TEXT = 0x1, TM_WS_OP_BINARY = 0x2,
    TM_WS_OP_CLOSE = 0x8, TM_WS_OP_PING = 0x9, TM_WS_OP_PONG = 0xA,
};

/* What tm_wsf_decode stopped for. */
enum {
    TM_WSF_MORE = 0,             /* input used up: give it more bytes */
    TM_WSF_PING,                 /* a complete ping: its payload in ctl[0..ctl_len) */
    TM_WSF_PONG,                 /* a complete pong (ignored by servers) */
    TM_WSF_CLOSE,                /* a complete close frame: close_code, ctl = reason */
    TM_WSF_ERROR,                /* protocol violation: err_code to close with, why */
};

typedef struct tm_wsf_dec {
    uint8_t hdr[14];             /* header being assembled */
    uint8_t hlen;
    uint8_t opcode;              /* of the current frame */
    bool in_header;              /* false while a payload streams */
    bool in_message;             /* a fragmented data message has not ended */
    bool fin;
    uint8_t mask[4];
    uint8_t mpos;                /* mask offset of the next payload byte */
    uint64_t left;               /* payload bytes of the current frame still to come */
    uint8_t ctl[125];            /* control frame payload */
    uint8_t ctl_len;
    uint16_t close_code;         /* TM_WSF_CLOSE: 1005 when the frame had none */
    uint16_t err_code;           /* TM_WSF_ERROR: status to close with */
    const char *why;             /* TM_WSF_ERROR */
} tm_wsf_dec;

void tm_wsf_init(tm_wsf_dec *d);

/* Decodes buf[*in .. n): data bytes are written to buf[*out ..] (never past
 * the input position, so one buffer serves both) and both positions advance.
 * Returns at the end of the input (TM_WSF_MORE) or after a control frame or
 * an error; call again with the same positions to go on. After TM_WSF_ERROR
 * the decoder must not be used again. */
int tm_wsf_decode(tm_wsf_dec *d, uint8_t *buf, size_t n, size_t *in, size_t *out);

/* A server frame header (unmasked) for `len` payload bytes into out[0..10);
 * returns its length. */
size_t tm_wsf_header(uint8_t out[10], uint8_t opcode, bool fin, uint64_t len);

/* Is this a status code an endpoint may send in a close frame (RFC 6455 7.4)? */
bool tm_wsf_valid_close_code(uint16_t code);

#endif
