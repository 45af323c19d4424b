/* The store-buffering litmus test of the vring engine's full fence, rp_mb() (virtio/csrc/vring_fence.h), between
 * this core and a host thread (tests/remoteproc/fence_litmus_host.c; tests/remoteproc/test_qemu_fence.py runs both).
 *
 * Each round the host writes y, fences and reads x; this core writes x, fences and reads y. With both fences real,
 * at least one side sees the other's store: a round where neither does is a store that a later load passed, the
 * reordering that loses a notification (a ring index and the other side's suppression flag, in place of x and y).
 * Built with LITMUS_NO_FENCE=1 this side has no fence, the control that shows the test sees such rounds. */
#include <stdint.h>
#include "litmus.h"
#include "vring_fence.h"

#ifndef LITMUS_NO_FENCE
#define LITMUS_NO_FENCE 0
#endif

__attribute__((section(".shared.litmus"), aligned(64))) volatile struct litmus litmus;

int main(void)
{
	uint32_t last = 0;

	litmus.magic = LITMUS_MAGIC;
	for (;;) {
		uint32_t round = litmus.go;

		if (round == last)
			continue;
		litmus.x = round;
		if (!LITMUS_NO_FENCE)
			rp_mb();
		litmus.seen = litmus.y;
		litmus.done = round;
		last = round;
	}
}
