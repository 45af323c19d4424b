/*
 * rproc's freestanding rpmsg remote: the virtio device side of an rpmsg vdev, on the same vring engine as the
 * host's Python package (virtio/csrc/vring.c). No malloc, no libc.
 *
 *   wait for DRIVER_OK (the bit, not the byte), take the vrings from the resource table, announce endpoints by
 *   name service, send by filling host receive buffers (vring 0), receive host messages from vring 1 and hand
 *   the payload to the endpoint's callback in place (zero-copy), return buffers and kick the host.
 */
#ifndef RPROC_RPMSG_REMOTE_H
#define RPROC_RPMSG_REMOTE_H

#include <stdint.h>
#include "rproc/resource_table.h"
#include "vring.h"

#define RPMSG_ADDR_ANY 0xFFFFFFFFu
#define RPMSG_NS_ADDR 53u
#define RPMSG_HDR_SIZE 16u
#define RPMSG_MAX_EPTS 8
/* Address windows onto the shared memory (rpmsg_remote_init_regions): one where both sides use one address for a
 * byte, two where the host's descriptors hold addresses (a Linux physical address) other than the device addresses
 * of the resource table (its vring da) for the same memory. */
#ifndef RPMSG_MAX_REGIONS
#define RPMSG_MAX_REGIONS 2
#endif
/* A host message in a chain of more than one descriptor (virtio lets a driver split a buffer; Linux and OpenAMP
 * never do) is gathered here before its callback: the largest such message taken. Single-descriptor messages are
 * delivered in place, whatever their size. */
#ifndef RPMSG_SPARE_DESCS
#define RPMSG_SPARE_DESCS 8u /* device-writable descriptors of a kept host buffer that count (the rest do not) */
#endif
#ifndef RPMSG_BOUNCE_SIZE
#define RPMSG_BOUNCE_SIZE 512u
#endif

#define RPMSG_OK 0
#define RPMSG_ERR_NO_BUFFER (-20)   /* the host has no receive buffer posted right now: poll, then retry */
#define RPMSG_ERR_TOO_BIG (-21)     /* the payload does not fit the host's buffer (kept for the next send) */
#define RPMSG_ERR_NO_SLOT (-22)     /* no room for another endpoint */
#define RPMSG_ERR_NOT_READY (-23)   /* DRIVER_OK not set yet */
#define RPMSG_ERR_RING (-24)        /* the host broke a ring: see the queue's err fields */
#define RPMSG_ERR_RESET (-25)       /* the host reset the device (status 0): init again after DRIVER_OK */
#define RPMSG_ERR_BAD_BUFFER (-26)  /* the host posted a receive buffer we cannot write: returned unused */

struct rpmsg_remote;
struct rpmsg_ept;

/* Called with the payload in place in shared memory: valid until the callback returns. */
typedef void (*rpmsg_cb)(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data,
			 uint32_t len, uint32_t src);

struct rpmsg_ept {
	char name[32];
	uint32_t addr;
	rpmsg_cb cb;
	void *priv;
};

struct rpmsg_remote {
	volatile struct fw_rsc_vdev *vdev;
	struct rp_region regions[RPMSG_MAX_REGIONS];
	uint32_t nregions;
	struct rp_vq to_host;   /* vring 0: remote -> host, we fill host receive buffers */
	struct rp_vq from_host; /* vring 1: host -> remote */
	struct rpmsg_ept *epts[RPMSG_MAX_EPTS];
	uint32_t nepts;
	uint32_t next_addr;
	void (*kick)(void *ctx, uint32_t queue);
	void *kick_ctx;
	uint32_t dropped; /* malformed host messages (and chained ones larger than RPMSG_BOUNCE_SIZE) */
	/* A host receive buffer popped for a send it was too small for: kept for the next send that fits, like the
	 * Python remote (rpmsg/remote_core.py). Returned unused it would reach Linux with a used.len below the header.
	 * Its device-writable descriptors as they were when it was kept (where and how much; at most
	 * RPMSG_SPARE_DESCS of them), filled in order as a send fills a chain (rpmsg.protocol, "Chained buffers"). */
	volatile uint8_t *spare[RPMSG_SPARE_DESCS];
	uint32_t spare_len[RPMSG_SPARE_DESCS];
	uint8_t spare_n;
	uint16_t spare_head;
	uint8_t has_spare;
	uint8_t bounce[RPMSG_BOUNCE_SIZE];
};

/* 1 when the host has set DRIVER_OK in the vdev status (Linux writes 0x07, OpenAMP 0x04). */
int rpmsg_remote_ready(volatile const struct fw_rsc_vdev *vdev);

/* Set up on the vrings the host wrote into `vdev` (call once rpmsg_remote_ready()); `region` is the shared
 * memory the host's descriptors point into. Each vring must lie inside it, with num a power of two up to 32768
 * and align a power of two (the layout of Linux vring_init and virtio/layout.py): else RPMSG_ERR_RING, and every
 * later rpmsg_send/rpmsg_poll returns RPMSG_ERR_RING until an init succeeds. */
int rpmsg_remote_init(struct rpmsg_remote *r, volatile struct fw_rsc_vdev *vdev, const struct rp_region *region,
		      void (*kick)(void *ctx, uint32_t queue), void *kick_ctx);

/* rpmsg_remote_init with up to RPMSG_MAX_REGIONS windows (more are ignored; none: every vring is refused): the
 * vrings' da and every descriptor address are looked up in each, in order. Two windows onto the same memory let a
 * core whose view of the shared memory differs from the host's take both: e.g. the M33 sees the file UML maps at
 * 0x80000000 (the table's da), Linux's descriptors hold its physical address (docs/linux-conformance.md). */
int rpmsg_remote_init_regions(struct rpmsg_remote *r, volatile struct fw_rsc_vdev *vdev,
			      const struct rp_region *regions, uint32_t nregions,
			      void (*kick)(void *ctx, uint32_t queue), void *kick_ctx);

/* Bind an endpoint (addr RPMSG_ADDR_ANY: the next from 1024) and announce it by name service. */
int rpmsg_create_ept(struct rpmsg_remote *r, struct rpmsg_ept *ept, const char *name, uint32_t addr, rpmsg_cb cb,
		     void *priv);

/* Send into the next host receive buffer: RPMSG_OK, RPMSG_ERR_NO_BUFFER (poll, then retry), RPMSG_ERR_TOO_BIG
 * (the buffer is kept for a later, smaller send), RPMSG_ERR_BAD_BUFFER (not device-writable: returned unused) or
 * RPMSG_ERR_RING. A buffer of several descriptors is filled across its writable ones. */
int rpmsg_send(struct rpmsg_remote *r, uint32_t src, uint32_t dst, const void *data, uint32_t len);

/* Handle every message the host sent; returns how many (a ring broken after some were handled is reported by the
 * next call), RPMSG_ERR_RING, or RPMSG_ERR_RESET when the host has
 * reset the device (virtio 1.2 2.1: status 0; Linux on stop and detach): wait for DRIVER_OK again, then call
 * rpmsg_remote_init and create the endpoints anew, the vrings may have moved. */
int rpmsg_poll(struct rpmsg_remote *r);

/* Sleeping between doorbells (docs/mcu.md, "Sleeping"). 1 when rpmsg_poll has something to do: a host message
 * waits, the host reset the device (status without DRIVER_OK) or a ring is unusable; 0 when the core may sleep
 * until the host's next kick. The host kicks vring 1 after every publish the remote did not suppress, and the
 * library never suppresses vring 1, so a 0 here followed by a race-free sleep (rproc/idle.h) loses no message. */
int rpmsg_has_work(struct rpmsg_remote *r);

/* A sender waiting for a host receive buffer (rpmsg_send said RPMSG_ERR_NO_BUFFER) asks the host to kick when it
 * posts one (on = 1; returns 1 when one is already there: do not sleep), and turns it off again once it has one
 * (on = 0): the C twin of RemoteCore.want_buffer_wakeup. Vring 0's kicks are off otherwise (the host re-posts a
 * buffer after every message it takes). */
int rpmsg_want_buffer_wakeup(struct rpmsg_remote *r, int on);

#endif /* RPROC_RPMSG_REMOTE_H */
