/* rproc's freestanding rpmsg remote. See include/rproc/rpmsg_remote.h; the wire format is docs/rpmsg.md. */
#include "rproc/rpmsg_remote.h"

#define VRING_OFFSET(vdev) ((volatile struct fw_rsc_vdev_vring *)((volatile uint8_t *)(vdev) + sizeof(struct fw_rsc_vdev)))

static void copy_out(volatile uint8_t *dst, const uint8_t *src, uint32_t n)
{
	while (n--)
		*dst++ = *src++;
}

static void put32(volatile uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const volatile uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int rpmsg_remote_ready(volatile const struct fw_rsc_vdev *vdev)
{
	return (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) != 0;
}

static int setup_vq(struct rpmsg_remote *r, struct rp_vq *vq, volatile struct fw_rsc_vdev_vring *ring, uint16_t index)
{
	uint32_t num = ring->num, align = ring->align;
	uint64_t size = (((16u * num + 2u * (3u + num)) + align - 1u) & ~(uint64_t)(align - 1u)) + 6u + 8u * num;
	uint8_t *desc = rp_translate(&r->region, 1, ring->da, size);
	if (!desc || num == 0 || num > 32768u || align == 0)
		return RPMSG_ERR_RING;
	uint8_t *avail = desc + 16u * num;
	uint8_t *used = desc + (((16u * num + 2u * (3u + num)) + align - 1u) & ~(align - 1u));
	if (rp_vq_init(vq, RP_ROLE_DEVICE, (uint16_t)num, index, desc, avail, used, &r->region, 1, 0, 0) != RP_OK)
		return RPMSG_ERR_RING;
	return RPMSG_OK;
}

int rpmsg_remote_init(struct rpmsg_remote *r, volatile struct fw_rsc_vdev *vdev, const struct rp_region *region,
		      void (*kick)(void *ctx, uint32_t queue), void *kick_ctx)
{
	if (!rpmsg_remote_ready(vdev))
		return RPMSG_ERR_NOT_READY;
	if (vdev->num_of_vrings < 2)
		return RPMSG_ERR_RING;
	r->vdev = vdev;
	r->region = *region;
	r->nepts = 0;
	r->next_addr = 1024;
	r->kick = kick;
	r->kick_ctx = kick_ctx;
	r->dropped = 0;
	volatile struct fw_rsc_vdev_vring *rings = VRING_OFFSET(vdev);
	int rc = setup_vq(r, &r->to_host, &rings[0], 0);
	if (rc == RPMSG_OK)
		rc = setup_vq(r, &r->from_host, &rings[1], 1);
	/* The host posts a receive buffer after every message: no kick needed for that (we look when sending). */
	rp_dev_disable_notify(&r->to_host);
	return rc;
}

int rpmsg_send(struct rpmsg_remote *r, uint32_t src, uint32_t dst, const void *data, uint32_t len)
{
	struct rp_desc d;
	uint16_t head;
	int n = rp_dev_pop(&r->to_host, &d, 1, &head);
	if (n == 0)
		return RPMSG_ERR_NO_BUFFER;
	if (n < 0)
		return n == RP_ERR_ARG ? RPMSG_ERR_TOO_BIG : RPMSG_ERR_RING;
	if (!(d.flags & RP_DESC_F_WRITE) || d.len < RPMSG_HDR_SIZE + len) {
		rp_dev_push(&r->to_host, head, 0); /* give it back unused */
		rp_dev_publish(&r->to_host);
		return RPMSG_ERR_TOO_BIG;
	}
	volatile uint8_t *p = d.host;
	put32(p, src);
	put32(p + 4, dst);
	put32(p + 8, 0);
	p[12] = (uint8_t)len;
	p[13] = (uint8_t)(len >> 8);
	p[14] = 0;
	p[15] = 0;
	copy_out(p + RPMSG_HDR_SIZE, data, len);
	rp_dev_push(&r->to_host, head, RPMSG_HDR_SIZE + len);
	if (rp_dev_publish(&r->to_host) > 0 && r->kick)
		r->kick(r->kick_ctx, 0);
	return RPMSG_OK;
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

int rpmsg_poll(struct rpmsg_remote *r)
{
	int handled = 0;
	if (!rpmsg_remote_ready(r->vdev))
		return RPMSG_ERR_RESET;
	for (;;) {
		struct rp_desc d;
		uint16_t head;
		int n = rp_dev_pop(&r->from_host, &d, 1, &head);
		if (n == 0)
			break;
		if (n < 0)
			return RPMSG_ERR_RING; /* includes chains of more than one descriptor: rpmsg never sends those */
		if (!(d.flags & RP_DESC_F_WRITE) && d.len >= RPMSG_HDR_SIZE) {
			const volatile uint8_t *p = d.host;
			uint32_t src = get32(p), dst = get32(p + 4);
			uint32_t len = (uint32_t)p[12] | ((uint32_t)p[13] << 8);
			if (len <= d.len - RPMSG_HDR_SIZE) { /* hdr.len bounded by the buffer */
				for (uint32_t i = 0; i < r->nepts; i++) {
					if (r->epts[i]->addr == dst) {
						r->epts[i]->cb(r, r->epts[i], p + RPMSG_HDR_SIZE, len, src);
						break;
					}
				}
			} else {
				r->dropped++;
			}
		} else {
			r->dropped++;
		}
		/* used.len = the buffer's length, not 0: OpenAMP's host reuses it as the buffer's capacity. */
		rp_dev_push(&r->from_host, head, d.len);
		handled++;
	}
	/* Kick after returning buffers: a Linux sender blocked on a full ring waits for exactly this. */
	if (handled && rp_dev_publish(&r->from_host) > 0 && r->kick)
		r->kick(r->kick_ctx, 1);
	return handled;
}
