/*
 * rproc's serial link, the firmware side: the C twin of transports/serial_frames.py and transports/serial_link.py
 * (specification: docs/uart-link.md). COBS frames ended by 0x00 with CRC-32, a HELLO/HELLO_ACK handshake whose
 * nonces the CRC of every later frame binds, go-back-N with 32-bit sequence numbers and cumulative ACKs. No
 * malloc, no libc, no I/O: bytes come in through sl_receive(), go out through the write callback; time is the
 * caller's millisecond counter.
 */
#ifndef RPROC_SERIAL_LINK_H
#define RPROC_SERIAL_LINK_H

#include <stddef.h>
#include <stdint.h>

#define SL_VERSION 2u
#define SL_MAX_WINDOW 8u      /* frames kept for retransmission (the link runs with min(ours, peer's)) */
#define SL_MAX_PAYLOAD 256u   /* bytes of one message (at least the 12 of a HELLO_ACK) */
#define SL_HEADER 5u          /* type u8, seq u16, ack u16: the low 16 bits of 32-bit sequence numbers */
#define SL_CRC 4u
#define SL_BOUND 16u          /* sender nonce, receiver nonce, seq u32, ack u32: in the CRC, not on the wire */
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
typedef void (*sl_event_fn)(void *ctx, int event, uint32_t value); /* CONNECTED: peer nonce; PEER_RESET: lost */

struct sl_link {
	/* configuration */
	uint8_t window;
	uint16_t max_payload;
	uint32_t rto_ms;
	sl_write_fn write;
	sl_deliver_fn deliver;
	sl_event_fn event;
	void *ctx;
	uint32_t rng; /* the nonces' generator: seeded by sl_init, stirred by sl_stir */
	/* the session: our nonce (of our HELLOs while not up) and the peer's */
	uint8_t up, hello_pending, ack_due, reply_pending;
	uint32_t nonce, peer_nonce;
	uint32_t hello_due_ms;
	uint32_t reply_mine, reply_echo; /* the HELLO_ACK to send */
	/* a session offered and not yet proven (docs/uart-link.md, "Handshake") */
	uint8_t cand_valid, cand_proven, cand_window;
	uint16_t cand_payload;
	uint32_t cand_peer, cand_mine;
	uint8_t eff_window;
	uint16_t eff_payload;
	uint32_t next_seq, expected;
	uint8_t in_flight, oldest; /* count and slot index of the oldest unacknowledged frame */
	uint32_t oldest_sent_ms;
	uint32_t slot_seq[SL_MAX_WINDOW];
	uint16_t slot_len[SL_MAX_WINDOW];
	uint8_t slot_data[SL_MAX_WINDOW][SL_MAX_PAYLOAD];
	/* receiving */
	uint8_t rx[SL_MAX_WIRE];
	uint16_t rx_len;
	uint8_t rx_overflow;
	/* counters: bad_frames counts every frame dropped as damaged, unbound among them those whose CRC matched
	 * neither the session nor the candidate (noise, or a frame of another session); stale_hellos the HELLO_ACKs
	 * echoing no nonce of ours now */
	uint32_t bad_frames, retransmissions, unbound, stale_hellos;
};

uint32_t sl_crc32(const uint8_t *data, size_t len);
/* COBS-encode len bytes into out (room for len + len/254 + 1); returns the encoded length. */
size_t sl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);
/* Decode in place-safe (out may equal in); returns the decoded length or -1 if malformed. */
int sl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out);

/* seed: the nonces' generator. It must differ at every boot, or a restarted side may not be recognised and frames
 * of its earlier sessions may be taken for current ones: seed from a true random source where the chip has one
 * (the RP2350's TRNG or ROSC), and stir in what varies (a timer read when bytes arrive) with sl_stir. */
void sl_init(struct sl_link *l, uint32_t seed, uint8_t window, uint16_t max_payload, uint32_t rto_ms,
	     sl_write_fn write, sl_deliver_fn deliver, sl_event_fn event, void *ctx);
void sl_stir(struct sl_link *l, uint32_t entropy);
/* Begin the handshake with a fresh nonce (again: a session in use ends). */
void sl_start(struct sl_link *l, uint32_t now_ms);
int sl_send(struct sl_link *l, const uint8_t *data, size_t len, uint32_t now_ms);
void sl_receive(struct sl_link *l, const uint8_t *data, size_t len, uint32_t now_ms);
/* HELLOs and retransmissions that are due, and a pending ACK: call it now and then (and after sl_receive). */
void sl_poll(struct sl_link *l, uint32_t now_ms);
/* 1 when nothing of the link waits on time (connected, no frame unacknowledged, no ACK, HELLO or HELLO_ACK due): a
 * core may then sleep until the next byte arrives (docs/mcu.md, "Sleeping"); 0: call sl_poll as time passes. */
int sl_quiet(const struct sl_link *l);

#endif
