/*
 * rproc's serial link, the firmware side: the C twin of transports/serial_frames.py and transports/serial_link.py
 * (specification: docs/uart-link.md). COBS frames ended by 0x00 with CRC-32, a HELLO/HELLO_ACK handshake with
 * sessions, go-back-N with 8-bit sequence numbers and cumulative ACKs. No malloc, no libc, no I/O: bytes come in
 * through sl_receive(), go out through the write callback; time is the caller's millisecond counter.
 */
#ifndef RPROC_SERIAL_LINK_H
#define RPROC_SERIAL_LINK_H

#include <stddef.h>
#include <stdint.h>

#define SL_VERSION 1u
#define SL_MAX_WINDOW 8u      /* frames kept for retransmission (the link runs with min(ours, peer's)) */
#define SL_MAX_PAYLOAD 256u   /* bytes of one message */
#define SL_HEADER 3u          /* type, seq, ack */
#define SL_CRC 4u
/* A frame on the wire: header + payload + CRC, COBS (+1 per 254, +1), the delimiter. */
#define SL_MAX_BODY (SL_HEADER + SL_MAX_PAYLOAD)
#define SL_MAX_WIRE (SL_MAX_BODY + SL_CRC + (SL_MAX_BODY + SL_CRC) / 254u + 2u)

enum sl_type { SL_HELLO = 1, SL_HELLO_ACK = 2, SL_DATA = 3, SL_ACK = 4 };
enum sl_event { SL_EV_CONNECTED = 1, SL_EV_PEER_RESET = 2 };

#define SL_OK 0
#define SL_ERR_TOO_BIG (-30)  /* the message exceeds the negotiated payload */
#define SL_ERR_FULL (-31)     /* the window is full: call sl_receive/sl_poll, then retry */
#define SL_ERR_DOWN (-32)     /* no handshake yet */

struct sl_link;
typedef void (*sl_write_fn)(void *ctx, const uint8_t *data, size_t len);
typedef void (*sl_deliver_fn)(void *ctx, const uint8_t *data, size_t len);
typedef void (*sl_event_fn)(void *ctx, int event, uint32_t value); /* CONNECTED: peer session; PEER_RESET: lost */

struct sl_link {
	/* configuration */
	uint32_t session;
	uint8_t window;
	uint16_t max_payload;
	uint32_t rto_ms;
	sl_write_fn write;
	sl_deliver_fn deliver;
	sl_event_fn event;
	void *ctx;
	/* state */
	uint8_t up, hello_pending, reply_hello, ack_due;
	uint32_t hello_due_ms;
	uint32_t peer_session;
	uint8_t have_peer;
	uint8_t eff_window;
	uint16_t eff_payload;
	uint8_t next_seq, expected;
	uint8_t in_flight, oldest; /* count and slot index of the oldest unacknowledged frame */
	uint32_t oldest_sent_ms;
	uint8_t slot_seq[SL_MAX_WINDOW];
	uint16_t slot_len[SL_MAX_WINDOW];
	uint8_t slot_data[SL_MAX_WINDOW][SL_MAX_PAYLOAD];
	/* receiving */
	uint8_t rx[SL_MAX_WIRE];
	uint16_t rx_len;
	uint8_t rx_overflow;
	/* counters */
	uint32_t bad_frames, retransmissions;
};

uint32_t sl_crc32(const uint8_t *data, size_t len);
/* COBS-encode len bytes into out (room for len + len/254 + 1); returns the encoded length. */
size_t sl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);
/* Decode in place-safe (out may equal in); returns the decoded length or -1 if malformed. */
int sl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out);

void sl_init(struct sl_link *l, uint32_t session, uint8_t window, uint16_t max_payload, uint32_t rto_ms,
	     sl_write_fn write, sl_deliver_fn deliver, sl_event_fn event, void *ctx);
void sl_start(struct sl_link *l, uint32_t now_ms);
int sl_send(struct sl_link *l, const uint8_t *data, size_t len, uint32_t now_ms);
void sl_receive(struct sl_link *l, const uint8_t *data, size_t len, uint32_t now_ms);
/* HELLOs and retransmissions that are due, and a pending ACK: call it now and then (and after sl_receive). */
void sl_poll(struct sl_link *l, uint32_t now_ms);

#endif
