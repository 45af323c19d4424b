/*
 * rproc split-virtqueue engine. See vring.h for the layout and the API; this block says who owns what.
 *
 * Theory of operation
 * - The driver owns the descriptor table and the avail ring; the device owns the used ring. Each field has a
 *   single writer, so the only ordering that matters is "data before the index that publishes it" (a release
 *   fence before writing avail.idx / used.idx) and "index before reading the other side's suppression flag
 *   or event index" (a full fence, virtio_mb() in Linux), so that a notification is never lost.
 * - Everything read from shared memory is untrusted. The driver keeps its own free list, chain lengths and
 *   tokens in caller storage (struct rp_slot) and never follows links back out of shared memory; the device
 *   validates every head, next, length and address it reads, bounds every chain by num, and translates
 *   device addresses through the region table. A violation puts the queue in the error state (broken) with
 *   err/err_where/err_value saying what was seen where; a broken queue refuses every further operation.
 * - Indices are free-running u16 counters; positions are idx & (num - 1), num a power of two.
 * - Notification suppression: without VIRTIO_RING_F_EVENT_IDX, avail.flags NO_INTERRUPT and used.flags
 *   NO_NOTIFY; with it, used_event / avail_event and vring_need_event(). Disabling with event indices writes
 *   the event one behind the consumer's index, i.e. "not until the counter wraps".
 * Little-endian hosts only (legacy remoteproc rings are in the remote's byte order, little-endian in practice;
 * VERSION_1 rings are little-endian by definition).
 *
 * One file on purpose (longer than the project's ~400 lines): it is the C twin of virtio/pyring.py, which mirrors
 * it function by function for the differential test; the driver and device halves share the accessors, fences
 * and error reporting below; and firmware/ compiles it freestanding from one source list. Who compiles it, and
 * how the modules that share a struct rp_vq check they agree: docs/virtio.md, "One build of vring.c?".
 */
#include "vring.h"
#include "vring_fence.h"
#include "vring_layout.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rproc vring engine: little-endian only"
#endif

#if __STDC_HOSTED__
#define rp_copy(dst, src, n) __builtin_memcpy((dst), (src), (n))
#define rp_zero(dst, n) __builtin_memset((dst), 0, (n))
#else
/* Freestanding: no libc, so the file brings its own (volatile stops gcc turning the loops into calls). */
static void rp_copy(void *dst, const void *src, uint32_t n)
{
	volatile uint8_t *d = dst;
	const uint8_t *s = src;
	while (n--)
		*d++ = *s++;
}
static void rp_zero(void *dst, uint32_t n)
{
	volatile uint8_t *d = dst;
	while (n--)
		*d++ = 0;
}
#endif

/* Single aligned accesses: a 16-bit index must never be read or written as two bytes (it would tear). The peer
 * reads and writes the same memory concurrently, so every shared field is a relaxed atomic (C11 7.17: a plain or
 * volatile access racing with another is undefined); the fences above give the ordering. On Cortex-M33 and x86-64
 * these are the same single LDRH/STRH/LDR/STR and MOV instructions. */
static inline uint16_t ld16(volatile const uint8_t *p)
{
	return __atomic_load_n((volatile const uint16_t *)(const volatile void *)p, __ATOMIC_RELAXED);
}
static inline void st16(volatile uint8_t *p, uint16_t v)
{
	__atomic_store_n((volatile uint16_t *)(volatile void *)p, v, __ATOMIC_RELAXED);
}
static inline uint32_t ld32(volatile const uint8_t *p)
{
	return __atomic_load_n((volatile const uint32_t *)(const volatile void *)p, __ATOMIC_RELAXED);
}
static inline void st32(volatile uint8_t *p, uint32_t v)
{
	__atomic_store_n((volatile uint32_t *)(volatile void *)p, v, __ATOMIC_RELAXED);
}
/* 64-bit fields as two words: LDRD faults on unaligned addresses on Armv8-M; descriptors are not racing. */
static inline uint64_t ld64(volatile const uint8_t *p) { return (uint64_t)ld32(p) | ((uint64_t)ld32(p + 4) << 32); }
static inline void st64(volatile uint8_t *p, uint64_t v)
{
	st32(p, (uint32_t)v);
	st32(p + 4, (uint32_t)(v >> 32));
}

#define DESC(vq, i) ((vq)->desc + 16u * (uint32_t)(i))
#define AVAIL_FLAGS(vq) ((vq)->avail)
#define AVAIL_IDX(vq) ((vq)->avail + 2)
#define AVAIL_RING(vq, pos) ((vq)->avail + 4u + 2u * (uint32_t)(pos))
#define USED_EVENT(vq) ((vq)->avail + 4u + 2u * (uint32_t)(vq)->num)
#define USED_FLAGS(vq) ((vq)->used)
#define USED_IDX(vq) ((vq)->used + 2)
#define USED_ELEM(vq, pos) ((vq)->used + 4u + 8u * (uint32_t)(pos))
#define AVAIL_EVENT(vq) ((vq)->used + 4u + 8u * (uint32_t)(vq)->num)

#define SUPPRESSED(vq) ((vq)->suppressed)

uint32_t rp_vq_layout(void) { return RP_VQ_LAYOUT; }

uint32_t rp_desc_size(uint16_t num) { return 16u * num; }
uint32_t rp_avail_size(uint16_t num) { return 6u + 2u * num; }
uint32_t rp_used_size(uint16_t num) { return 6u + 8u * num; }

static inline int need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	/* Linux vring_need_event(): notify if event lies in [old, new). */
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

static int fault(struct rp_vq *vq, int err, uint32_t where, uint64_t value)
{
	vq->broken = 1;
	vq->err = err;
	vq->err_where = where;
	vq->err_value = value;
	return err;
}

static int local_error(struct rp_vq *vq, int err, uint32_t where, uint64_t value)
{
	vq->err = err;
	vq->err_where = where;
	vq->err_value = value;
	return err;
}

uint8_t *rp_translate(const struct rp_region *regions, uint32_t nregions, uint64_t da, uint64_t len)
{
	for (uint32_t i = 0; i < nregions; i++) {
		const struct rp_region *r = &regions[i];
		if (da >= r->da && len <= r->size && da - r->da <= r->size - len)
			return r->host + (da - r->da);
	}
	return 0;
}

int rp_vq_init(struct rp_vq *vq, uint8_t role, uint16_t num, uint16_t index, void *desc, void *avail, void *used,
	       const struct rp_region *regions, uint32_t nregions, struct rp_slot *slots, int event_idx)
{
	if (!vq || num == 0 || (num & (num - 1)) || !desc || !avail || !used)
		return RP_ERR_ARG;
	if (((uintptr_t)desc & 15u) || ((uintptr_t)avail & 1u) || ((uintptr_t)used & 3u))
		return RP_ERR_ARG; /* virtio 1.2 2.7: desc 16, avail 2, used 4 byte aligned */
	if (role == RP_ROLE_DRIVER && !slots)
		return RP_ERR_ARG;
	if (role != RP_ROLE_DRIVER && role != RP_ROLE_DEVICE)
		return RP_ERR_ARG;
	rp_zero(vq, sizeof(*vq));
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->regions = regions;
	vq->nregions = nregions;
	vq->num = num;
	vq->index = index;
	vq->role = role;
	vq->event_idx = event_idx ? 1 : 0;
	vq->slots = slots;
	if (role == RP_ROLE_DRIVER) {
		for (uint16_t i = 0; i < num; i++) {
			slots[i].token = 0;
			slots[i].total = 0;
			slots[i].ndesc = 0;
			slots[i].next = (uint16_t)(i + 1u);
			slots[i].avail_pos = 0;
		}
		vq->num_free = num;
	}
	return RP_OK;
}

/* ---------------------------------------------------------------------------------------------------- */
/* driver side */

void rp_drv_reset(struct rp_vq *vq)
{
	rp_zero((void *)vq->desc, rp_desc_size(vq->num));
	rp_zero((void *)vq->avail, rp_avail_size(vq->num));
	rp_zero((void *)vq->used, rp_used_size(vq->num));
	for (uint16_t i = 0; i < vq->num; i++) {
		vq->slots[i].token = 0;
		vq->slots[i].total = 0;
		vq->slots[i].ndesc = 0;
		vq->slots[i].next = (uint16_t)(i + 1u);
		vq->slots[i].avail_pos = 0;
	}
	vq->free_head = 0;
	vq->num_free = vq->num;
	vq->avail_shadow = vq->avail_kicked = vq->last_used = 0;
	vq->broken = 0;
	vq->err = 0;
	vq->err_where = 0;
	vq->err_value = 0;
	SUPPRESSED(vq) = 0;
	rp_mb();
}

int rp_drv_add(struct rp_vq *vq, const struct rp_buf *bufs, uint32_t n, uint64_t token)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	if (n == 0 || n > vq->num)
		return local_error(vq, RP_ERR_ARG, 0, n);
	if (n > vq->num_free)
		return local_error(vq, RP_ERR_FULL, vq->num_free, n);
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (!rp_translate(vq->regions, vq->nregions, bufs[i].addr, bufs[i].len))
			return local_error(vq, RP_ERR_BAD_ADDR, i, bufs[i].addr);
		total += bufs[i].len;
	}
	if (total > 0xFFFFFFFFu)
		return local_error(vq, RP_ERR_ARG, 0, total);

	uint16_t head = vq->free_head;
	uint16_t d = head;
	for (uint32_t i = 0; i < n; i++) {
		volatile uint8_t *p = DESC(vq, d);
		int last = i + 1 == n;
		uint16_t next = vq->slots[d].next;
		st64(p, bufs[i].addr);
		st32(p + 8, bufs[i].len);
		st16(p + 12, (uint16_t)((bufs[i].flags & RP_DESC_F_WRITE) | (last ? 0u : RP_DESC_F_NEXT)));
		st16(p + 14, last ? 0 : next);
		if (!last)
			d = next;
	}
	vq->free_head = vq->slots[d].next;
	vq->num_free = (uint16_t)(vq->num_free - n);
	vq->slots[head].token = token;
	vq->slots[head].total = (uint32_t)total;
	vq->slots[head].ndesc = (uint16_t)n;
	vq->slots[head].avail_pos = vq->avail_shadow;
	st16(AVAIL_RING(vq, vq->avail_shadow & (vq->num - 1u)), head);
	vq->avail_shadow++;
	return head;
}

int rp_drv_add_many(struct rp_vq *vq, const struct rp_buf *bufs, const uint64_t *tokens, uint32_t n)
{
	uint32_t k;
	for (k = 0; k < n; k++) {
		int r = rp_drv_add(vq, &bufs[k], 1, tokens[k]);
		if (r == RP_ERR_FULL)
			break;
		if (r < 0)
			return r;
	}
	return (int)k;
}

int rp_drv_publish(struct rp_vq *vq)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	rp_wmb(); /* descriptors and ring entries before the index */
	st16(AVAIL_IDX(vq), vq->avail_shadow);
	rp_mb(); /* the index before the device's suppression state */
	uint16_t old = vq->avail_kicked, new_idx = vq->avail_shadow;
	vq->avail_kicked = new_idx;
	if (new_idx == old)
		return 0;
	if (vq->event_idx)
		return need_event(ld16(AVAIL_EVENT(vq)), new_idx, old);
	return !(ld16(USED_FLAGS(vq)) & RP_USED_F_NO_NOTIFY);
}

/* Validate the next used entry without consuming it: 1 and (id, len) when one is there, 0 when none. */
static int used_peek(struct rp_vq *vq, uint16_t *id_out, uint32_t *len_out)
{
	uint16_t uidx = ld16(USED_IDX(vq));
	uint16_t pending = (uint16_t)(uidx - vq->last_used);
	if (pending == 0)
		return 0;
	if (pending > (uint16_t)(vq->avail_kicked - vq->last_used))
		return fault(vq, RP_ERR_USED_JUMP, vq->last_used, uidx);
	rp_rmb(); /* the index before the entries it publishes */
	uint16_t pos = vq->last_used & (vq->num - 1u);
	uint32_t id = ld32(USED_ELEM(vq, pos));
	uint32_t len = ld32(USED_ELEM(vq, pos) + 4);
	/* In flight: added, and published (an unpublished head was never shown to the device: one it returned
	 * before, taken back and added again, e.g. by recv_copy in the same batch, is not the device's yet). At
	 * most num heads wait unpublished, so "added at or after avail_kicked" is (pos - kicked) mod 2^16 < num. */
	if (id >= vq->num || vq->slots[id].ndesc == 0 ||
	    (uint16_t)(vq->slots[id].avail_pos - vq->avail_kicked) < vq->num)
		return fault(vq, RP_ERR_BAD_USED_ID, pos, id);
	if (len > vq->slots[id].total)
		return fault(vq, RP_ERR_USED_LEN, (uint32_t)id, len);
	*id_out = (uint16_t)id;
	*len_out = len;
	return 1;
}

static void used_consume(struct rp_vq *vq, uint16_t id)
{
	struct rp_slot *s = vq->slots;
	uint16_t last = id;
	for (uint16_t i = 1; i < s[id].ndesc; i++)
		last = s[last].next;
	s[last].next = vq->free_head;
	vq->free_head = id;
	vq->num_free = (uint16_t)(vq->num_free + s[id].ndesc);
	s[id].ndesc = 0;
	vq->last_used++;
}

static void used_done(struct rp_vq *vq)
{
	/* Linux virtqueue_get_buf_ctx_split: with callbacks on, tell the device where we are. */
	if (vq->event_idx && !SUPPRESSED(vq)) {
		st16(USED_EVENT(vq), vq->last_used);
		rp_mb();
	}
}

int rp_drv_get_used(struct rp_vq *vq, struct rp_used *out, uint32_t max)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint32_t k = 0;
	while (k < max) {
		uint16_t id;
		uint32_t len;
		int r = used_peek(vq, &id, &len);
		if (r < 0) {
			if (k)
				break; /* deliver what was valid; the next call reports the fault */
			return r;
		}
		if (r == 0)
			break;
		out[k].token = vq->slots[id].token;
		out[k].len = len;
		out[k].head = id;
		out[k].pad = 0;
		used_consume(vq, id);
		k++;
	}
	if (k)
		used_done(vq);
	return (int)k;
}

int rp_drv_peek(struct rp_vq *vq, struct rp_used *out)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint16_t id;
	uint32_t len;
	int r = used_peek(vq, &id, &len);
	if (r <= 0)
		return r;
	out->token = vq->slots[id].token;
	out->len = len;
	out->head = id;
	out->pad = 0;
	return 1;
}

int rp_drv_skip(struct rp_vq *vq, struct rp_used *out)
{
	int r = rp_drv_peek(vq, out);
	if (r < 0)
		return r;
	if (r == 0)
		return local_error(vq, RP_ERR_ARG, vq->last_used, 0); /* nothing there to take */
	used_consume(vq, out->head);
	used_done(vq);
	return 1;
}

int rp_drv_has_used(struct rp_vq *vq)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	return ld16(USED_IDX(vq)) != vq->last_used;
}

void rp_drv_disable_cb(struct rp_vq *vq)
{
	SUPPRESSED(vq) = 1;
	if (vq->event_idx)
		st16(USED_EVENT(vq), (uint16_t)(vq->last_used - 1u));
	else
		st16(AVAIL_FLAGS(vq), RP_AVAIL_F_NO_INTERRUPT);
}

int rp_drv_enable_cb(struct rp_vq *vq)
{
	SUPPRESSED(vq) = 0;
	if (vq->event_idx)
		st16(USED_EVENT(vq), vq->last_used);
	else
		st16(AVAIL_FLAGS(vq), 0);
	rp_mb(); /* the flag before re-reading the index: no interrupt may fall between them */
	if (vq->broken)
		return RP_ERR_BROKEN;
	return ld16(USED_IDX(vq)) != vq->last_used;
}

int rp_drv_send_copy(struct rp_vq *vq, const uint8_t *data, const uint32_t *lens, uint32_t n, uint64_t *pool,
		     uint32_t *npool, uint32_t buf_size)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint32_t k, pos = 0;
	for (k = 0; k < n && vq->num_free && *npool; k++) {
		if (lens[k] > buf_size)
			return k ? (int)k : local_error(vq, RP_ERR_SPACE, k, lens[k]);
		uint64_t addr = pool[*npool - 1];
		uint8_t *host = rp_translate(vq->regions, vq->nregions, addr, buf_size);
		if (!host)
			return k ? (int)k : local_error(vq, RP_ERR_BAD_ADDR, k, addr);
		rp_copy(host, data + pos, lens[k]);
		struct rp_buf b = { addr, lens[k], 0, 0 };
		int r = rp_drv_add(vq, &b, 1, addr);
		if (r < 0)
			return k ? (int)k : r;
		(*npool)--;
		pos += lens[k];
	}
	return (int)k;
}

int rp_drv_reclaim(struct rp_vq *vq, uint64_t *pool, uint32_t *npool, uint32_t cap)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint32_t k = 0;
	while (*npool < cap) {
		uint16_t id;
		uint32_t len;
		int r = used_peek(vq, &id, &len);
		if (r < 0) {
			if (k)
				break;
			return r;
		}
		if (r == 0)
			break;
		pool[(*npool)++] = vq->slots[id].token;
		used_consume(vq, id);
		k++;
	}
	if (k)
		used_done(vq);
	return (int)k;
}

int rp_drv_recv_copy(struct rp_vq *vq, uint8_t *out, uint32_t cap, uint32_t *lens, uint32_t max,
		     uint32_t buf_size)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint32_t k = 0, pos = 0;
	while (k < max) {
		uint16_t id;
		uint32_t len;
		int r = used_peek(vq, &id, &len);
		if (r < 0) {
			if (k)
				break;
			return r;
		}
		if (r == 0)
			break;
		if (len > cap - pos) {
			if (k)
				break;
			return local_error(vq, RP_ERR_SPACE, id, len);
		}
		uint64_t addr = vq->slots[id].token;
		uint8_t *host = rp_translate(vq->regions, vq->nregions, addr, buf_size);
		if (!host) {
			if (k)
				break; /* as every other stop part-way: what was taken is acknowledged (used_done) */
			return local_error(vq, RP_ERR_BAD_ADDR, id, addr);
		}
		rp_copy(out + pos, host, len);
		lens[k] = len;
		pos += len;
		used_consume(vq, id);
		struct rp_buf b = { addr, buf_size, RP_DESC_F_WRITE, 0 };
		rp_drv_add(vq, &b, 1, addr); /* cannot fail: the chain just freed one descriptor */
		k++;
	}
	if (k)
		used_done(vq);
	return (int)k;
}

/* ---------------------------------------------------------------------------------------------------- */
/* device side */

/* The head of the next available chain: 1 (and *head), 0 when none, < 0 on a fault. */
/* The head of the chain `ahead` entries after the next one (0: the next), 0 when there are not that many. */
static int avail_peek_at(struct rp_vq *vq, uint16_t ahead, uint16_t *head)
{
	uint16_t aidx = ld16(AVAIL_IDX(vq));
	uint16_t pending = (uint16_t)(aidx - vq->last_avail);
	if (pending > vq->num)
		return fault(vq, RP_ERR_AVAIL_JUMP, vq->last_avail, aidx);
	if (pending <= ahead)
		return 0;
	rp_rmb(); /* the index before the ring entry and the descriptors it publishes */
	uint16_t pos = (uint16_t)(vq->last_avail + ahead) & (vq->num - 1u);
	uint16_t h = ld16(AVAIL_RING(vq, pos));
	if (h >= vq->num)
		return fault(vq, RP_ERR_BAD_HEAD, pos, h);
	*head = h;
	return 1;
}

static int avail_peek(struct rp_vq *vq, uint16_t *head) { return avail_peek_at(vq, 0, head); }

/* Validate the chain at `head`, storing up to `max` descriptors in `out` (out may be 0: validate only).
 * Returns the descriptor count, RP_ERR_ARG if it has more than max (out given), or a fault. */
static int walk(struct rp_vq *vq, uint16_t head, struct rp_desc *out, uint32_t max, uint32_t *rlen, uint32_t *wlen)
{
	uint16_t d = head;
	uint32_t count = 0;
	uint64_t r = 0, w = 0;
	for (;;) {
		if (count == vq->num)
			return fault(vq, RP_ERR_LOOP, head, count);
		if (out && count == max)
			return local_error(vq, RP_ERR_ARG, head, count);
		volatile uint8_t *p = DESC(vq, d);
		uint64_t addr = ld64(p);
		uint32_t len = ld32(p + 8);
		uint16_t flags = ld16(p + 12);
		uint16_t next = ld16(p + 14);
		if (flags & RP_DESC_F_INDIRECT)
			return fault(vq, RP_ERR_INDIRECT, d, flags);
		uint8_t *host = rp_translate(vq->regions, vq->nregions, addr, len);
		if (!host)
			return fault(vq, RP_ERR_BAD_ADDR, d, addr);
		if (out) {
			out[count].addr = addr;
			out[count].host = host;
			out[count].len = len;
			out[count].flags = flags;
			out[count].index = d;
		}
		if (flags & RP_DESC_F_WRITE)
			w += len;
		else
			r += len;
		count++;
		if (!(flags & RP_DESC_F_NEXT))
			break;
		if (next >= vq->num)
			return fault(vq, RP_ERR_BAD_NEXT, d, next);
		d = next;
	}
	if (r > 0xFFFFFFFFu || w > 0xFFFFFFFFu)
		return fault(vq, RP_ERR_USED_LEN, head, r > w ? r : w);
	if (rlen)
		*rlen = (uint32_t)r;
	if (wlen)
		*wlen = (uint32_t)w;
	return (int)count;
}

/* Copy between a validated chain of `count` descriptors and local memory: readable descriptors into `to`
 * (at most `to_cap` bytes), or `from` (`from_len` bytes) into writable ones. Re-reads and re-checks every
 * descriptor, since the driver may have changed it since walk(). */
static int chain_copy(struct rp_vq *vq, uint16_t head, int count, uint8_t *to, uint32_t to_cap,
		      const uint8_t *from, uint32_t from_len, uint32_t *copied)
{
	uint16_t d = head;
	uint32_t done = 0;
	for (int i = 0; i < count; i++) {
		volatile uint8_t *p = DESC(vq, d);
		uint64_t addr = ld64(p);
		uint32_t len = ld32(p + 8);
		uint16_t flags = ld16(p + 12);
		uint16_t next = ld16(p + 14);
		int writable = (flags & RP_DESC_F_WRITE) != 0;
		uint32_t room = to ? to_cap - done : from_len - done;
		if (to && !writable && len > room)
			return fault(vq, RP_ERR_USED_LEN, d, len); /* grew since it was measured */
		uint32_t chunk = len < room ? len : room;
		if (chunk && ((to && !writable) || (from && writable))) {
			uint8_t *host = rp_translate(vq->regions, vq->nregions, addr, len);
			if (!host)
				return fault(vq, RP_ERR_BAD_ADDR, d, addr);
			if (to)
				rp_copy(to + done, host, chunk);
			else
				rp_copy(host, from + done, chunk);
			done += chunk;
		}
		if (i + 1 < count) {
			if (!(flags & RP_DESC_F_NEXT) || next >= vq->num)
				return fault(vq, RP_ERR_BAD_NEXT, d, next);
			d = next;
		}
	}
	if (done != (to ? to_cap : from_len))
		return fault(vq, RP_ERR_USED_LEN, head, done); /* shrank since it was measured */
	*copied = done;
	return RP_OK;
}

static void avail_consume(struct rp_vq *vq)
{
	vq->last_avail++;
	/* libvhost-user vu_queue_pop: with notifications on, publish how far we have read. */
	if (vq->event_idx && !SUPPRESSED(vq))
		st16(AVAIL_EVENT(vq), vq->last_avail);
}

int rp_dev_peek(struct rp_vq *vq, uint16_t ahead, struct rp_desc *out, uint32_t max, uint16_t *head)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint16_t h;
	int r = avail_peek_at(vq, ahead, &h);
	if (r <= 0)
		return r;
	int count = walk(vq, h, out, max, 0, 0);
	if (count < 0)
		return count;
	*head = h;
	return count;
}

int rp_dev_pop(struct rp_vq *vq, struct rp_desc *out, uint32_t max, uint16_t *head)
{
	int count = rp_dev_peek(vq, 0, out, max, head);
	if (count > 0)
		avail_consume(vq);
	return count;
}

void rp_dev_prefetch(const struct rp_vq *vq, uint16_t ahead, uint32_t bytes)
{
	uint16_t pos = (uint16_t)(vq->last_avail + ahead) & (vq->num - 1u);
	uint16_t h = (uint16_t)(ld16(AVAIL_RING(vq, pos)) & (vq->num - 1u)); /* in bounds, whatever is there */
	volatile uint8_t *d = DESC(vq, h);
	if (!bytes) {
		__builtin_prefetch((const void *)d);
		return;
	}
	uint32_t len = ld32(d + 8);
	const uint8_t *host = rp_translate(vq->regions, vq->nregions, ld64(d), len < bytes ? len : bytes);
	for (uint32_t off = 0; host && off < (len < bytes ? len : bytes); off += 64)
		__builtin_prefetch(host + off);
}

int rp_dev_skip(struct rp_vq *vq)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint16_t h;
	int r = avail_peek(vq, &h);
	if (r < 0)
		return r;
	if (r == 0)
		return local_error(vq, RP_ERR_ARG, vq->last_avail, 0); /* nothing there to take */
	avail_consume(vq);
	return h;
}

int rp_dev_pop_many(struct rp_vq *vq, struct rp_desc *descs, uint32_t max_descs, uint16_t *heads,
		    uint16_t *counts, uint32_t max_chains)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint32_t k = 0, used = 0;
	while (k < max_chains && used < max_descs) {
		uint16_t h;
		int r = avail_peek(vq, &h);
		if (r < 0)
			return k ? (int)k : r;
		if (r == 0)
			break;
		int count = walk(vq, h, descs + used, max_descs - used, 0, 0);
		if (count == RP_ERR_ARG && k)
			break; /* the next chain does not fit what is left of the caller's array */
		if (count < 0)
			return k ? (int)k : count;
		heads[k] = h;
		counts[k] = (uint16_t)count;
		used += (uint32_t)count;
		avail_consume(vq);
		k++;
	}
	return (int)k;
}

int rp_dev_push(struct rp_vq *vq, uint16_t head, uint32_t len)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	if (head >= vq->num)
		return local_error(vq, RP_ERR_ARG, head, head);
	if ((uint16_t)(vq->last_avail + vq->used_base) == vq->used_shadow)
		return local_error(vq, RP_ERR_ARG, head, 0); /* nothing popped is waiting to be returned */
	volatile uint8_t *e = USED_ELEM(vq, vq->used_shadow & (vq->num - 1u));
	st32(e, head);
	st32(e + 4, len);
	vq->used_shadow++;
	return RP_OK;
}

int rp_dev_push_many(struct rp_vq *vq, const uint16_t *heads, const uint32_t *lens, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		int r = rp_dev_push(vq, heads[k], lens[k]);
		if (r < 0)
			return r;
	}
	return (int)n;
}

int rp_dev_publish(struct rp_vq *vq)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	rp_wmb(); /* used entries and buffer contents before the index */
	st16(USED_IDX(vq), vq->used_shadow);
	rp_mb();
	uint16_t old = vq->used_signalled, new_idx = vq->used_shadow;
	vq->used_signalled = new_idx;
	if (new_idx == old)
		return 0;
	if (vq->event_idx)
		return need_event(ld16(USED_EVENT(vq)), new_idx, old);
	return !(ld16(AVAIL_FLAGS(vq)) & RP_AVAIL_F_NO_INTERRUPT);
}

int rp_dev_adopt_used(struct rp_vq *vq)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	if (vq->last_avail != 0 || vq->used_shadow != vq->used_base)
		return local_error(vq, RP_ERR_ARG, vq->last_avail, vq->used_shadow); /* only before the first pop */
	uint16_t idx = ld16(USED_IDX(vq));
	vq->used_base = vq->used_shadow = vq->used_signalled = idx;
	return RP_OK;
}

int rp_dev_has_avail(struct rp_vq *vq)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	return ld16(AVAIL_IDX(vq)) != vq->last_avail;
}

void rp_dev_disable_notify(struct rp_vq *vq)
{
	SUPPRESSED(vq) = 1;
	if (vq->event_idx)
		st16(AVAIL_EVENT(vq), (uint16_t)(vq->last_avail - 1u));
	else
		st16(USED_FLAGS(vq), RP_USED_F_NO_NOTIFY);
}

int rp_dev_enable_notify(struct rp_vq *vq)
{
	SUPPRESSED(vq) = 0;
	if (vq->event_idx)
		st16(AVAIL_EVENT(vq), vq->last_avail);
	else
		st16(USED_FLAGS(vq), 0);
	rp_mb();
	if (vq->broken)
		return RP_ERR_BROKEN;
	return ld16(AVAIL_IDX(vq)) != vq->last_avail;
}

int rp_dev_recv_copy(struct rp_vq *vq, uint8_t *out, uint32_t cap, uint32_t *lens, uint32_t max)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint32_t k = 0, pos = 0;
	while (k < max) {
		uint16_t h;
		uint32_t rlen;
		int r = avail_peek(vq, &h);
		if (r < 0)
			return k ? (int)k : r;
		if (r == 0)
			break;
		r = walk(vq, h, 0, 0, &rlen, 0);
		if (r < 0)
			return k ? (int)k : r;
		if (rlen > cap - pos) {
			if (k)
				break;
			return local_error(vq, RP_ERR_SPACE, h, rlen);
		}
		/* Second pass: the driver may rewrite descriptors at any time, so every value is checked again
		 * and no copy goes past what the first pass measured. */
		uint32_t copied = 0;
		r = chain_copy(vq, h, r, out + pos, rlen, 0, 0, &copied);
		if (r < 0)
			return k ? (int)k : r;
		pos += copied;
		lens[k] = rlen;
		avail_consume(vq);
		/* used.len = the bytes read, not 0: OpenAMP's host takes used.len of a returned send buffer as
		 * that buffer's capacity (open-amp rpmsg_virtio.c); Linux ignores it. */
		rp_dev_push(vq, h, rlen);
		k++;
	}
	return (int)k;
}

int rp_dev_send_copy(struct rp_vq *vq, const uint8_t *data, const uint32_t *lens, uint32_t n)
{
	if (vq->broken)
		return RP_ERR_BROKEN;
	uint32_t k = 0, pos = 0;
	while (k < n) {
		uint16_t h;
		uint32_t wlen;
		int r = avail_peek(vq, &h);
		if (r < 0)
			return k ? (int)k : r;
		if (r == 0)
			break;
		r = walk(vq, h, 0, 0, 0, &wlen);
		if (r < 0)
			return k ? (int)k : r;
		if (lens[k] > wlen)
			return k ? (int)k : local_error(vq, RP_ERR_SPACE, h, lens[k]);
		uint32_t copied = 0;
		r = chain_copy(vq, h, r, 0, 0, data + pos, lens[k], &copied);
		if (r < 0)
			return k ? (int)k : r;
		pos += lens[k];
		avail_consume(vq);
		rp_dev_push(vq, h, lens[k]);
		k++;
	}
	return (int)k;
}
