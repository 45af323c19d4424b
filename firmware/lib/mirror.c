/* rproc's memory mirror, firmware side: see rproc/mirror.h. The twin of transports/mirror.py. */
#include "rproc/mirror.h"

static int same(const uint8_t *a, const uint8_t *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

int mirror_apply(struct mirror *m, const uint8_t *msg, size_t len)
{
	if (len == 3 && msg[0] == MIRROR_KICK)
		return (int)(msg[1] | (msg[2] << 8));
	if (len < MIRROR_WRITE_HEAD || msg[0] != MIRROR_WRITE)
		return MIRROR_ERR_MALFORMED;
	uint32_t da = (uint32_t)msg[1] | ((uint32_t)msg[2] << 8) | ((uint32_t)msg[3] << 16) | ((uint32_t)msg[4] << 24);
	uint32_t n = (uint32_t)(len - MIRROR_WRITE_HEAD);
	if (da < m->window_da || da - m->window_da > m->window_size || n > m->window_size - (da - m->window_da))
		return MIRROR_ERR_RANGE;
	const uint8_t *data = msg + MIRROR_WRITE_HEAD;
	for (uint32_t i = 0; i < n; i++)
		m->window[da - m->window_da + i] = data[i];
	for (uint32_t r = 0; r < m->nranges; r++) { /* a peer writing into our ranges: agreed, not sent back */
		struct mirror_range *g = &m->ranges[r];
		for (uint32_t i = 0; i < n; i++)
			if (da + i >= g->da && da + i < g->da + g->size)
				g->shadow[da + i - g->da] = data[i];
	}
	m->applied++;
	return -1;
}

static void emit(struct mirror *m, uint32_t da, const uint8_t *data, uint32_t n,
		 void (*send)(const uint8_t *msg, size_t len))
{
	uint8_t msg[MIRROR_WRITE_HEAD + 256];
	uint32_t chunk = m->chunk > 256 ? 256 : m->chunk;
	for (uint32_t pos = 0; pos < n; pos += chunk) {
		uint32_t k = n - pos < chunk ? n - pos : chunk;
		uint32_t at = da + pos;
		msg[0] = MIRROR_WRITE;
		msg[1] = (uint8_t)at;
		msg[2] = (uint8_t)(at >> 8);
		msg[3] = (uint8_t)(at >> 16);
		msg[4] = (uint8_t)(at >> 24);
		for (uint32_t i = 0; i < k; i++)
			msg[MIRROR_WRITE_HEAD + i] = data[pos + i];
		send(msg, MIRROR_WRITE_HEAD + k);
		m->sent_bytes += k;
	}
}

static int is_index(const struct mirror *m, uint32_t da)
{
	for (uint32_t i = 0; i < m->nindex; i++)
		if (m->index_fields[i] == da)
			return 1;
	return 0;
}

void mirror_flush(struct mirror *m, void (*send)(const uint8_t *msg, size_t len))
{
	uint8_t index_changed[8] = { 0 }; /* per index field (up to 8) */
	for (uint32_t r = 0; r < m->nranges; r++) {
		struct mirror_range *g = &m->ranges[r];
		const uint8_t *now = m->window + (g->da - m->window_da);
		uint32_t off = 0;
		while (off < g->size) {
			uint32_t blk = g->size - off < MIRROR_BLOCK ? g->size - off : MIRROR_BLOCK;
			if (same(now + off, g->shadow + off, blk)) {
				off += blk;
				continue;
			}
			uint32_t start = off;
			while (off < g->size) {
				blk = g->size - off < MIRROR_BLOCK ? g->size - off : MIRROR_BLOCK;
				if (same(now + off, g->shadow + off, blk))
					break;
				off += blk;
			}
			/* the run [start, off) without its index fields; those go last */
			uint32_t pos = start;
			for (uint32_t a = start; a < off; a++) {
				if (!is_index(m, g->da + a))
					continue;
				if (a > pos)
					emit(m, g->da + pos, now + pos, a - pos, send);
				for (uint32_t i = 0; i < m->nindex && i < 8; i++)
					if (m->index_fields[i] == g->da + a)
						index_changed[i] = 1;
				pos = a + 2;
				a++;
			}
			if (pos < off)
				emit(m, g->da + pos, now + pos, off - pos, send);
			for (uint32_t i = start; i < off; i++)
				g->shadow[i] = now[i];
		}
	}
	for (uint32_t i = 0; i < m->nindex && i < 8; i++)
		if (index_changed[i])
			emit(m, m->index_fields[i], m->window + (m->index_fields[i] - m->window_da), 2, send);
}
