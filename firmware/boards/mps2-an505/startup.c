/* Reset and fault entry for QEMU's mps2-an505. No libc: copy .data, clear .bss, call main. */
#include <stdint.h>
#include "board.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
extern int main(void);

void reset_handler(void);
void default_handler(void);

__attribute__((noreturn)) void reset_handler(void)
{
	uint32_t *src = &__data_load;
	for (uint32_t *dst = &__data_start; dst < &__data_end;)
		*dst++ = *src++;
	for (uint32_t *dst = &__bss_start; dst < &__bss_end;)
		*dst++ = 0;
	main();
	for (;;)
		__asm__ volatile("wfi");
}

__attribute__((noreturn)) void default_handler(void)
{
	/* A fault ends the run: on QEMU (with -semihosting) SYS_EXIT with ADP_Stopped_RunTimeErrorUnknown makes
	 * QEMU exit with status 1, which the host's qemu platform reports as a crash. On hardware without a
	 * debugger attached the bkpt escalates to lockup, which a watchdog would catch. */
	register uint32_t op __asm__("r0") = 0x18;       /* SYS_EXIT */
	register uint32_t reason __asm__("r1") = 0x20023; /* ADP_Stopped_RunTimeErrorUnknown */
	__asm__ volatile("bkpt #0xab" : : "r"(op), "r"(reason) : "memory");
	for (;;)
		;
}

/* A firmware built without the board's uart.c (a table-only test image) enables no UART interrupt: its vector
 * falls back to the fault handler instead of leaving the link without a symbol. */
__attribute__((weak)) void board_uart0_rx_handler(void)
{
	default_handler();
}

/* The 16 system exceptions, then external interrupts 0..47: 32 is UART0 RX (board.h), every other one faults (none
 * is enabled). 64 entries: the table at 0x10000000 is aligned to its size rounded up to a power of two, as VTOR
 * requires. */
#define NUM_IRQS 48
__attribute__((section(".vectors"), used)) static const void *const vectors[16 + NUM_IRQS] = {
	[0] = &__stack_top,     /* initial SP */
	[1] = reset_handler,    /* reset */
	[2 ... 7] = default_handler, /* NMI, HardFault, MemManage, BusFault, UsageFault, SecureFault */
	[11 ... 12] = default_handler, /* SVCall, DebugMonitor */
	[14 ... 15 + BOARD_UART0_RX_IRQ] = default_handler, /* PendSV, SysTick, external interrupts 0..31 */
	[16 + BOARD_UART0_RX_IRQ] = board_uart0_rx_handler,
	[17 + BOARD_UART0_RX_IRQ ... 15 + NUM_IRQS] = default_handler,
};
