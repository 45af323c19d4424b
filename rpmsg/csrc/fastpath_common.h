/* What the two roles' halves of the per-message C path share (fastpath.c: the host, the wait, the kick, the table;
 * fastpath_remote.c: the remote): the header, the kick after a publish, a buffer's place in memory. Private to
 * them. */
#ifndef RPROC_RPMSG_FASTPATH_COMMON_H
#define RPROC_RPMSG_FASTPATH_COMMON_H

#include <stdint.h>

#include "fastpath.h"

#define HDR 16u /* struct rpmsg_hdr's size */

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* struct rpmsg_hdr: src, dst, reserved, len (u16), flags (u16, 0), little-endian. */
static inline void put_header(uint8_t *p, uint32_t src, uint32_t dst, uint32_t reserved, uint32_t len)
{
	put32(p, src);
	put32(p + 4, dst);
	put32(p + 8, reserved);
	p[12] = (uint8_t)len;
	p[13] = (uint8_t)(len >> 8);
	p[14] = 0;
	p[15] = 0;
}

/* After a publish that asks for a kick (`publish` 1): kick through the kick word; the count, or'ed with
 * RPF_NOTIFY when C could not (the runner kicks). */
static inline int kicked(int publish, const struct rp_vq *vq, int kick_fd, int count)
{
	if (publish && rpf_kick(kick_fd, vq->index))
		return count;
	return count | (publish ? RPF_NOTIFY : 0); /* the runner kicks (and reports a failed write its way) */
}

/* The place in memory of the `buf_size` bytes at `addr`, or NULL (the ring's error set, as the engine's). */
static inline uint8_t *host_of(struct rp_vq *tx, uint64_t addr, uint32_t buf_size)
{
	uint8_t *host = rp_translate(tx->regions, tx->nregions, addr, buf_size);
	if (!host) { /* our own pool address outside the memory: a local error, named like the engine's */
		tx->err = RP_ERR_BAD_ADDR;
		tx->err_where = 0;
		tx->err_value = addr;
	}
	return host;
}

#endif
