/* An OpenAMP-style table as remote firmware declares it (cf. OpenAMP's apps/machine/<board>/rsc_table.c):
 * a carveout for the vrings and buffers, a trace buffer, and the rpmsg vdev with its two vrings. */
#include <stddef.h>
#include "rproc/resource_table.h"

#define NUM_ENTRIES 3
#define VRING_ALIGN 0x1000
#define VRING_NUM 256
#define TRACE_BUF_LEN 0x1000
#define TRACE_BUF_DA 0x20008000 /* where the firmware's linker script puts its trace buffer */

struct remote_resource_table {
	struct resource_table_hdr hdr;
	uint32_t offset[NUM_ENTRIES];
	struct fw_rsc_carveout vrings_mem;
	struct fw_rsc_trace trace;
	struct fw_rsc_vdev rpmsg_vdev;
	struct fw_rsc_vdev_vring rpmsg_vring0;
	struct fw_rsc_vdev_vring rpmsg_vring1;
} RPROC_PACKED;

RPROC_RESOURCE_TABLE struct remote_resource_table resources = {
	.hdr = { .ver = 1, .num = NUM_ENTRIES, .reserved = { 0, 0 } },
	.offset = {
		offsetof(struct remote_resource_table, vrings_mem),
		offsetof(struct remote_resource_table, trace),
		offsetof(struct remote_resource_table, rpmsg_vdev),
	},
	.vrings_mem = { RSC_CARVEOUT, 0x3ed40000, 0x3ed40000, 0x100000, 0, 0, "vdev0vring0" },
	.trace = { RSC_TRACE, TRACE_BUF_DA, TRACE_BUF_LEN, 0, "trace0" },
	.rpmsg_vdev = { RSC_VDEV, VIRTIO_ID_RPMSG, 0, 1u << VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, { 0, 0 } },
	.rpmsg_vring0 = { FW_RSC_ADDR_ANY, VRING_ALIGN, VRING_NUM, 1, 0 },
	.rpmsg_vring1 = { FW_RSC_ADDR_ANY, VRING_ALIGN, VRING_NUM, 2, 0 },
};
