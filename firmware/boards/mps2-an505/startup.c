/* Reset and fault entry for QEMU's mps2-an505. No libc: copy .data, clear .bss, call main. */
#include <stdint.h>

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

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
	&__stack_top,     /* initial SP */
	reset_handler,    /* reset */
	default_handler,  /* NMI */
	default_handler,  /* HardFault */
	default_handler,  /* MemManage */
	default_handler,  /* BusFault */
	default_handler,  /* UsageFault */
	default_handler,  /* SecureFault */
	0, 0, 0,          /* reserved */
	default_handler,  /* SVCall */
	default_handler,  /* DebugMonitor */
	0,                /* reserved */
	default_handler,  /* PendSV */
	default_handler,  /* SysTick */
};
