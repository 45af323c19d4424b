/*
 * rproc's serial link, firmware side: see rproc/serial_link.h and docs/uart-link.md. Every rule here has its twin
 * in transports/serial_link.py; tests/firmware/test_serial_link_c.py runs the two against each other.
 */
#include "rproc/serial_link.h"

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), a nibble at a time: 64 bytes of table. */
static const uint32_t crc_nibble[16] = {
	0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
	0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t sl_crc32(const uint8_t *data, size_t len)
{
	uint32_t crc = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++) {
		crc ^= data[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 15u];
		crc = (crc >> 4) ^ crc_nibble[crc & 15u];
	}
	return crc ^ 0xFFFFFFFFu;
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

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void frame(struct sl_link *l, uint8_t kind, uint8_t seq, const uint8_t *payload, size_t len)
{
	uint8_t body[SL_MAX_BODY + SL_CRC];
	uint8_t wire[SL_MAX_WIRE];
	body[0] = kind;
	body[1] = seq;
	body[2] = l->expected; /* every frame carries the cumulative ack */
	for (size_t i = 0; i < len; i++)
		body[SL_HEADER + i] = payload[i];
	put32(body + SL_HEADER + len, sl_crc32(body, SL_HEADER + len));
	size_t n = sl_cobs_encode(body, SL_HEADER + len + SL_CRC, wire);
	wire[n++] = 0;
	if (kind != SL_HELLO)
		l->ack_due = 0;
	l->write(l->ctx, wire, n);
}

static void hello(struct sl_link *l, uint8_t kind)
{
	uint8_t p[8];
	p[0] = SL_VERSION;
	p[1] = l->window;
	p[2] = (uint8_t)l->max_payload;
	p[3] = (uint8_t)(l->max_payload >> 8);
	put32(p + 4, l->session);
	frame(l, kind, 0, p, sizeof p);
}

static void reset_sequences(struct sl_link *l)
{
	l->next_seq = 0;
	l->expected = 0;
	l->in_flight = 0;
	l->oldest = 0;
	l->ack_due = 0;
	l->eff_window = l->window;
	l->eff_payload = l->max_payload;
}

void sl_init(struct sl_link *l, uint32_t session, uint8_t window, uint16_t max_payload, uint32_t rto_ms,
	     sl_write_fn write, sl_deliver_fn deliver, sl_event_fn event, void *ctx)
{
	uint8_t *p = (uint8_t *)l;
	for (size_t i = 0; i < sizeof *l; i++)
		p[i] = 0;
	l->session = session;
	l->window = window == 0 ? 1 : (window > SL_MAX_WINDOW ? SL_MAX_WINDOW : window);
	l->max_payload = max_payload == 0 ? 1 : (max_payload > SL_MAX_PAYLOAD ? SL_MAX_PAYLOAD : max_payload);
	l->rto_ms = rto_ms;
	l->write = write;
	l->deliver = deliver;
	l->event = event;
	l->ctx = ctx;
	reset_sequences(l);
}

void sl_start(struct sl_link *l, uint32_t now_ms)
{
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
	frame(l, SL_DATA, l->slot_seq[slot], data, len);
	return SL_OK;
}

static void on_ack(struct sl_link *l, uint8_t ack, uint32_t now_ms)
{
	if (!l->in_flight)
		return;
	uint8_t freed = (uint8_t)(ack - l->slot_seq[l->oldest]);
	if (freed > 0 && freed <= l->in_flight) {
		l->oldest = (uint8_t)((l->oldest + freed) % SL_MAX_WINDOW);
		l->in_flight = (uint8_t)(l->in_flight - freed);
		l->oldest_sent_ms = now_ms; /* the rest get a fresh timeout */
	}
}

static void on_hello(struct sl_link *l, uint8_t kind, const uint8_t *p, size_t len)
{
	if (len < 8 || p[0] != SL_VERSION || p[1] == 0 || p[1] > 127 || (p[2] == 0 && p[3] == 0)) {
		l->bad_frames++;
		return;
	}
	uint8_t window = p[1];
	uint16_t max_payload = (uint16_t)(p[2] | (p[3] << 8));
	uint32_t session = get32(p + 4);
	if (kind == SL_HELLO)
		l->reply_hello = 1;
	if (l->up && session == l->peer_session)
		return;
	if (l->up || l->have_peer) {
		uint32_t lost = l->in_flight;
		reset_sequences(l);
		if (l->event)
			l->event(l->ctx, SL_EV_PEER_RESET, lost);
	}
	l->peer_session = session;
	l->have_peer = 1;
	l->eff_window = window < l->window ? window : l->window;
	l->eff_payload = max_payload < l->max_payload ? max_payload : l->max_payload;
	l->up = 1;
	l->hello_pending = 0;
	if (l->event)
		l->event(l->ctx, SL_EV_CONNECTED, session);
}

static void on_frame(struct sl_link *l, const uint8_t *body, size_t len, uint32_t now_ms)
{
	if (len < SL_HEADER) {
		l->bad_frames++;
		return;
	}
	uint8_t kind = body[0], seq = body[1], ack = body[2];
	const uint8_t *payload = body + SL_HEADER;
	size_t plen = len - SL_HEADER;
	if (kind == SL_HELLO || kind == SL_HELLO_ACK) {
		on_hello(l, kind, payload, plen);
		return;
	}
	if (!l->up)
		return;
	on_ack(l, ack, now_ms);
	if (kind == SL_DATA) {
		if (seq == l->expected) {
			l->expected++;
			l->deliver(l->ctx, payload, plen);
		}
		l->ack_due = 1; /* in order, duplicate or after a gap: say where we stand */
	} else if (kind != SL_ACK) {
		l->bad_frames++;
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
			if (n < (int)SL_CRC || get32(l->rx + n - SL_CRC) != sl_crc32(l->rx, (size_t)n - SL_CRC))
				l->bad_frames++;
			else
				on_frame(l, l->rx, (size_t)n - SL_CRC, now_ms);
		}
		l->rx_len = 0;
		l->rx_overflow = 0;
	}
	sl_poll(l, now_ms);
}

void sl_poll(struct sl_link *l, uint32_t now_ms)
{
	if (l->reply_hello) {
		l->reply_hello = 0;
		hello(l, SL_HELLO_ACK);
	}
	if (l->hello_pending && after(now_ms, l->hello_due_ms)) {
		hello(l, SL_HELLO);
		l->hello_due_ms = now_ms + l->rto_ms;
	}
	if (!l->up)
		return;
	if (l->in_flight && after(now_ms, l->oldest_sent_ms + l->rto_ms)) {
		for (uint8_t k = 0; k < l->in_flight; k++) { /* go-back-N: everything from the oldest on */
			uint8_t slot = (uint8_t)((l->oldest + k) % SL_MAX_WINDOW);
			frame(l, SL_DATA, l->slot_seq[slot], l->slot_data[slot], l->slot_len[slot]);
			l->retransmissions++;
		}
		l->oldest_sent_ms = now_ms;
	}
	if (l->ack_due)
		frame(l, SL_ACK, 0, 0, 0);
}
