/*
 * The idle step of an rpmsg remote on an Armv8-M core (docs/mcu.md, "Sleeping"): sleep until the host's doorbell
 * interrupt instead of polling the rings, without losing a kick that lands between the look and the sleep.
 *
 *   cpsid i      PRIMASK = 1: from here an interrupt becomes pending but its handler does not run
 *   has_work()   look at the rings (rpmsg_has_work): a kick after this look leaves its interrupt pending
 *   wfi          only when there was no work: a pending interrupt wakes the core even with PRIMASK set
 *   cpsie i      the doorbell's handler runs now, after the look and the sleep, never between them
 *
 * ARMv8-M Architecture Reference Manual (Arm DDI 0553), the WFI instruction and "Wait For Interrupt": WFI suspends
 * execution until a WFI wakeup event, among them an interrupt that becomes pending and that, ignoring PRIMASK, would
 * preempt the current execution; PRIMASK only holds its handler back until it is cleared. The same rule is in the
 * ARMv7-M ARM (DDI 0403) B1.5.19 and Arm's knowledge article KA16222 ("How can a Cortex-M processor wake up from WFI
 * if interrupts are masked or disabled?"). WFI may also complete at once (the architecture lets it be a NOP): the
 * caller loops, so that is only a wasted pass.
 *
 * Build with -DRPROC_IDLE_POLL=1 (make IDLE=poll) for a board whose doorbell raises no interrupt: the step then
 * returns at once and the main loop polls, as the library did before.
 */
#ifndef RPROC_IDLE_H
#define RPROC_IDLE_H

#include <stdint.h>

#ifndef RPROC_IDLE_POLL
#define RPROC_IDLE_POLL 0
#endif
/* Tests only (tests/remoteproc/test_qemu_sleep.py builds these): RPROC_IDLE_RACE_WINDOW busy-waits that many
 * iterations between the look and the WFI, widening the window a kick can fall into; RPROC_IDLE_UNSAFE=1 looks
 * with interrupts enabled, the naive order that loses such a kick. */
#ifndef RPROC_IDLE_RACE_WINDOW
#define RPROC_IDLE_RACE_WINDOW 0
#endif
#ifndef RPROC_IDLE_UNSAFE
#define RPROC_IDLE_UNSAFE 0
#endif

#define RPROC_IDLE_MAGIC 0x454c4449u /* "IDLE" */
#define RPROC_IDLE_MODE_WFI 1u
#define RPROC_IDLE_MODE_POLL 2u

/* Counters the host reads in shared memory while the remote runs (tests/remoteproc/test_qemu_sleep.py). */
struct rproc_idle_stats {
	uint32_t magic;     /* RPROC_IDLE_MAGIC once set up */
	uint32_t mode;      /* RPROC_IDLE_MODE_WFI or RPROC_IDLE_MODE_POLL */
	uint32_t loops;     /* passes of the main loop (rproc_idle calls) */
	uint32_t sleeps;    /* WFIs entered */
	uint32_t doorbells; /* doorbell interrupts taken (copied from the board's handler) */
};

static inline void rproc_idle_setup(volatile struct rproc_idle_stats *st)
{
	st->loops = 0;
	st->sleeps = 0;
	st->doorbells = 0;
	st->mode = RPROC_IDLE_POLL ? RPROC_IDLE_MODE_POLL : RPROC_IDLE_MODE_WFI;
	st->magic = RPROC_IDLE_MAGIC;
}

/* One idle step: sleep until an interrupt unless has_work(ctx) says there is work. 1 when it slept. */
static inline int rproc_idle(volatile struct rproc_idle_stats *st, int (*has_work)(void *ctx), void *ctx)
{
	st->loops++;
#if RPROC_IDLE_POLL
	(void)has_work;
	(void)ctx;
	return 0;
#else
	if (!RPROC_IDLE_UNSAFE)
		__asm__ volatile("cpsid i" ::: "memory");
	int slept = !has_work(ctx);
	if (slept) {
#if RPROC_IDLE_RACE_WINDOW
		for (volatile uint32_t i = 0; i < RPROC_IDLE_RACE_WINDOW; i++)
			;
#endif
		st->sleeps++;
		/* dsb: the counter and every store before it complete before the core sleeps */
		__asm__ volatile("dsb\n\twfi" ::: "memory");
	}
	__asm__ volatile("cpsie i\n\tisb" ::: "memory"); /* isb: the pending handler is taken right here */
	return slept;
#endif
}

#endif /* RPROC_IDLE_H */
