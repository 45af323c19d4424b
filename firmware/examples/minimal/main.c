/* The smallest useful remote: a resource table as firmware authors write it (a carveout for vrings and
 * buffers, a trace buffer, an rpmsg vdev with two vrings) and a main that logs to the trace buffer.
 * The rpmsg remote itself comes with the C remote library (MCU issue); this image is what `rproc info`
 * and the loader tests read. */
#include <stddef.h>
#include <stdint.h>
#include "rproc/resource_table.h"

#define NUM_ENTRIES 3
#define VRING_NUM 256
#define VRING_ALIGN 0x1000
#define SHARED_POOL_DA 0x80100000u /* vrings and buffers: `rproc layout --base 0x80100000` */
#define SHARED_POOL_LEN 0x00100000u
#define TRACE_LEN 0x1000

__attribute__((section(".shared.trace"), aligned(64))) static char trace_buf[TRACE_LEN];

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
	.pool = { RSC_CARVEOUT, SHARED_POOL_DA, SHARED_POOL_DA, SHARED_POOL_LEN, 0, 0, "vdev0buffer" },
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

int main(void)
{
	trace("minimal: up, waiting for the host\n");
	/* The host sets DRIVER_OK (test the bit: Linux writes 0x07, OpenAMP 0x04) once the vrings are placed. */
	while (!(resource_table.vdev.status & VIRTIO_CONFIG_S_DRIVER_OK))
		;
	trace("minimal: host ready\n");
	return 0;
}
