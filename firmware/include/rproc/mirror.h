/*
 * rproc's memory mirror, the firmware side (the C twin of transports/mirror.py; docs/uart-link.md, "Mirroring"):
 * the host's writes arrive as WRITE {address, bytes} messages applied to this side's copy of the window, and what
 * this side writes (its used rings, the receive buffers it fills) goes back the same way, ring indices last,
 * before each KICK {queue}.
 */
#ifndef RPROC_MIRROR_H
#define RPROC_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#define MIRROR_WRITE 1u
#define MIRROR_KICK 2u
#define MIRROR_BLOCK 32u
#define MIRROR_WRITE_HEAD 5u /* kind u8, device address u32 */

#define MIRROR_ERR_MALFORMED (-2) /* neither a write nor a kick */
#define MIRROR_ERR_RANGE (-3)     /* a write outside the window */
#define MIRROR_ERR_CHUNK (-4)     /* chunk below 2 or above MIRROR_MAX_CHUNK: nothing sent */
#define MIRROR_MAX_CHUNK 256u     /* bytes of data per WRITE at most (the message is built on the stack) */

struct mirror_range {
	uint32_t da;
	uint32_t size;
	uint8_t *shadow; /* size bytes, zeroed at start: what the peer last got from us */
};

struct mirror {
	uint8_t *window; /* this side's copy: device addresses window_da .. window_da + window_size */
	uint32_t window_da, window_size;
	struct mirror_range *ranges; /* what this side writes */
	uint32_t nranges;
	const uint32_t *index_fields; /* 2-byte ring indices among the ranges: sent last (any number) */
	uint32_t nindex;
	uint16_t chunk; /* bytes of data per WRITE (the link's payload minus the 5-byte head) */
	uint32_t applied, sent_bytes;
};

/* Apply one received message: >= 0 a KICK of that queue, -1 a write done, or a MIRROR_ERR_*. */
int mirror_apply(struct mirror *m, const uint8_t *msg, size_t len);
/* Send (through send) everything this side changed since the last flush, ring indices last: 0, or
 * MIRROR_ERR_CHUNK. The same messages in the same order as transports/mirror.py Mirror.changes(). */
int mirror_flush(struct mirror *m, void (*send)(const uint8_t *msg, size_t len));

#endif
