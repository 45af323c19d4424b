/*
 * rproc's serial link, firmware side: see rproc/serial_link.h and docs/uart-link.md. Every rule here has its twin
 * in transports/serial_link.py; tests/firmware/test_serial_link_c.py runs the two against each other.
 * One file (a little over the project's ~400 lines), as its twin is one module: framing, handshake and retransmission
 * share struct sl_link and its static helpers, and firmware/Makefile links it from one source list.
 */
#include "rproc/serial_link.h"

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), a nibble at a time: 64 bytes of table. */
static const uint32_t crc_nibble[16] = {
	0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
	0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

static uint32_t crc_update(uint32_t crc, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		crc ^= data[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 15u];
		crc = (crc >> 4) ^ crc_nibble[crc & 15u];
	}
	return crc;
}

uint32_t sl_crc32(const uint8_t *data, size_t len)
{
	return crc_update(0xFFFFFFFFu, data, len) ^ 0xFFFFFFFFu;
}

size_t sl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t code_at = 0, pos = 1;
	uint8_t code = 1;
	for (size_t i = 0; i < len; i++) {
		if (in[i]) {
			out[pos++] = in[i];
			code++;
		}
		if (!in[i] || code == 255) {
			out[code_at] = code;
			code_at = pos++;
			code = 1;
		}
	}
	if (code == 1 && len && in[len - 1]) {
		pos--; /* the data ended with a full 254-byte block: no empty block after it */
	} else {
		out[code_at] = code;
	}
	return pos;
}

int sl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t pos = 0, n = 0;
	while (pos < len) {
		uint8_t code = in[pos];
		if (code == 0 || pos + code > len)
			return -1;
		for (size_t i = 1; i < code; i++)
			out[n++] = in[pos + i];
		pos += code;
		if (code < 255 && pos < len)
			out[n++] = 0;
	}
	return (int)n;
}

static int after(uint32_t now, uint32_t due)
{
	return (int32_t)(now - due) >= 0;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static uint32_t get16(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (get16(p + 2) << 16);
}

/* murmur3's finaliser: the nonce generator's output and its stirring. */
static uint32_t mix32(uint32_t z)
{
	z = (z ^ (z >> 16)) * 0x85EBCA6Bu;
	z = (z ^ (z >> 13)) * 0xC2B2AE35u;
	return z ^ (z >> 16);
}

static uint32_t fresh(struct sl_link *l)
{
	l->rng += 0x9E3779B9u;
	return mix32(l->rng);
}

void sl_stir(struct sl_link *l, uint32_t entropy)
{
	l->rng = mix32(l->rng ^ mix32(entropy + 0x9E3779B9u));
}

/* The 32-bit number with these low 16 bits nearest to ref (within -32768..+32767). */
static uint32_t near(uint32_t ref, uint32_t low)
{
	return ref + ((low - ref + 0x8000u) & 0xFFFFu) - 0x8000u;
}

/* The CRC of bound || body: the pseudo-header {sender nonce, receiver nonce, seq, ack} the wire does not carry. */
static uint32_t bound_crc(uint32_t sender, uint32_t receiver, uint32_t seq, uint32_t ack, const uint8_t *body,
			  size_t len)
{
	uint8_t b[SL_BOUND];
	put32(b, sender);
	put32(b + 4, receiver);
	put32(b + 8, seq);
	put32(b + 12, ack);
	return crc_update(crc_update(0xFFFFFFFFu, b, sizeof b), body, len) ^ 0xFFFFFFFFu;
}

/* One frame; bound: the CRC binds (mine, peer, seq, ack) — a DATA or ACK frame — else it covers the body alone. */
static void frame(struct sl_link *l, uint8_t kind, uint32_t seq, uint32_t ack, const uint8_t *payload, size_t len,
		  int bound, uint32_t mine, uint32_t peer)
{
	uint8_t body[SL_MAX_BODY + SL_CRC];
	uint8_t wire[SL_MAX_WIRE];
	body[0] = kind;
	put16(body + 1, seq);
	put16(body + 3, ack);
	for (size_t i = 0; i < len; i++)
		body[SL_HEADER + i] = payload[i];
	size_t n = SL_HEADER + len;
	put32(body + n, bound ? bound_crc(mine, peer, seq, ack, body, n) : sl_crc32(body, n));
	n = sl_cobs_encode(body, n + SL_CRC, wire);
	wire[n++] = 0;
	l->write(l->ctx, wire, n);
}

/* A DATA frame (an ACK with ack_only) of the session in use: every one carries the cumulative ack. */
static void data_frame(struct sl_link *l, int ack_only, uint32_t seq, const uint8_t *payload, size_t len)
{
	l->ack_due = 0;
	frame(l, ack_only ? SL_ACK : SL_DATA, ack_only ? 0 : seq, l->expected, payload, len, 1, l->nonce,
	      l->peer_nonce);
}

static void hello(struct sl_link *l, uint8_t kind, uint32_t nonce, uint32_t echo)
{
	uint8_t p[12];
	p[0] = SL_VERSION;
	p[1] = l->window;
	put16(p + 2, l->max_payload);
	put32(p + 4, nonce);
	put32(p + 8, echo);
	frame(l, kind, 0, 0, p, kind == SL_HELLO ? 8u : 12u, 0, 0, 0);
}

static void reset_sequences(struct sl_link *l)
{
	l->next_seq = 0;
	l->expected = 0;
	l->in_flight = 0;
	l->oldest = 0;
	l->ack_due = 0;
}

void sl_init(struct sl_link *l, uint32_t seed, uint8_t window, uint16_t max_payload, uint32_t rto_ms,
	     sl_write_fn write, sl_deliver_fn deliver, sl_event_fn event, void *ctx)
{
	uint8_t *p = (uint8_t *)l;
	for (size_t i = 0; i < sizeof *l; i++)
		p[i] = 0;
	l->rng = seed;
	l->window = window == 0 ? 1 : (window > SL_MAX_WINDOW ? SL_MAX_WINDOW : window);
	l->max_payload = max_payload == 0 ? 1 : (max_payload > SL_MAX_PAYLOAD ? SL_MAX_PAYLOAD : max_payload);
	l->rto_ms = rto_ms;
	l->write = write;
	l->deliver = deliver;
	l->event = event;
	l->ctx = ctx;
	l->eff_window = l->window;
	l->eff_payload = l->max_payload;
	reset_sequences(l);
}

void sl_start(struct sl_link *l, uint32_t now_ms)
{
	reset_sequences(l);
	l->up = 0;
	l->cand_valid = 0;
	l->reply_pending = 0;
	l->nonce = fresh(l);
	l->hello_pending = 1;
	l->hello_due_ms = now_ms;
	sl_poll(l, now_ms);
}

int sl_send(struct sl_link *l, const uint8_t *data, size_t len, uint32_t now_ms)
{
	if (!l->up)
		return SL_ERR_DOWN;
	if (len > l->eff_payload)
		return SL_ERR_TOO_BIG;
	if (l->in_flight >= l->eff_window)
		return SL_ERR_FULL;
	uint8_t slot = (uint8_t)((l->oldest + l->in_flight) % SL_MAX_WINDOW);
	for (size_t i = 0; i < len; i++)
		l->slot_data[slot][i] = data[i];
	l->slot_len[slot] = (uint16_t)len;
	l->slot_seq[slot] = l->next_seq++;
	if (l->in_flight == 0)
		l->oldest_sent_ms = now_ms;
	l->in_flight++;
	data_frame(l, 0, l->slot_seq[slot], data, len);
	return SL_OK;
}

static void on_ack(struct sl_link *l, uint32_t ack, uint32_t now_ms)
{
	if (!l->in_flight)
		return;
	uint32_t freed = ack - l->slot_seq[l->oldest];
	if (freed > 0 && freed <= l->in_flight) {
		l->oldest = (uint8_t)((l->oldest + freed) % SL_MAX_WINDOW);
		l->in_flight = (uint8_t)(l->in_flight - freed);
		l->oldest_sent_ms = now_ms; /* the rest get a fresh timeout */
	}
}

/* The candidate proved itself: it becomes the session (a session in use ends: the peer restarted). */
static void commit(struct sl_link *l)
{
	if (l->up) {
		uint32_t lost = l->in_flight;
		reset_sequences(l);
		if (l->event)
			l->event(l->ctx, SL_EV_PEER_RESET, lost);
	}
	l->nonce = l->cand_mine;
	l->peer_nonce = l->cand_peer;
	l->eff_window = l->cand_window < l->window ? l->cand_window : l->window;
	l->eff_payload = l->cand_payload < l->max_payload ? l->cand_payload : l->max_payload;
	l->cand_valid = 0;
	l->up = 1;
	l->hello_pending = 0;
	l->ack_due = 1; /* tell the peer, which may still wait for proof of us */
	if (l->event)
		l->event(l->ctx, SL_EV_CONNECTED, l->peer_nonce);
}

/* HELLO and HELLO_ACK: version, window 1..127, max payload >= 1; 0 if malformed. */
static int hello_ok(const uint8_t *p, size_t len, size_t need)
{
	return len >= need && p[0] == SL_VERSION && p[1] != 0 && p[1] <= 127 && get16(p + 2) != 0;
}

static void on_hello(struct sl_link *l, const uint8_t *p, size_t len)
{
	if (!hello_ok(p, len, 8)) {
		l->bad_frames++;
		return;
	}
	uint32_t nonce = get32(p + 4);
	l->reply_pending = 1;
	l->reply_echo = nonce;
	if (l->up && nonce == l->peer_nonce) {
		l->reply_mine = l->nonce; /* the peer has not seen our answer yet */
		l->ack_due = 1;           /* ... nor a frame of the session: this one proves it */
		return;
	}
	if (!l->cand_valid || (l->cand_peer != nonce && !l->cand_proven)) {
		/* Unproven: this HELLO may be a replay. Up, we answer with a fresh nonce and go on with the session in
		 * use; only a peer that receives the answer now can prove the candidate. */
		l->cand_valid = 1;
		l->cand_proven = 0;
		l->cand_peer = nonce;
		l->cand_mine = l->up ? fresh(l) : l->nonce;
		l->cand_window = p[1];
		l->cand_payload = (uint16_t)get16(p + 2);
	}
	l->reply_mine = l->cand_peer == nonce ? l->cand_mine : l->nonce;
}

static void on_hello_ack(struct sl_link *l, const uint8_t *p, size_t len)
{
	if (!hello_ok(p, len, 12)) {
		l->bad_frames++;
		return;
	}
	if (l->up || get32(p + 8) != l->nonce) {
		l->stale_hellos++; /* an answer to a HELLO we did not send now (a repeat, or a replay) */
		return;
	}
	l->cand_valid = 1;
	l->cand_proven = 1;
	l->cand_peer = get32(p + 4);
	l->cand_mine = l->nonce;
	l->cand_window = p[1];
	l->cand_payload = (uint16_t)get16(p + 2);
	l->ack_due = 1; /* confirm: the peer joins on this frame, we on its answer */
}

/* A bound frame's CRC checked against a session: the full seq and ack it carries, or 0. */
static int bound_matches(uint8_t kind, const uint8_t *body, size_t len, uint32_t crc, uint32_t peer, uint32_t mine,
			 uint32_t expected, uint32_t next_seq, uint32_t *seq, uint32_t *ack)
{
	*seq = kind == SL_DATA ? near(expected, get16(body + 1)) : get16(body + 1);
	*ack = near(next_seq, get16(body + 3));
	return bound_crc(peer, mine, *seq, *ack, body, len) == crc;
}

static void on_frame(struct sl_link *l, const uint8_t *body, size_t len, uint32_t crc, uint32_t now_ms)
{
	if (len < SL_HEADER) {
		l->bad_frames++;
		return;
	}
	uint8_t kind = body[0];
	if (kind == SL_HELLO || kind == SL_HELLO_ACK) {
		if (sl_crc32(body, len) != crc)
			l->bad_frames++;
		else if (kind == SL_HELLO)
			on_hello(l, body + SL_HEADER, len - SL_HEADER);
		else
			on_hello_ack(l, body + SL_HEADER, len - SL_HEADER);
		return;
	}
	if (kind != SL_DATA && kind != SL_ACK) {
		l->bad_frames++;
		return;
	}
	uint32_t seq, ack;
	int found = l->up && bound_matches(kind, body, len, crc, l->peer_nonce, l->nonce, l->expected, l->next_seq,
					   &seq, &ack);
	if (!found && l->cand_valid &&
	    bound_matches(kind, body, len, crc, l->cand_peer, l->cand_mine, 0, 0, &seq, &ack)) {
		commit(l);
		found = 1;
	}
	if (!found) {
		l->unbound++;
		l->bad_frames++;
		return;
	}
	on_ack(l, ack, now_ms);
	if (kind == SL_DATA) {
		if (seq == l->expected) {
			l->expected++;
			l->deliver(l->ctx, body + SL_HEADER, len - SL_HEADER);
		}
		l->ack_due = 1; /* in order, duplicate or after a gap: say where we stand */
	}
}

void sl_receive(struct sl_link *l, const uint8_t *data, size_t len, uint32_t now_ms)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t b = data[i];
		if (b != 0) {
			if (l->rx_len < sizeof l->rx)
				l->rx[l->rx_len++] = b;
			else
				l->rx_overflow = 1;
			continue;
		}
		if (l->rx_overflow) {
			l->bad_frames++;
		} else if (l->rx_len) {
			int n = sl_cobs_decode(l->rx, l->rx_len, l->rx); /* decoding never grows: in place */
			if (n < (int)SL_CRC)
				l->bad_frames++;
			else
				on_frame(l, l->rx, (size_t)n - SL_CRC, get32(l->rx + n - SL_CRC), now_ms);
		}
		l->rx_len = 0;
		l->rx_overflow = 0;
	}
	sl_poll(l, now_ms);
}

void sl_poll(struct sl_link *l, uint32_t now_ms)
{
	if (l->reply_pending) {
		l->reply_pending = 0;
		hello(l, SL_HELLO_ACK, l->reply_mine, l->reply_echo);
	}
	if (l->hello_pending && after(now_ms, l->hello_due_ms)) {
		hello(l, SL_HELLO, l->nonce, 0);
		l->hello_due_ms = now_ms + l->rto_ms;
	}
	if (!l->up) {
		if (l->ack_due && l->cand_valid && l->cand_proven) {
			/* confirm the candidate: a frame bound to the nonce the peer just gave us */
			l->ack_due = 0;
			frame(l, SL_ACK, 0, 0, 0, 0, 1, l->cand_mine, l->cand_peer);
		}
		return;
	}
	if (l->in_flight && after(now_ms, l->oldest_sent_ms + l->rto_ms)) {
		for (uint8_t k = 0; k < l->in_flight; k++) { /* go-back-N: everything from the oldest on */
			uint8_t slot = (uint8_t)((l->oldest + k) % SL_MAX_WINDOW);
			data_frame(l, 0, l->slot_seq[slot], l->slot_data[slot], l->slot_len[slot]);
			l->retransmissions++;
		}
		l->oldest_sent_ms = now_ms;
	}
	if (l->ack_due)
		data_frame(l, 1, 0, 0, 0);
}

int sl_quiet(const struct sl_link *l)
{
	return l->up && !l->hello_pending && !l->reply_pending && !l->ack_due && !l->in_flight;
}
