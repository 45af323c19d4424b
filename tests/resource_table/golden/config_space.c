/* A vdev with config space (a virtio console: cols, rows, max_nr_ports, emerg_wr = 12 bytes, plus 3 bytes of
 * device-specific extra) and an entry after it that therefore starts unaligned, as in a packed table. */
#include <stddef.h>
#include "rproc/resource_table.h"

struct table {
	struct resource_table_hdr hdr;
	uint32_t offset[2];
	struct fw_rsc_vdev console;
	struct fw_rsc_vdev_vring vring[2];
	uint8_t config[15];
	struct fw_rsc_carveout heap;
} RPROC_PACKED;

RPROC_RESOURCE_TABLE struct table resources = {
	.hdr = { 1, 2, { 0, 0 } },
	.offset = { offsetof(struct table, console), offsetof(struct table, heap) },
	.console = { RSC_VDEV, 3, FW_RSC_NOTIFY_ID_ANY, 0x1, 0, 15, 0, 2, { 0, 0 } },
	.vring = {
		{ 0x10040000, 0x40, 64, FW_RSC_NOTIFY_ID_ANY, 0 },
		{ 0x10042000, 0x40, 64, FW_RSC_NOTIFY_ID_ANY, 0 },
	},
	.config = { 80, 0, 25, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc },
	.heap = { RSC_CARVEOUT, FW_RSC_ADDR_ANY, FW_RSC_ADDR_ANY, 0x8000, 0, 0, "heap" },
};
