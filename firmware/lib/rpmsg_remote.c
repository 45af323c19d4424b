/*
 * rproc's freestanding rpmsg remote. See include/rproc/rpmsg_remote.h; the wire format is docs/rpmsg.md.
 *
 * The C twin of rproc's Python remote (rpmsg/remote_core.py RemoteCore), held to it by tests/firmware/test_differential.py:
 * the same host operations on two copies of the same memory leave the same bytes and the same results.
 * - Everything the host wrote is untrusted: the vring addresses in the resource table (checked against the
 *   region before any pointer is made), every descriptor (validated by the engine, virtio/csrc/vring.c, and read
 *   again and re-checked at each use here), every header.
 * - Buffers of any shape are taken, as virtio 1.2 2.7.4 asks of a device ("MUST NOT make assumptions about the
 *   particular arrangement of descriptors"): a message is the concatenation of a chain's readable bytes, a send
 *   fills a chain's writable ones. Single descriptors (the only kind Linux and OpenAMP post) are used in place;
 *   a message split over several is gathered into a bounce buffer of RPMSG_BOUNCE_SIZE, larger ones are dropped.
 * - used.len: for a host message, the bytes the chain holds for reading (the buffer's length: OpenAMP's host
 *   reuses it as the buffer's capacity, open-amp lib/rpmsg/rpmsg_virtio.c; Linux ignores it); for a send, the
 *   bytes written. A receive buffer too small for a send is kept for the next send, never returned with a used.len
 *   below the header (Linux rpmsg_recv_single() computes len - sizeof(hdr) unsigned and would take stale bytes).
 */
#include "rproc/rpmsg_remote.h"

#define VRING_OFFSET(vdev) ((volatile struct fw_rsc_vdev_vring *)((volatile uint8_t *)(vdev) + sizeof(struct fw_rsc_vdev)))

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get16(const volatile uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t get32(const volatile uint8_t *p)
{
	return get16(p) | (get16(p + 2) << 16);
}

int rpmsg_remote_ready(volatile const struct fw_rsc_vdev *vdev)
{
	/* The host writes status at any time: one relaxed atomic load (C11), not a plain read of shared memory.
	 * DRIVER_OK set and FAILED clear: rpmsg.protocol.driver_ok's rule. */
	uint8_t status = __atomic_load_n(&vdev->status, __ATOMIC_RELAXED);
	return (status & VIRTIO_CONFIG_S_DRIVER_OK) && !(status & VIRTIO_CONFIG_S_FAILED);
}

/* The queue's error state, set as the engine sets it when the host broke a ring. */
static int ring_fault(struct rp_vq *vq, int err, uint32_t where, uint64_t value)
{
	vq->broken = 1;
	vq->err = err;
	vq->err_where = where;
	vq->err_value = value;
	return RPMSG_ERR_RING;
}

/* A queue no operation may use (before and after a failed setup): the engine refuses a broken queue before it
 * touches any pointer. */
static void unusable(struct rp_vq *vq)
{
	uint8_t *p = (uint8_t *)vq;
	for (uint32_t i = 0; i < sizeof(*vq); i++)
		p[i] = 0;
	vq->broken = 1;
	vq->err = RP_ERR_ARG;
}

/* The legacy layout of a remoteproc vring (Linux vring_init(), virtio/layout.py VringLayout.legacy): desc at da,
 * avail right after it, used at the next `align` boundary of the address. num and align powers of two, and the
 * whole ring inside the region. */
static int setup_vq(struct rpmsg_remote *r, struct rp_vq *vq, volatile struct fw_rsc_vdev_vring *ring, uint16_t index)
{
	uint32_t da = ring->da, align = ring->align, num = ring->num;
	if (num == 0 || num > 32768u || (num & (num - 1u)) || align == 0 || (align & (align - 1u)) || (da & 15u))
		return RPMSG_ERR_RING;
	uint64_t avail = (uint64_t)da + 16u * num;
	uint64_t used = (avail + 6u + 2u * num + align - 1u) & ~((uint64_t)align - 1u);
	if (used & 3u)
		return RPMSG_ERR_RING;
	uint8_t *desc = rp_translate(r->regions, r->nregions, da, used + 6u + 8u * num - da);
	if (!desc)
		return RPMSG_ERR_RING;
	if (rp_vq_init(vq, RP_ROLE_DEVICE, (uint16_t)num, index, desc, desc + (avail - da), desc + (used - da),
		       r->regions, r->nregions, 0, 0) != RP_OK)
		return RPMSG_ERR_RING; /* the region's host pointer misaligns the ring */
	return RPMSG_OK;
}

int rpmsg_remote_init(struct rpmsg_remote *r, volatile struct fw_rsc_vdev *vdev, const struct rp_region *region,
		      void (*kick)(void *ctx, uint32_t queue), void *kick_ctx)
{
	return rpmsg_remote_init_regions(r, vdev, region, 1, kick, kick_ctx);
}

int rpmsg_remote_init_regions(struct rpmsg_remote *r, volatile struct fw_rsc_vdev *vdev,
			      const struct rp_region *regions, uint32_t nregions,
			      void (*kick)(void *ctx, uint32_t queue), void *kick_ctx)
{
	r->vdev = vdev;
	r->nregions = 0;
	for (uint32_t i = 0; regions && i < nregions && i < RPMSG_MAX_REGIONS; i++)
		r->regions[r->nregions++] = regions[i];
	r->nepts = 0;
	r->next_addr = 1024;
	r->kick = kick;
	r->kick_ctx = kick_ctx;
	r->dropped = 0;
	r->spare_n = 0;
	r->spare_head = 0;
	r->has_spare = 0;
	unusable(&r->to_host);
	unusable(&r->from_host);
	if (!rpmsg_remote_ready(vdev))
		return RPMSG_ERR_NOT_READY;
	if (vdev->num_of_vrings < 2)
		return RPMSG_ERR_RING;
	volatile struct fw_rsc_vdev_vring *rings = VRING_OFFSET(vdev);
	int rc = setup_vq(r, &r->to_host, &rings[0], 0);
	if (rc == RPMSG_OK)
		rc = setup_vq(r, &r->from_host, &rings[1], 1);
	if (rc != RPMSG_OK) {
		unusable(&r->to_host);
		unusable(&r->from_host);
		return rc;
	}
	/* The host posts a receive buffer after every message: no kick needed for that (we look when sending). */
	rp_dev_disable_notify(&r->to_host);
	return RPMSG_OK;
}

/* Take the next available chain: its descriptor count (and *head), 0 when none, RPMSG_ERR_RING when the host broke
 * the ring. rp_dev_pop with room for one descriptor refuses a longer chain without taking it (a local RP_ERR_ARG);
 * the engine then validates it whole and takes it without the array. */
static int take(struct rp_vq *vq, uint16_t *head, struct rp_desc *first)
{
	int n = rp_dev_pop(vq, first, 1, head);
	if (n == RP_ERR_ARG && !vq->broken) {
		vq->err = 0;
		vq->err_where = 0;
		vq->err_value = 0;
		n = rp_dev_pop(vq, 0, 0, head);
	}
	return n < 0 ? RPMSG_ERR_RING : n;
}

/* Descriptor d as it is now: the host may rewrite it at any time, so whoever uses it checks it. Relaxed atomic
 * loads, as the engine reads shared fields (the table is 16-byte aligned: single LDR/LDRH). */
static void read_desc(const struct rp_vq *vq, uint16_t d, uint64_t *addr, uint32_t *len, uint16_t *flags,
		      uint16_t *next)
{
	const volatile uint8_t *p = vq->desc + 16u * (uint32_t)d;
	const volatile uint32_t *w = (const volatile uint32_t *)(const volatile void *)p;
	const volatile uint16_t *h = (const volatile uint16_t *)(const volatile void *)(p + 12);
	*addr = (uint64_t)__atomic_load_n(&w[0], __ATOMIC_RELAXED) |
		((uint64_t)__atomic_load_n(&w[1], __ATOMIC_RELAXED) << 32);
	*len = __atomic_load_n(&w[2], __ATOMIC_RELAXED);
	*flags = __atomic_load_n(&h[0], __ATOMIC_RELAXED);
	*next = __atomic_load_n(&h[1], __ATOMIC_RELAXED);
}

/* Walk `count` descriptors of a chain the engine validated and took, from `head`. With `out` 0: the bytes of the
 * writable (or readable) descriptors, in *total. Else copy hdr (16 bytes) then data (len) into the writable
 * descriptors, never past what each says now. A chain changed since it was validated breaks the queue. */
static int chain_walk(struct rp_vq *vq, uint16_t head, int count, int writable, uint32_t *total, const uint8_t *hdr,
		      const uint8_t *data, uint32_t len, int out)
{
	uint16_t d = head;
	uint64_t sum = 0;
	uint32_t pos = 0, want = RPMSG_HDR_SIZE + len;
	for (int i = 0; i < count; i++) {
		uint64_t addr;
		uint32_t dlen;
		uint16_t flags, next;
		read_desc(vq, d, &addr, &dlen, &flags, &next);
		if (((flags & RP_DESC_F_WRITE) != 0) == (writable != 0)) {
			sum += dlen;
			if (out && pos < want) {
				volatile uint8_t *host = rp_translate(vq->regions, vq->nregions, addr, dlen);
				if (!host)
					return ring_fault(vq, RP_ERR_BAD_ADDR, d, addr);
				uint32_t k = want - pos < dlen ? want - pos : dlen;
				for (uint32_t j = 0; j < k; j++, pos++)
					host[j] = pos < RPMSG_HDR_SIZE ? hdr[pos] : data[pos - RPMSG_HDR_SIZE];
			}
		}
		if (i + 1 < count) {
			if (!(flags & RP_DESC_F_NEXT) || next >= vq->num)
				return ring_fault(vq, RP_ERR_BAD_NEXT, d, next);
			d = next;
		}
	}
	if (out && pos != want)
		return ring_fault(vq, RP_ERR_USED_LEN, head, pos); /* shrank since it was measured */
	if (sum > 0xFFFFFFFFu)
		return ring_fault(vq, RP_ERR_USED_LEN, head, sum);
	*total = (uint32_t)sum;
	return RPMSG_OK;
}

/* Hand a used entry back and tell the host when it asked to be told. */
static int give_back(struct rpmsg_remote *r, struct rp_vq *vq, uint32_t queue, uint16_t head, uint32_t len)
{
	if (rp_dev_push(vq, head, len) != RP_OK)
		return RPMSG_ERR_RING;
	if (rp_dev_publish(vq) > 0 && r->kick)
		r->kick(r->kick_ctx, queue);
	return RPMSG_OK;
}

int rpmsg_send(struct rpmsg_remote *r, uint32_t src, uint32_t dst, const void *data, uint32_t len)
{
	struct rp_vq *vq = &r->to_host;
	if (len > 0xFFFFu)
		return RPMSG_ERR_TOO_BIG; /* hdr.len is 16 bits */
	uint8_t hdr[RPMSG_HDR_SIZE];
	put32(hdr, src);
	put32(hdr + 4, dst);
	put32(hdr + 8, 0);                 /* reserved */
	put32(hdr + 12, len);              /* len (16 bits), flags 0 */
	if (r->has_spare) { /* the buffer an earlier, larger send did not fit: its writable parts, as Python */
		uint32_t room = 0;
		for (uint32_t i = 0; i < r->spare_n; i++)
			room += r->spare_len[i];
		if (room < RPMSG_HDR_SIZE || len > room - RPMSG_HDR_SIZE)
			return RPMSG_ERR_TOO_BIG;
		uint32_t pos = 0, want = RPMSG_HDR_SIZE + len;
		for (uint32_t i = 0; i < r->spare_n && pos < want; i++)
			for (uint32_t j = 0; j < r->spare_len[i] && pos < want; j++, pos++)
				r->spare[i][j] = pos < RPMSG_HDR_SIZE ? hdr[pos] : ((const uint8_t *)data)[pos - RPMSG_HDR_SIZE];
		r->has_spare = 0;
		return give_back(r, vq, 0, r->spare_head, want);
	}
	struct rp_desc first;
	uint16_t head;
	int count = take(vq, &head, &first);
	if (count <= 0)
		return count == 0 ? RPMSG_ERR_NO_BUFFER : count;
	uint32_t room;
	if (chain_walk(vq, head, count, 1, &room, 0, 0, 0, 0) != RPMSG_OK)
		return RPMSG_ERR_RING;
	if (room >= RPMSG_HDR_SIZE && len <= room - RPMSG_HDR_SIZE) {
		if (chain_walk(vq, head, count, 1, &room, hdr, data, len, 1) != RPMSG_OK)
			return RPMSG_ERR_RING;
		return give_back(r, vq, 0, head, RPMSG_HDR_SIZE + len);
	}
	uint64_t addr;
	uint32_t dlen;
	uint16_t flags, next;
	read_desc(vq, head, &addr, &dlen, &flags, &next);
	if (!(flags & RP_DESC_F_WRITE)) {
		int rc = give_back(r, vq, 0, head, 0); /* nothing written */
		return rc == RPMSG_OK ? RPMSG_ERR_BAD_BUFFER : rc;
	}
	/* kept: where its writable parts are now (the engine validated the chain as it took it) */
	uint16_t d = head;
	r->spare_n = 0;
	for (int i = 0; i < count; i++) {
		read_desc(vq, d, &addr, &dlen, &flags, &next);
		if ((flags & RP_DESC_F_WRITE) && dlen && r->spare_n < RPMSG_SPARE_DESCS) {
			volatile uint8_t *host = rp_translate(vq->regions, vq->nregions, addr, dlen);
			if (!host)
				return ring_fault(vq, RP_ERR_BAD_ADDR, d, addr);
			r->spare[r->spare_n] = host;
			r->spare_len[r->spare_n++] = dlen;
		}
		if (i + 1 < count) {
			if (!(flags & RP_DESC_F_NEXT) || next >= vq->num)
				return ring_fault(vq, RP_ERR_BAD_NEXT, d, next);
			d = next;
		}
	}
	r->spare_head = head;
	r->has_spare = 1;
	return RPMSG_ERR_TOO_BIG;
}

int rpmsg_create_ept(struct rpmsg_remote *r, struct rpmsg_ept *ept, const char *name, uint32_t addr, rpmsg_cb cb,
		     void *priv)
{
	if (r->nepts == RPMSG_MAX_EPTS)
		return RPMSG_ERR_NO_SLOT;
	uint32_t i;
	for (i = 0; i < 31 && name[i]; i++)
		ept->name[i] = name[i];
	for (; i < 32; i++)
		ept->name[i] = 0;
	ept->addr = addr == RPMSG_ADDR_ANY ? r->next_addr++ : addr;
	ept->cb = cb;
	ept->priv = priv;
	r->epts[r->nepts++] = ept;
	if (!ept->name[0] || !(r->vdev->gfeatures & (1u << VIRTIO_RPMSG_F_NS)))
		return RPMSG_OK;
	uint8_t ns[40];
	for (i = 0; i < 32; i++)
		ns[i] = (uint8_t)ept->name[i];
	for (i = 0; i < 4; i++) {
		ns[32 + i] = (uint8_t)(ept->addr >> (8 * i));
		ns[36 + i] = 0; /* RPMSG_NS_CREATE */
	}
	int rc;
	while ((rc = rpmsg_send(r, ept->addr, RPMSG_NS_ADDR, ns, sizeof(ns))) == RPMSG_ERR_NO_BUFFER)
		; /* the host posts its receive buffers before DRIVER_OK: this only waits for a slow host */
	return rc;
}

/* One host message of `size` bytes at p: checked (rpmsg/protocol.py rules: hdr.len bounded by the buffer) and
 * handed to the endpoint bound to its destination, if any. */
static void deliver(struct rpmsg_remote *r, const volatile uint8_t *p, uint32_t size)
{
	if (size < RPMSG_HDR_SIZE) {
		r->dropped++;
		return;
	}
	uint32_t src = get32(p), dst = get32(p + 4), len = get16(p + 12);
	if (len > size - RPMSG_HDR_SIZE) {
		r->dropped++;
		return;
	}
	for (uint32_t i = 0; i < r->nepts; i++) {
		if (r->epts[i]->addr == dst) {
			r->epts[i]->cb(r, r->epts[i], p + RPMSG_HDR_SIZE, len, src);
			return;
		}
	}
}

/* The next host message: 1 when one was handled and returned, 0 when none waits, RPMSG_ERR_RING. */
static int poll_one(struct rpmsg_remote *r)
{
	struct rp_vq *vq = &r->from_host;
	struct rp_desc d;
	uint16_t head;
	int n = rp_dev_pop(vq, &d, 1, &head);
	if (n == 1) { /* in place, zero-copy */
		uint32_t size = d.flags & RP_DESC_F_WRITE ? 0 : d.len;
		deliver(r, d.host, size);
		return rp_dev_push(vq, head, size) == RP_OK ? 1 : RPMSG_ERR_RING;
	}
	if (n != RP_ERR_ARG || vq->broken)
		return n < 0 ? RPMSG_ERR_RING : n;
	/* A chain: its readable bytes gathered, returned with used.len = their count (the engine's recv_copy). */
	vq->err = 0;
	vq->err_where = 0;
	vq->err_value = 0;
	uint32_t size;
	n = rp_dev_recv_copy(vq, r->bounce, sizeof(r->bounce), &size, 1);
	if (n == 1) {
		deliver(r, r->bounce, size);
		return 1;
	}
	if (n == 0)
		return 0; /* the host took the chain back (moved avail.idx back to where we are) */
	if (n != RP_ERR_SPACE || vq->broken)
		return RPMSG_ERR_RING;
	vq->err = 0;
	vq->err_where = 0;
	vq->err_value = 0;
	int count = take(vq, &head, &d); /* larger than the bounce buffer: dropped */
	if (count <= 0 || chain_walk(vq, head, count, 0, &size, 0, 0, 0, 0) != RPMSG_OK)
		return RPMSG_ERR_RING;
	r->dropped++;
	return rp_dev_push(vq, head, size) == RP_OK ? 1 : RPMSG_ERR_RING;
}

int rpmsg_poll(struct rpmsg_remote *r)
{
	int handled = 0;
	if (!rpmsg_remote_ready(r->vdev))
		return RPMSG_ERR_RESET;
	for (;;) {
		int n = poll_one(r);
		if (n == 0)
			break;
		if (n < 0) {
			if (handled)
				break; /* deliver what was valid; the next call reports the broken ring */
			return n;
		}
		handled++;
	}
	/* Kick after returning buffers: a Linux sender blocked on a full ring waits for exactly this. */
	if (handled && rp_dev_publish(&r->from_host) > 0 && r->kick)
		r->kick(r->kick_ctx, 1);
	return handled;
}

int rpmsg_has_work(struct rpmsg_remote *r)
{
	if (!rpmsg_remote_ready(r->vdev) || r->from_host.broken)
		return 1; /* rpmsg_poll reports the reset or the broken ring */
	return rp_dev_has_avail(&r->from_host) != 0; /* 1 or RP_ERR_BROKEN: either way rpmsg_poll has to run */
}

int rpmsg_want_buffer_wakeup(struct rpmsg_remote *r, int on)
{
	if (r->to_host.broken)
		return 1; /* rpmsg_send reports it */
	if (!on) {
		rp_dev_disable_notify(&r->to_host);
		return 0;
	}
	return rp_dev_enable_notify(&r->to_host) != 0; /* after a full fence: a buffer posted before it is seen */
}
