/* OpenAMP up to v2018.10: type 4 = RSC_RPROC_MEM and type 5 = RSC_FW_CHKSUM, before an rpmsg vdev. */
#include <stddef.h>
#include "rproc/resource_table.h"

struct fw_rsc_rproc_mem {
	uint32_t type;
	uint32_t da;
	uint32_t pa;
	uint32_t len;
	uint32_t reserved;
} RPROC_PACKED;

struct fw_rsc_fw_chksum {
	uint32_t type;
	uint8_t algo[16];
	uint8_t chksum[64];
} RPROC_PACKED;

struct table {
	struct resource_table_hdr hdr;
	uint32_t offset[3];
	struct fw_rsc_rproc_mem mem;
	struct fw_rsc_fw_chksum sum;
	struct fw_rsc_vdev vdev;
	struct fw_rsc_vdev_vring vring[2];
} RPROC_PACKED;

RPROC_RESOURCE_TABLE struct table resources = {
	.hdr = { 1, 3, { 0, 0 } },
	.offset = { offsetof(struct table, mem), offsetof(struct table, sum), offsetof(struct table, vdev) },
	.mem = { 4, 0x3ed00000, 0x3ed00000, 0x40000, 0 },
	.sum = { 5, "sha256", { 0x12, 0x34, 0x56, 0x78 } },
	.vdev = { RSC_VDEV, VIRTIO_ID_RPMSG, 0, 1, 0, 0, 0, 2, { 0, 0 } },
	.vring = { { 0x3ed40000, 0x1000, 256, 1, 0 }, { 0x3ed44000, 0x1000, 256, 2, 0 } },
};
