/*
 * rpmsg over a serial line (docs/uart-link.md): no shared memory, the window lives in this firmware's RAM and the
 * host's copy is kept in step through the serial link on UART0 (transports/uart.py on the host side).
 *
 * The window is rproc's shm profile with 16-entry rings (rpmsg.wiring.UART_PROFILE): vring 0 at 0x0, vring 1 at 0x2000, 16 + 16
 * buffers of 512 bytes from 0x30c0, device addresses 0 .. 0x70c0. The host's first KICK (after its rings and
 * receive buffers arrived) is the start: this side then plays the rpmsg remote with the same C library as the
 * shared-memory firmware, announces `rpmsg-echo` and echoes every message to its sender.
 *
 * Between frames the core sleeps (rproc/idle.h) when the link has nothing timed (sl_quiet) and the rings nothing
 * to do, until UART0's receive interrupt; with RPROC_IDLE_POLL=1 (the RP2350 build, build/poll/uart_echo.elf) it
 * polls the UART (docs/mcu.md, "Sleeping").
 */
#include <stddef.h>
#include <stdint.h>
#include "board.h"
#include "rproc/idle.h"
#include "rproc/mirror.h"
#include "rproc/resource_table.h"
#include "rproc/rpmsg_remote.h"
#include "rproc/serial_link.h"

#define NUM 16u
#define VRING1_DA 0x2000u
#define POOL_DA 0x30c0u
#define BUF_SIZE 512u
#define WINDOW_SIZE (POOL_DA + 2u * NUM * BUF_SIZE)
#define USED_SIZE (6u + 8u * NUM)
#define CPU_HZ BOARD_CPU_HZ /* SysTick counts the processor clock (board.h) */

static uint8_t window[WINDOW_SIZE] __attribute__((aligned(4096)));

static struct {
	struct fw_rsc_vdev vdev;
	struct fw_rsc_vdev_vring vring[2];
} RPROC_PACKED vdev = {
	.vdev = { RSC_VDEV, VIRTIO_ID_RPMSG, 0, 1u << VIRTIO_RPMSG_F_NS, 1u << VIRTIO_RPMSG_F_NS, 0, 0, 2, { 0, 0 } },
	.vring = { { 0, 0x1000, NUM, 0, 0 }, { VRING1_DA, 0x1000, NUM, 1, 0 } },
};

/* What this side writes: both used rings and the host's receive buffers (the first half of the pool). */
static uint8_t shadow_used0[USED_SIZE], shadow_used1[USED_SIZE], shadow_rx[NUM * BUF_SIZE];
static struct mirror_range ranges[] = {
	{ 0x1000u, USED_SIZE, shadow_used0 },
	{ VRING1_DA + 0x1000u, USED_SIZE, shadow_used1 },
	{ POOL_DA, NUM * BUF_SIZE, shadow_rx },
};
static const uint32_t index_fields[] = { 0x1002u, VRING1_DA + 0x1002u };
static struct mirror mirror = { window, 0, WINDOW_SIZE, ranges, 3, index_fields, 2, 256 - MIRROR_WRITE_HEAD, 0, 0 };

static struct sl_link link;
static struct rpmsg_remote rp;
static struct rpmsg_ept echo_ept;
static volatile int started;
static uint32_t ticks_last, ms_acc, ticks_acc;

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static uint32_t now_ms(void)
{
	uint32_t cur = SYST_CVR;
	ticks_acc += (ticks_last - cur) & 0xFFFFFFu; /* a 24-bit down counter */
	ticks_last = cur;
	while (ticks_acc >= CPU_HZ / 1000u) {
		ticks_acc -= CPU_HZ / 1000u;
		ms_acc++;
	}
	return ms_acc;
}

/* In this core's RAM: there is no shared memory on a serial link. */
static struct rproc_idle_stats idle_stats;

static void uart_write(void *ctx, const uint8_t *data, size_t len)
{
	(void)ctx;
	for (size_t i = 0; i < len; i++)
		board_uart_putc(data[i]);
}

static void on_message(void *ctx, const uint8_t *data, size_t len)
{
	(void)ctx;
	int queue = mirror_apply(&mirror, data, len);
	if (queue == 0)
		started = 1; /* the host's start kick: its rings and buffers are here */
}

static void pump(void)
{
	uint8_t buf[64];
	size_t n = 0;
	int c;
	while (n < sizeof buf && (c = board_uart_getc()) >= 0)
		buf[n++] = (uint8_t)c;
	if (n) {
		sl_stir(&link, SYST_CVR); /* when bytes arrive: the host's timing, for the nonces drawn later */
#if !RPROC_IDLE_POLL
		/* QEMU takes the next byte at its main loop's next pass, which a sleeping core does not bring about
		 * (boards/mps2-an505/uart.c, the handler's note): re-arming SysTick does. The ticks so far are counted
		 * first, and the counter goes on from 0 (it reloads 0xFFFFFF at the next tick). */
		(void)now_ms();
		SYST_CVR = 0;
		ticks_last = 0;
#endif
	}
	sl_receive(&link, buf, n, now_ms());
}

#if !RPROC_IDLE_POLL
static int link_busy(void *ctx)
{
	(void)ctx;
	return board_uart_rx_ready() || !sl_quiet(&link) || started;
}

static int has_work(void *ctx)
{
	(void)ctx;
	return board_uart_rx_ready() || !sl_quiet(&link) || rpmsg_has_work(&rp);
}
#else
#define link_busy 0
#define has_work 0
#endif

static void send_message(const uint8_t *msg, size_t len)
{
	while (sl_send(&link, msg, len, now_ms()) == SL_ERR_FULL)
		pump(); /* the window is full: take in ACKs */
}

static void kick(void *ctx, uint32_t queue)
{
	(void)ctx;
	uint8_t k[3] = { MIRROR_KICK, (uint8_t)queue, (uint8_t)(queue >> 8) };
	mirror_flush(&mirror, send_message);
	send_message(k, sizeof k);
}

static void on_echo(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		    uint32_t src)
{
	static uint8_t copy[BUF_SIZE];
	for (uint32_t i = 0; i < len && i < sizeof copy; i++)
		copy[i] = data[i];
	while (rpmsg_send(r, ept->addr, src, copy, len) == RPMSG_ERR_NO_BUFFER)
		pump(); /* the host re-posts its receive buffers as it reads */
}

int main(void)
{
	board_uart_init();
	SYST_RVR = 0xFFFFFFu;
	SYST_CVR = 0;
	SYST_CSR = 5u; /* enabled, processor clock, no interrupt */
	ticks_last = SYST_CVR;
	/* The link's nonces must differ at every boot (docs/uart-link.md, "Randomness"). The emulators (QEMU, the
	 * RP2350 model) derive SysTick from the host's clock, so its value here varies from run to run; a real chip
	 * boots in the same number of cycles every time, and firmware for it should seed from a true random source
	 * instead (on the RP2350 its TRNG, or the ROSC's RANDOMBIT), which this example does not read. */
	sl_init(&link, 0x55A7E000u ^ SYST_CVR, 8, 256, 100, uart_write, on_message, 0, 0);
	sl_start(&link, now_ms());
#if !RPROC_IDLE_POLL
	board_uart_rx_wake_enable(); /* a byte received wakes the core; pump reads it */
#endif
	while (!started) {
		pump();
		rproc_idle(&idle_stats, link_busy, 0);
	}
	vdev.vdev.status = VIRTIO_CONFIG_S_DRIVER_OK; /* local only: a serial link has no status byte */
	struct rp_region region = { 0, WINDOW_SIZE, window };
	if (rpmsg_remote_init(&rp, &vdev.vdev, &region, kick, 0) != RPMSG_OK)
		for (;;)
			pump();
	rpmsg_create_ept(&rp, &echo_ept, "rpmsg-echo", RPMSG_ADDR_ANY, on_echo, 0);
	mirror_flush(&mirror, send_message);
	for (;;) {
		pump();
		/* Whatever the poll changed (buffers returned, replies written) goes out even when no kick is due:
		 * the host may be polling, and it sees only what the link carries. */
		if (rpmsg_poll(&rp) > 0)
			mirror_flush(&mirror, send_message);
		rproc_idle(&idle_stats, has_work, 0);
	}
}
