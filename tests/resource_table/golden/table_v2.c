/* A version-2 table (rproc's 64-bit proposal) for a 64-bit remote: carveouts above 4 GiB, a trace buffer,
 * an rpmsg vdev whose vrings the host places, and an optional vendor entry. Entries are 8-byte aligned. */
#include <stddef.h>
#include "rproc/resource_table.h"

struct vendor_v2 {
	struct fw_rsc_hdr_v2 hdr;
	uint32_t value;
} RPROC_PACKED;

struct table {
	struct resource_table_hdr_v2 hdr;
	uint32_t offset[4];
	struct fw_rsc_carveout_v2 ddr;
	struct fw_rsc_trace_v2 trace;
	struct fw_rsc_vdev_v2 rpmsg;
	struct fw_rsc_vdev_vring_v2 vring[2];
	struct vendor_v2 vendor;
	uint8_t pad[4]; /* to the next 8-byte boundary */
} RPROC_PACKED;

RPROC_RESOURCE_TABLE struct table resources = {
	.hdr = { 2, 4, sizeof(struct table), 0 },
	.offset = {
		offsetof(struct table, ddr),
		offsetof(struct table, trace),
		offsetof(struct table, rpmsg),
		offsetof(struct table, vendor),
	},
	.ddr = { { RSC_CARVEOUT, sizeof(struct fw_rsc_carveout_v2), 0, 0 },
		 0x880000000ull, 0x880000000ull, 0x10000000ull, 0, 0, "ddr-high" },
	.trace = { { RSC_TRACE, sizeof(struct fw_rsc_trace_v2), 0, 0 }, 0x8a0000000ull, 0x4000, 0, "trace0" },
	.rpmsg = { { RSC_VDEV, sizeof(struct fw_rsc_vdev_v2) + 2 * sizeof(struct fw_rsc_vdev_vring_v2), 0, 0 },
		   VIRTIO_ID_RPMSG, FW_RSC_NOTIFY_ID_ANY, (1ull << VIRTIO_RPMSG_F_NS) | (1ull << 32), 0, 0, 0, 2,
		   { 0, 0 } },
	.vring = {
		{ FW_RSC_ADDR_ANY64, 0x1000, 512, FW_RSC_NOTIFY_ID_ANY, 0 },
		{ FW_RSC_ADDR_ANY64, 0x1000, 512, FW_RSC_NOTIFY_ID_ANY, 0 },
	},
	.vendor = { { 200, sizeof(struct vendor_v2), RSC_FLAG_OPTIONAL, 0 }, 0xdeadbeef },
	.pad = { 0 },
};
_Static_assert(offsetof(struct table, ddr) % 8 == 0, "v2 entries are 8-byte aligned");
_Static_assert(offsetof(struct table, vendor) % 8 == 0, "v2 entries are 8-byte aligned");
