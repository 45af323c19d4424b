/*
 * The layout of struct rp_vq (and the structs it points at) as one build compiled it, in one number.
 *
 * virtio._vring_cffi owns each queue's struct rp_vq; rpmsg._fastpath_cffi (its own copy of vring.c: extension
 * modules share no symbols) and rpmsg._endpoint_c work on the same struct through its address. All three are
 * built from the same header in one install, so they agree; a stale or foreign build (one module rebuilt, an
 * RPROC_*_MODULE override) would not, and would read the wrong fields silently. rp_vq_layout() returns this
 * number as each module compiled it: rpmsg/fastpath.py compares the two cffi modules' at import, and
 * rpmsg._endpoint_c compares its own with the rpmsg module's when a Gate is attached. Not part of the cffi cdef
 * (cffi takes only plain integer #defines).
 */
#ifndef RPROC_VRING_LAYOUT_H
#define RPROC_VRING_LAYOUT_H

#include <stddef.h>

#include "vring.h"

/* Sizes and the offsets of the fields the C paths read from outside vring.c, folded into 32 bits. */
#define RP_VQ_LAYOUT                                                                                       \
	((uint32_t)sizeof(struct rp_vq) ^ (uint32_t)offsetof(struct rp_vq, suppressed) << 8 ^                 \
	 (uint32_t)offsetof(struct rp_vq, role) << 12 ^ (uint32_t)offsetof(struct rp_vq, num_free) << 16 ^     \
	 (uint32_t)offsetof(struct rp_vq, err) << 20 ^ (uint32_t)offsetof(struct rp_vq, regions) << 24 ^       \
	 (uint32_t)sizeof(struct rp_region) << 26 ^ (uint32_t)sizeof(struct rp_slot) << 28 ^                   \
	 (uint32_t)offsetof(struct rp_vq, nregions) << 4)

#endif /* RPROC_VRING_LAYOUT_H */
