/*
 * The vring engine's fences (vring.c's "Theory of operation" says which order each keeps).
 *
 * rp_mb() keeps a store before a later load: the index we published before our look at the other side's
 * suppression flag or event index (Linux's virtio_mb()). It is the one order an x86-64 host does not keep by
 * itself (TSO lets a load pass an earlier store still in the store buffer), so it is the one a missing fence loses,
 * and losing it loses a notification: both sides look, neither sees the other's store, and both wait.
 *
 * A build for a board whose CPU barrier does not reach the other side defines RP_BOARD_FULL_FENCE as the name of a
 * function that does: QEMU before 8.1 translates DMB/DSB into nothing on a one-CPU machine, so the mps2-an505
 * firmware brings its own (firmware/boards/mps2-an505/fence.c, docs/mcu.md "Fences on the emulated board").
 */
#ifndef RP_VRING_FENCE_H
#define RP_VRING_FENCE_H

#define rp_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#define rp_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)

#ifdef RP_BOARD_FULL_FENCE
void RP_BOARD_FULL_FENCE(void);
#define rp_mb() RP_BOARD_FULL_FENCE()
#else
#define rp_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

#endif /* RP_VRING_FENCE_H */
