/* Vendor entries (types 128..512) beside standard ones: one with OpenAMP's {type, len} header, one opaque
 * the Linux way (a platform driver's own struct after the type word), and a devmem for a peripheral. */
#include <stddef.h>
#include "rproc/resource_table.h"

struct vendor_clock {
	struct fw_rsc_vendor hdr;
	uint32_t clock_id;
	uint32_t rate_hz;
} RPROC_PACKED;

struct vendor_opaque {
	uint32_t type;
	uint16_t irq;
	uint16_t flags;
	uint8_t mbox[6];
	uint8_t pad[2];
} RPROC_PACKED;

struct table {
	struct resource_table_hdr hdr;
	uint32_t offset[3];
	struct fw_rsc_devmem uart;
	struct vendor_clock clock;
	struct vendor_opaque opaque;
} RPROC_PACKED;

RPROC_RESOURCE_TABLE struct table resources = {
	.hdr = { 1, 3, { 0, 0 } },
	.offset = { offsetof(struct table, uart), offsetof(struct table, clock), offsetof(struct table, opaque) },
	.uart = { RSC_DEVMEM, 0x40200000, 0x40200000, 0x1000, 0x3, 0, "uart0" },
	.clock = { { 130, sizeof(struct vendor_clock) }, 4, 48000000 },
	.opaque = { RSC_VENDOR_END, 37, 0x8001, { 1, 2, 3, 4, 5, 6 }, { 0, 0 } },
};
