/* A big-endian (BE8, Cortex-R5) firmware: the loader must place its segments; its resource table is in the
 * firmware's byte order, which a little-endian host cannot use (Linux reads table words natively). */
#include <stddef.h>
#include "rproc/resource_table.h"
struct t { struct resource_table_hdr hdr; uint32_t offset[1]; struct fw_rsc_trace trace; } RPROC_PACKED;
RPROC_RESOURCE_TABLE struct t resource_table = { { 1, 1, { 0, 0 } }, { offsetof(struct t, trace) },
	{ RSC_TRACE, 0x80001000u, 0x1000, 0, "trace0" } };
const unsigned int marker = 0x11223344;
void _start(void) { for (;;) ; }
