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
	uint8_t msg[MIRROR_WRITE_HEAD + MIRROR_MAX_CHUNK];
	uint32_t chunk = m->chunk;
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

/* The next changed run [*start, *end) of whole blocks of range g at or after *off (0 when none). */
static int next_run(const struct mirror *m, const struct mirror_range *g, uint32_t *off, uint32_t *start,
		    uint32_t *end)
{
	const uint8_t *now = m->window + (g->da - m->window_da);
	uint32_t o = *off;
	while (o < g->size) {
		uint32_t blk = g->size - o < MIRROR_BLOCK ? g->size - o : MIRROR_BLOCK;
		if (!same(now + o, g->shadow + o, blk))
			break;
		o += blk;
	}
	if (o >= g->size)
		return 0;
	*start = o;
	while (o < g->size) {
		uint32_t blk = g->size - o < MIRROR_BLOCK ? g->size - o : MIRROR_BLOCK;
		if (same(now + o, g->shadow + o, blk))
			break;
		o += blk;
	}
	*end = *off = o;
	return 1;
}

/* Three passes over the same changed runs (nothing writes the window meanwhile): the data without the index
 * fields, then the index fields (as many as there are, in address order within each run, as transports/mirror.py
 * sends them), then the shadows. */
int mirror_flush(struct mirror *m, void (*send)(const uint8_t *msg, size_t len))
{
	if (m->chunk < 2 || m->chunk > MIRROR_MAX_CHUNK)
		return MIRROR_ERR_CHUNK;
	for (int pass = 0; pass < 3; pass++) {
		for (uint32_t r = 0; r < m->nranges; r++) {
			struct mirror_range *g = &m->ranges[r];
			uint8_t *now = m->window + (g->da - m->window_da);
			uint32_t off = 0, start, end;
			while (next_run(m, g, &off, &start, &end)) {
				if (pass == 2) {
					for (uint32_t i = start; i < end; i++)
						g->shadow[i] = now[i];
					continue;
				}
				uint32_t pos = start;
				for (uint32_t a = start; a < end; a++) {
					if (!is_index(m, g->da + a))
						continue;
					if (pass == 0 && a > pos)
						emit(m, g->da + pos, now + pos, a - pos, send);
					if (pass == 1)
						emit(m, g->da + a, now + a, 2, send);
					pos = a + 2;
					a++;
				}
				if (pass == 0 && pos < end)
					emit(m, g->da + pos, now + pos, end - pos, send);
			}
		}
	}
	return 0;
}
