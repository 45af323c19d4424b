/* Services firmware: an rpmsg remote with three services.
 *   rpmsg-echo    sends every message back to its sender (received zero-copy, in the host's buffer);
 *   rpmsg-sensor  "start N" streams N samples {u32 seq; int32 value}, value = seq * 37 - 1000 (checkable);
 *   rpmsg-cmd     "trace TEXT" appends TEXT to the trace buffer; "fault" makes the CPU fault (crash test).
 * The resource table is written the way firmware authors write it; the host places the vrings (da ANY) and the
 * rpmsg buffers (in "vdev0buffer"). Kicks are bytes on UART0 each way. Between messages the core sleeps (WFI) until
 * UART0's receive interrupt, the host's kick (rproc/idle.h, docs/mcu.md "Sleeping"); built with RPROC_IDLE_POLL=1
 * (build/poll/services.elf) it polls its vrings instead. Counters of both in shared memory: idle_stats. */
#include <stddef.h>
#include <stdint.h>
#include "board.h"
#include "rproc/idle.h"
#include "rproc/resource_table.h"
#include "rproc/rpmsg_remote.h"

#define NUM_ENTRIES 3
#define VRING_NUM 256
#define VRING_ALIGN 0x1000
#define POOL_DA 0x80100000u
#define POOL_LEN 0x00100000u
#define TRACE_LEN 0x1000

__attribute__((section(".shared.trace"), aligned(64))) static char trace_buf[TRACE_LEN];
/* Read by the host while the firmware runs (tests/remoteproc/test_qemu_sleep.py, benchmarks/mcu_rpmsg.py). */
__attribute__((section(".shared.idle"), aligned(64))) volatile struct rproc_idle_stats idle_stats;

struct remote_resource_table {
	struct resource_table_hdr hdr;
	uint32_t offset[NUM_ENTRIES];
	struct fw_rsc_carveout pool;
	struct fw_rsc_trace trace;
	struct fw_rsc_vdev vdev;
	struct fw_rsc_vdev_vring vring[2];
} RPROC_PACKED;

RPROC_RESOURCE_TABLE volatile struct remote_resource_table resource_table = {
	.hdr = { .ver = 1, .num = NUM_ENTRIES },
	.offset = {
		offsetof(struct remote_resource_table, pool),
		offsetof(struct remote_resource_table, trace),
		offsetof(struct remote_resource_table, vdev),
	},
	.pool = { RSC_CARVEOUT, POOL_DA, POOL_DA, POOL_LEN, 0, 0, "vdev0buffer" },
	.trace = { RSC_TRACE, (uint32_t)(uintptr_t)trace_buf, TRACE_LEN, 0, "trace0" },
	.vdev = { RSC_VDEV, VIRTIO_ID_RPMSG, 0, 1u << VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, { 0, 0 } },
	.vring = {
		{ FW_RSC_ADDR_ANY, VRING_ALIGN, VRING_NUM, 0, 0 },
		{ FW_RSC_ADDR_ANY, VRING_ALIGN, VRING_NUM, 1, 0 },
	},
};

static size_t trace_pos;

static void trace(const char *text)
{
	while (*text && trace_pos < TRACE_LEN - 1)
		trace_buf[trace_pos++] = *text++;
	trace_buf[trace_pos] = '\0';
}

static void kick(void *ctx, uint32_t queue)
{
	(void)ctx;
	board_uart_putc((uint8_t)queue);
}

static int ready(void *ctx)
{
	return rpmsg_remote_ready(ctx);
}

static int has_work(void *ctx)
{
	return rpmsg_has_work(ctx);
}

/* While a send waits for a host receive buffer: the host kicks vring 0 when it posts one (asked for below). */
static int buffer_posted(void *ctx)
{
	struct rpmsg_remote *r = ctx;
	return rpmsg_want_buffer_wakeup(r, 1) || !rpmsg_remote_ready(r->vdev);
}

static void send_all(struct rpmsg_remote *r, uint32_t src, uint32_t dst, const void *data, uint32_t len)
{
	/* The host re-posts a buffer for every message it takes: wait for it (asleep unless RPROC_IDLE_POLL). */
	while (rpmsg_send(r, src, dst, data, len) == RPMSG_ERR_NO_BUFFER && rpmsg_remote_ready(r->vdev))
		rproc_idle(&idle_stats, buffer_posted, r);
	rpmsg_want_buffer_wakeup(r, 0);
}

static void echo_cb(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		    uint32_t src)
{
	/* The payload is still in the host's buffer (zero-copy receive); sending copies it into a new one. */
	send_all(r, ept->addr, src, (const void *)data, len);
}

static uint32_t parse_uint(const volatile uint8_t *p, uint32_t len)
{
	uint32_t v = 0;
	for (uint32_t i = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10u + (uint32_t)(p[i] - '0');
	return v;
}

static int starts_with(const volatile uint8_t *p, uint32_t len, const char *word)
{
	uint32_t i = 0;
	for (; word[i]; i++)
		if (i >= len || p[i] != (uint8_t)word[i])
			return 0;
	return 1;
}

static void sensor_cb(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		      uint32_t src)
{
	if (!starts_with(data, len, "start "))
		return;
	uint32_t n = parse_uint(data + 6, len - 6);
	for (uint32_t seq = 0; seq < n; seq++) {
		int32_t sample[2] = { (int32_t)seq, (int32_t)(seq * 37u) - 1000 };
		send_all(r, ept->addr, src, sample, sizeof(sample));
	}
}

static void cmd_cb(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		   uint32_t src)
{
	if (starts_with(data, len, "trace ")) {
		char line[128];
		uint32_t n = len - 6 < sizeof(line) - 2 ? len - 6 : sizeof(line) - 2;
		for (uint32_t i = 0; i < n; i++)
			line[i] = (char)data[6 + i];
		line[n] = '\n';
		line[n + 1] = '\0';
		trace(line);
		send_all(r, ept->addr, src, "ok", 2);
	} else if (starts_with(data, len, "fault")) {
		trace("cmd: faulting on purpose\n");
		*(volatile uint32_t *)0xFFFFFFF0u = 1; /* a bus fault, escalated to HardFault */
	}
}

static struct rpmsg_remote rpmsg;
static struct rpmsg_ept echo, sensor, cmd;

int main(void)
{
	board_uart_init();
	rproc_idle_setup(&idle_stats);
	if (!RPROC_IDLE_POLL)
		board_uart_rx_irq_enable(); /* the host's kicks wake the core */
	trace("services: up, waiting for DRIVER_OK\n");
	const struct rp_region shared = { SHARED_RAM_DA, SHARED_RAM_SIZE, (uint8_t *)SHARED_RAM_DA };
	for (;;) { /* one round per host: a reset (status 0) ends it, the next DRIVER_OK starts another */
		while (!rpmsg_remote_ready(&resource_table.vdev))
			rproc_idle(&idle_stats, ready, (void *)&resource_table.vdev); /* the host kicks after DRIVER_OK */
		if (rpmsg_remote_init(&rpmsg, &resource_table.vdev, &shared, kick, 0) != RPMSG_OK) {
			trace("services: bad vrings\n");
			return 1;
		}
		rpmsg_create_ept(&rpmsg, &echo, "rpmsg-echo", RPMSG_ADDR_ANY, echo_cb, 0);
		rpmsg_create_ept(&rpmsg, &sensor, "rpmsg-sensor", RPMSG_ADDR_ANY, sensor_cb, 0);
		rpmsg_create_ept(&rpmsg, &cmd, "rpmsg-cmd", RPMSG_ADDR_ANY, cmd_cb, 0);
		trace("services: rpmsg-echo, rpmsg-sensor, rpmsg-cmd announced\n");
		int rc;
		do {
			if (RPROC_IDLE_POLL)
				while (board_uart_getc() >= 0)
					; /* host kicks: we poll anyway */
			rc = rpmsg_poll(&rpmsg);
			idle_stats.doorbells = board_uart_rx_irqs();
			if (rc == 0)
				rproc_idle(&idle_stats, has_work, &rpmsg);
		} while (rc >= 0);
		if (rc != RPMSG_ERR_RESET) {
			trace("services: the host broke a ring\n");
			return 1;
		}
		trace("services: reset by the host\n");
	}
}
