/*
 * The firmware ELF that Linux's remoteproc core loads for uml_rproc (kernel-tree/drivers/remoteproc/uml_rproc.c):
 * a resource table (a trace buffer, an rpmsg vdev with two vrings at the driver's vdev0vring0/1 carveouts) and
 * segments with initialised data and zero-fill. Its code never runs: the remote that serves the vdev is a host
 * program (uml_remote.c). Built for the host by remoteproc/conformance/linux/rproc_uml.py with the addresses
 * given as -D macros and a linker script that places every section in the shared memory file.
 */
#include <stddef.h>
#include <stdint.h>

#include "rproc/resource_table.h"

#define RSC_TRACE 2u
#define RSC_VDEV 3u

struct uml_fw_table {
	struct resource_table_hdr hdr;
	uint32_t offset[2];
	struct fw_rsc_trace trace;
	struct fw_rsc_vdev vdev;
	struct fw_rsc_vdev_vring vring[2];
} RPROC_PACKED;

RPROC_RESOURCE_TABLE const struct uml_fw_table resource_table = {
	.hdr = { 1, 2, { 0, 0 } },
	.offset = { offsetof(struct uml_fw_table, trace), offsetof(struct uml_fw_table, vdev) },
	.trace = { RSC_TRACE, TRACE_DA, TRACE_LEN, 0, "trace0" },
	.vdev = { RSC_VDEV, VIRTIO_ID_RPMSG, VDEV_NOTIFYID, 1u << VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, { 0, 0 } },
	.vring = { { VRING0_DA, VRING_ALIGN, VRING_NUM, 0, 0 }, { VRING1_DA, VRING_ALIGN, VRING_NUM, 0, 0 } },
};

#ifndef UML_FW_BANNER
#define UML_FW_BANNER 0
#endif
#define UML_FW_TEXT(n) "rproc uml_rproc test firmware " #n
#define UML_FW_NAME(n) UML_FW_TEXT(n)

const char uml_fw_banner[] = UML_FW_NAME(UML_FW_BANNER); /* differs between the firmware variants */
volatile uint32_t uml_fw_counter = 0x12345678u; /* .data */
uint8_t uml_fw_zero[4096];                      /* .bss: the loader zero-fills it */

void _start(void)
{
	for (;;)
		uml_fw_counter += uml_fw_zero[uml_fw_counter & 4095] + (uint8_t)uml_fw_banner[0];
}
