/* TI downstream dialect: type 4 = RSC_INTMEM, type 5 = RSC_CUSTOM (PRU interrupt map sub-type 1), next to a
 * standard trace entry. The struct shapes are TI's 3.14..4.4 kernels' (include/linux/remoteproc.h there). */
#include <stddef.h>
#include "rproc/resource_table.h"

struct fw_rsc_intmem {
	uint32_t type;
	uint32_t version;
	uint32_t da;
	uint32_t pa;
	uint32_t len;
	uint32_t reserved[2];
	char name[32];
} RPROC_PACKED;

struct fw_rsc_custom_pru {
	uint32_t type;
	uint32_t sub_type;
	uint32_t rsc_size;
	uint16_t version;
	int8_t chnl_host_intr_map[10];
} RPROC_PACKED;

struct table {
	struct resource_table_hdr hdr;
	uint32_t offset[3];
	struct fw_rsc_intmem l2ram;
	struct fw_rsc_custom_pru intrmap;
	struct fw_rsc_trace trace;
} RPROC_PACKED;

RPROC_RESOURCE_TABLE struct table resources = {
	.hdr = { 1, 3, { 0, 0 } },
	.offset = { offsetof(struct table, l2ram), offsetof(struct table, intrmap), offsetof(struct table, trace) },
	.l2ram = { 4, 1, 0x20000, 0x4b220000, 0x8000, { 0, 0 }, "L2RAM" },
	.intrmap = { 5, 1, 12, 0x0000, { 0, 1, 2, 3, -1, -1, -1, -1, -1, -1 } },
	.trace = { RSC_TRACE, 0x2000, 0x400, 0, "trace:pru0" },
};
