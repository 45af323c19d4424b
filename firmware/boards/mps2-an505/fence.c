/* The full fence of the vring engine on this board (RP_BOARD_FULL_FENCE, virtio/csrc/vring_fence.h).
 *
 * QEMU up to 8.0 drops DMB and DSB on a machine with one CPU (tcg_gen_mb() emits its barrier only for CF_PARALLEL
 * code; QEMU 8.1 changed that, Richard Henderson's "tcg: Do not elide memory barriers for !CF_PARALLEL in system
 * mode", June 2023, because virtio rings need them). Debian 12 ships QEMU 7.2. The guest's stores and loads are then
 * plain host stores and loads, and an x86-64 host lets the load of the host's flag pass this core's earlier store of
 * the ring index: the Dekker pattern of notification suppression fails and a kick is lost (measured by
 * tests/remoteproc/test_qemu_fence.py: 8-10 % of rounds with DMB alone, none with this fence).
 *
 * A read of a device register is done by QEMU under its big lock (io_readx takes it for a region with global
 * locking, as the System Control Space is), and taking a lock is a locked instruction: a full fence on an x86-64
 * host. CPUID is read-only and reading it has no effect. On the hardware the DMB is the fence and the read costs a
 * few cycles. */
#include <stdint.h>

#define SCB_CPUID (*(volatile const uint32_t *)0xE000ED00u)

void board_full_fence(void);

void board_full_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* the architecture's fence (DMB ISH) */
	(void)SCB_CPUID;
}
