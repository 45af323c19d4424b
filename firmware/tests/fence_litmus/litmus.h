/* The shared block of the store-buffering litmus test (main.c here, tests/remoteproc/fence_litmus_host.c). */
#ifndef LITMUS_H
#define LITMUS_H

#include <stdint.h>

#define LITMUS_MAGIC 0x4d54494cu /* "LITM" */

/* x and y in cache lines of their own, away from the handshake, as a ring index and a flag are. */
struct litmus {
	uint32_t magic; /* LITMUS_MAGIC once the core runs */
	uint32_t go;    /* the host's round number: a new value starts a round */
	uint32_t done;  /* the round the core finished */
	uint32_t seen;  /* what the core read from y in that round */
	uint32_t pad0[12];
	uint32_t x; /* written by the core */
	uint32_t pad1[15];
	uint32_t y; /* written by the host */
	uint32_t pad2[15];
};

#endif /* LITMUS_H */
