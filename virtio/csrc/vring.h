/*
 * rproc split-virtqueue engine: driver and device side, batch operations, hostile-peer checks.
 *
 * One C file (vring.c) serves two worlds: the cffi fast path of the Python package, and freestanding
 * firmware (arm-none-eabi-gcc -mcpu=cortex-m33 -mthumb -ffreestanding -nostdlib): no malloc, no libc; every
 * array the engine needs is storage the caller passes in.
 *
 * Layout (virtio 1.2 section 2.7, Linux include/uapi/linux/virtio_ring.h), little-endian:
 *   desc[num]  {u64 addr; u32 len; u16 flags; u16 next}                  16 B each
 *   avail      {u16 flags; u16 idx; u16 ring[num]; u16 used_event}
 *   used       {u16 flags; u16 idx; {u32 id; u32 len} ring[num]; u16 avail_event}
 * desc.addr holds a device address; the engine translates it through the region table and refuses anything
 * outside it. Legacy (remoteproc) rings put avail right after desc and used at the next `align` boundary;
 * VERSION_1 rings may put the three parts anywhere: the engine takes three pointers either way.
 */
#ifndef RPROC_VRING_H
#define RPROC_VRING_H

#include <stdint.h>

#define RP_DESC_F_NEXT 1u
#define RP_DESC_F_WRITE 2u
#define RP_DESC_F_INDIRECT 4u
#define RP_AVAIL_F_NO_INTERRUPT 1u
#define RP_USED_F_NO_NOTIFY 1u

/* Return codes. >= 0 is success (a count, a head, a flag). Remote faults put the queue in the error state. */
enum rp_status {
	RP_OK = 0,
	RP_ERR_BAD_HEAD = -1,    /* remote: avail ring names a descriptor index >= num */
	RP_ERR_BAD_NEXT = -2,    /* remote: desc.next >= num */
	RP_ERR_LOOP = -3,        /* remote: chain longer than num descriptors */
	RP_ERR_AVAIL_JUMP = -4,  /* remote: avail idx moved by more than num */
	RP_ERR_USED_JUMP = -5,   /* remote: used idx moved past what is in flight */
	RP_ERR_BAD_USED_ID = -6, /* remote: used id >= num, or a head not in flight (not published, or returned) */
	RP_ERR_USED_LEN = -7,    /* remote: used len larger than the chain; a chain resized between measure and copy */
	RP_ERR_BAD_ADDR = -8,    /* remote (device side) or local (driver side): buffer outside every region */
	RP_ERR_INDIRECT = -9,    /* remote: indirect descriptor, not negotiated */
	RP_ERR_FULL = -10,       /* local: not enough free descriptors */
	RP_ERR_BROKEN = -11,     /* local: the queue is in the error state */
	RP_ERR_ARG = -12,        /* local: bad argument */
	RP_ERR_SPACE = -13,      /* local: the caller's buffer cannot hold the data */
};

enum rp_role { RP_ROLE_DRIVER = 0, RP_ROLE_DEVICE = 1 };

/* A device-address range backed by host memory. */
struct rp_region {
	uint64_t da;
	uint64_t size;
	uint8_t *host;
};

/* A buffer to add (driver side). flags: RP_DESC_F_WRITE for device-writable. */
struct rp_buf {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t pad;
};

/* A descriptor as the device side sees it, validated and translated. */
struct rp_desc {
	uint64_t addr;
	uint8_t *host;
	uint32_t len;
	uint16_t flags;
	uint16_t index;
};

/* A used entry as the driver side sees it. */
struct rp_used {
	uint64_t token;
	uint32_t len;
	uint16_t head;
	uint16_t pad;
};

/* Driver-private state per descriptor: never read back from shared memory (the peer could rewrite it). */
struct rp_slot {
	uint64_t token;    /* caller cookie of the chain this head starts */
	uint32_t total;    /* bytes in the chain (used.len may not exceed it) */
	uint16_t ndesc;    /* descriptors in the chain, 0 when the head is not in flight */
	uint16_t next;     /* free-list and chain link */
	uint16_t avail_pos; /* the avail idx this head was added at: the device has it only once that is published */
};

struct rp_vq {
	volatile uint8_t *desc;
	volatile uint8_t *avail;
	volatile uint8_t *used;
	const struct rp_region *regions;
	uint32_t nregions;
	uint16_t num;
	uint16_t index;  /* queue number, for error reports */
	uint8_t role;
	uint8_t event_idx;
	uint8_t broken;
	uint8_t suppressed; /* this side asked the peer not to notify it (callbacks / notifications disabled) */
	/* driver side */
	struct rp_slot *slots; /* [num], caller storage */
	uint16_t free_head;
	uint16_t num_free;
	uint16_t avail_shadow;  /* avail idx including entries not yet published */
	uint16_t avail_kicked;  /* avail idx at the last publish */
	uint16_t last_used;
	/* device side */
	uint16_t last_avail;
	uint16_t used_shadow;
	uint16_t used_signalled;
	uint16_t used_base; /* used idx the driver left at start (rp_dev_adopt_used: RPMsg-Lite's master), else 0 */
	/* error detail: which check failed, where (ring position or descriptor index) and the value seen */
	int32_t err;
	uint32_t err_where;
	uint64_t err_value;
};

/* This build's layout of struct rp_vq (vring_layout.h): modules sharing a queue by address compare it. */
uint32_t rp_vq_layout(void);

/* Size in bytes of each part of a ring with `num` entries. */
uint32_t rp_desc_size(uint16_t num);
uint32_t rp_avail_size(uint16_t num);
uint32_t rp_used_size(uint16_t num);

/* Set up `vq` on ring memory. `slots` ([num]) is needed on the driver side only (may be 0 for a device).
 * num must be a power of two. Returns RP_OK or RP_ERR_ARG. */
int rp_vq_init(struct rp_vq *vq, uint8_t role, uint16_t num, uint16_t index, void *desc, void *avail, void *used,
	       const struct rp_region *regions, uint32_t nregions, struct rp_slot *slots, int event_idx);

/* Translate [da, da + len) to a host pointer, 0 when it is not inside one region. */
uint8_t *rp_translate(const struct rp_region *regions, uint32_t nregions, uint64_t da, uint64_t len);

/* ---- driver side ---- */
void rp_drv_reset(struct rp_vq *vq); /* zero the ring, all descriptors free */
int rp_drv_add(struct rp_vq *vq, const struct rp_buf *bufs, uint32_t n, uint64_t token);
int rp_drv_add_many(struct rp_vq *vq, const struct rp_buf *bufs, const uint64_t *tokens, uint32_t n);
int rp_drv_publish(struct rp_vq *vq); /* 1: notify the device, 0: it asked not to be */
int rp_drv_get_used(struct rp_vq *vq, struct rp_used *out, uint32_t max);
int rp_drv_has_used(struct rp_vq *vq);
/* The next used entry without taking it, for a caller that reads a used buffer in place first: 1 and the entry as
 * rp_drv_get_used gives it (checked the same way), 0 when none waits, < 0 a fault (the queue broken, as
 * rp_drv_get_used leaves it). It stays next until rp_drv_skip takes it (1 and the entry again; its descriptors
 * freed and used_event updated as after rp_drv_get_used), RP_ERR_ARG when none waits. */
int rp_drv_peek(struct rp_vq *vq, struct rp_used *out);
int rp_drv_skip(struct rp_vq *vq, struct rp_used *out);
void rp_drv_disable_cb(struct rp_vq *vq);
int rp_drv_enable_cb(struct rp_vq *vq); /* 1: used entries are already waiting */
/* Copy n payloads (concatenated in `data`, lengths in `lens`) into free buffers taken from the stack
 * `pool`/`*npool` (device addresses of `buf_size` bytes each) and add each as one readable descriptor. */
int rp_drv_send_copy(struct rp_vq *vq, const uint8_t *data, const uint32_t *lens, uint32_t n, uint64_t *pool,
		     uint32_t *npool, uint32_t buf_size);
/* Harvest used entries and push their tokens (buffer addresses) back onto the stack `pool` (capacity cap). */
int rp_drv_reclaim(struct rp_vq *vq, uint64_t *pool, uint32_t *npool, uint32_t cap);
/* Harvest up to `max` used device-writable buffers: copy min(used.len, buffer) bytes of each into `out`
 * (capacity `cap`), lengths into `lens`, and add each buffer back with its original size. */
int rp_drv_recv_copy(struct rp_vq *vq, uint8_t *out, uint32_t cap, uint32_t *lens, uint32_t max,
		     uint32_t buf_size);

/* ---- device side ---- */
int rp_dev_pop(struct rp_vq *vq, struct rp_desc *out, uint32_t max, uint16_t *head);
/* rp_dev_pop without taking the chain: it stays next until rp_dev_skip, which takes it (a caller that reads a
 * message in place first, then decides), returning its head, or RP_ERR_ARG when none waits. `ahead` > 0: the
 * chain that many after the next (0 when fewer wait), to look at early (a prefetch). */
int rp_dev_peek(struct rp_vq *vq, uint16_t ahead, struct rp_desc *out, uint32_t max, uint16_t *head);
int rp_dev_skip(struct rp_vq *vq);
/* A hint, not a look: fetch into this CPU's cache what the avail entry `ahead` after the next names (the driver
 * wrote it on another CPU): its descriptor (bytes 0), or the first `bytes` of its buffer. Nothing is checked,
 * kept or faulted, whether or not the entry is published yet; rp_dev_peek is the look. */
void rp_dev_prefetch(const struct rp_vq *vq, uint16_t ahead, uint32_t bytes);
int rp_dev_pop_many(struct rp_vq *vq, struct rp_desc *descs, uint32_t max_descs, uint16_t *heads,
		    uint16_t *counts, uint32_t max_chains);
int rp_dev_push(struct rp_vq *vq, uint16_t head, uint32_t len);
int rp_dev_push_many(struct rp_vq *vq, const uint16_t *heads, const uint32_t *lens, uint32_t n);
int rp_dev_publish(struct rp_vq *vq);
/* Device: start the used index where the driver left it (before the first pop; RPMsg-Lite's master pre-fills
 * vring 1's used ring with its send buffers, lib/rpmsg_lite/rpmsg_lite.c rpmsg_lite_master_init). RP_OK, or
 * RP_ERR_ARG once something was popped. */
int rp_dev_adopt_used(struct rp_vq *vq); /* 1: notify the driver, 0: it asked not to be */
int rp_dev_has_avail(struct rp_vq *vq);
void rp_dev_disable_notify(struct rp_vq *vq);
int rp_dev_enable_notify(struct rp_vq *vq); /* 1: available entries are already waiting */
/* Pop up to `max` chains, copy their readable bytes into `out` (capacity cap), lengths into `lens`, and
 * return each with used.len 0. */
int rp_dev_recv_copy(struct rp_vq *vq, uint8_t *out, uint32_t cap, uint32_t *lens, uint32_t max);
/* Fill up to n available chains with payloads (concatenated in `data`), each into the chain's writable
 * descriptors, and return each with used.len = bytes written. */
int rp_dev_send_copy(struct rp_vq *vq, const uint8_t *data, const uint32_t *lens, uint32_t n);

#endif /* RPROC_VRING_H */
