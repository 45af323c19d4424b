/*
 * The boot stub QEMU's mps2-an505 runs first (-kernel): the M33 resets from the secure vector table at
 * 0x10000000 (ssram-0, the board's INITSVTOR), which is not the memory Linux loads. The stub points VTOR at the
 * firmware's vector table, the first word of the shared file (FW_VECTORS, 0x80000000 in the M33's view), takes
 * its stack pointer and jumps to its reset handler, as a boot ROM hands over to an image.
 */
#include <stdint.h>

void stub_reset(void);

__attribute__((section(".vectors"), used)) static const void *const stub_vectors[2] = {
	(void *)STUB_STACK, stub_reset,
};

__attribute__((naked, noreturn)) void stub_reset(void)
{
	__asm__ volatile("ldr r0, =%c0\n"
			 "ldr r1, =0xE000ED08\n" /* SCB->VTOR */
			 "str r0, [r1]\n"
			 "dsb\n"
			 "isb\n"
			 "ldr r1, [r0]\n"
			 "msr msp, r1\n"
			 "ldr r1, [r0, #4]\n"
			 "bx r1\n"
			 :
			 : "i"(FW_VECTORS));
}
