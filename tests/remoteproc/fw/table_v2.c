/* A firmware whose resource table is rproc's version 2 (64-bit fields, sized entries): a carveout for the
 * rpmsg buffers, a trace buffer, and an rpmsg vdev whose vrings the host places (FW_RSC_ADDR_ANY64). */
#include <stddef.h>
#include <stdint.h>
#include "rproc/resource_table.h"

#define TRACE_DA 0x80200000u /* a trace buffer in shared RAM that the firmware would write */

struct table {
	struct resource_table_hdr_v2 hdr;
	uint32_t offset[3];
	uint32_t pad;
	struct fw_rsc_carveout_v2 pool;
	struct fw_rsc_trace_v2 trace;
	struct fw_rsc_vdev_v2 vdev;
	struct fw_rsc_vdev_vring_v2 vring[2];
} RPROC_PACKED;

RPROC_RESOURCE_TABLE volatile struct table resource_table = {
	.hdr = { 2, 3, sizeof(struct table), 0 },
	.offset = { offsetof(struct table, pool), offsetof(struct table, trace), offsetof(struct table, vdev) },
	.pool = { { RSC_CARVEOUT, sizeof(struct fw_rsc_carveout_v2), 0, 0 }, 0x80100000ull, 0x80100000ull,
		  0x100000ull, 0, 0, "vdev0buffer" },
	.trace = { { RSC_TRACE, sizeof(struct fw_rsc_trace_v2), 0, 0 }, TRACE_DA, 0x1000, 0,
		   "trace0" },
	.vdev = { { RSC_VDEV, sizeof(struct fw_rsc_vdev_v2) + 2 * sizeof(struct fw_rsc_vdev_vring_v2), 0, 0 },
		  VIRTIO_ID_RPMSG, FW_RSC_NOTIFY_ID_ANY, 1, 0, 0, 0, 2, { 0, 0 } },
	.vring = {
		{ FW_RSC_ADDR_ANY64, 0x1000, 256, FW_RSC_NOTIFY_ID_ANY, 0 },
		{ FW_RSC_ADDR_ANY64, 0x1000, 256, FW_RSC_NOTIFY_ID_ANY, 0 },
	},
};

int main(void)
{
	for (;;)
		;
}
