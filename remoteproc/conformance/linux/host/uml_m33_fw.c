/*
 * The firmware Linux's remoteproc core loads for uml_rproc and the emulated Cortex-M33 (QEMU mps2-an505) then runs:
 * the M33's RAM at 0x80000000 (the board's mps.ram) is the very file the UML guest maps with iomem=, so Linux's
 * ELF loader writes these segments where the M33 executes them (remoteproc/conformance/linux/uml_qemu.py).
 *
 * Everything lives in that file: the vector table at its first byte (the boot stub, uml_m33_boot.c, points VTOR
 * at it), code, the resource table, data and bss; only the stack is in the M33's own SRAM. The table has a trace
 * buffer and an rpmsg vdev whose vrings sit at the driver's vdev0vring0/1 carveouts (-D addresses in the M33's
 * view, which uml_rproc.da= makes the table's device addresses).
 *
 * Linux's descriptors hold guest-physical addresses, not the M33's: the host side sends that physical address of
 * the file's offset 0 (uml_rproc's PHYS message) as the first 8 bytes on UART0, little-endian, before any kick;
 * the rpmsg library then looks addresses up in two windows onto the same memory (rpmsg_remote_init_regions).
 * Kicks are single bytes on UART0 each way (the queue number to the host; the host's are drained, we poll).
 * "crash" on the channel faults the core on purpose: the fault handler ends QEMU through semihosting, which the
 * host side reports to Linux as a crash.
 */
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "rproc/resource_table.h"
#include "rproc/rpmsg_remote.h"

struct uml_fw_table {
	struct resource_table_hdr hdr;
	uint32_t offset[2];
	struct fw_rsc_trace trace;
	struct fw_rsc_vdev vdev;
	struct fw_rsc_vdev_vring vring[2];
} RPROC_PACKED;

RPROC_RESOURCE_TABLE volatile struct uml_fw_table resource_table = {
	.hdr = { 1, 2, { 0, 0 } },
	.offset = { offsetof(struct uml_fw_table, trace), offsetof(struct uml_fw_table, vdev) },
	.trace = { RSC_TRACE, TRACE_DA, TRACE_LEN, 0, "trace0" },
	.vdev = { RSC_VDEV, VIRTIO_ID_RPMSG, VDEV_NOTIFYID, 1u << VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, { 0, 0 } },
	.vring = { { VRING0_DA, VRING_ALIGN, VRING_NUM, 0, 0 }, { VRING1_DA, VRING_ALIGN, VRING_NUM, 0, 0 } },
};

extern uint32_t __bss_start, __bss_end, __stack_top;
int main(void);
void reset_handler(void);
void fault_handler(void);

__attribute__((noreturn)) void reset_handler(void)
{
	/* Linux's loader zero-filled bss (memsz > filesz) and wrote data in place: nothing to copy. */
	for (uint32_t *p = &__bss_start; p < &__bss_end;)
		*p++ = 0;
	main();
	for (;;)
		__asm__ volatile("wfi");
}

__attribute__((noreturn)) void fault_handler(void)
{
	register uint32_t op __asm__("r0") = 0x18;        /* semihosting SYS_EXIT */
	register uint32_t reason __asm__("r1") = 0x20023; /* ADP_Stopped_RunTimeErrorUnknown: QEMU exits 1 */
	__asm__ volatile("bkpt #0xab" : : "r"(op), "r"(reason) : "memory");
	for (;;)
		;
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
	&__stack_top, reset_handler, fault_handler, fault_handler, fault_handler, fault_handler, fault_handler,
	fault_handler, 0, 0, 0, fault_handler, fault_handler, 0, fault_handler, fault_handler,
};

static void trace(const char *text)
{
	volatile char *buf = (volatile char *)TRACE_DA;
	uint32_t i = 0;
	for (; text[i] && i < TRACE_LEN - 1; i++)
		buf[i] = text[i];
	buf[i] = 0;
}

static void kick(void *ctx, uint32_t queue)
{
	(void)ctx;
	board_uart_putc((uint8_t)queue);
}

static void echo(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		 uint32_t src)
{
	if (len == 5 && data[0] == 'c' && data[1] == 'r' && data[2] == 'a' && data[3] == 's' && data[4] == 'h') {
		trace("uml-m33: crashing on purpose\n");
		*(volatile uint32_t *)0xFFFFFFF0u = 1; /* a bus fault, escalated to HardFault */
	}
	/* The payload is still in Linux's buffer (zero-copy receive); the send copies it into one of its receive
	 * buffers, which Linux re-posts as it reads them. */
	while (rpmsg_send(r, ept->addr, src, (const void *)data, len) == RPMSG_ERR_NO_BUFFER)
		;
}

static uint8_t uart_getc_blocking(void)
{
	int c;
	while ((c = board_uart_getc()) < 0)
		;
	return (uint8_t)c;
}

static struct rpmsg_remote rpmsg;
static struct rpmsg_ept ept;

int main(void)
{
	board_uart_init();
	uint64_t phys = 0;
	for (int i = 0; i < 8; i++)
		phys |= (uint64_t)uart_getc_blocking() << (8 * i);
	const struct rp_region windows[2] = {
		{ MEM_DA, MEM_SIZE, (uint8_t *)MEM_DA }, /* the table's device addresses: this core's view */
		{ phys, MEM_SIZE, (uint8_t *)MEM_DA },   /* Linux's physical addresses in its descriptors */
	};
	for (;;) { /* Linux resets the vdev (status 0) on stop before it stops the core: wait for the next DRIVER_OK */
		while (!rpmsg_remote_ready(&resource_table.vdev))
			while (board_uart_getc() >= 0)
				;
		if (rpmsg_remote_init_regions(&rpmsg, &resource_table.vdev, windows, 2, kick, 0) != RPMSG_OK ||
		    rpmsg_create_ept(&rpmsg, &ept, "rpmsg-raw", RPMSG_ADDR_ANY, echo, 0) != RPMSG_OK) {
			trace("uml-m33: bad vrings\n");
			return 1;
		}
		trace("uml-m33: rpmsg-raw announced by the Cortex-M33\n");
		int rc;
		do {
			while (board_uart_getc() >= 0)
				; /* kicks from Linux: we poll anyway */
			rc = rpmsg_poll(&rpmsg);
		} while (rc >= 0);
		if (rc != RPMSG_ERR_RESET) {
			trace("uml-m33: Linux broke a ring\n");
			return 1;
		}
	}
}
