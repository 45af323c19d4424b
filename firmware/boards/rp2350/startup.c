/*
 * Reset entry of the RP2350 RAM image. How it gets here (raspberrypi/pico-bootrom-rp2350): the UART boot shell's
 * `x` (src/nsboot/nsboot_uart_client.S) reboots through the watchdog with PSM WDSEL = everything but the
 * processor cold domain (src/main/arm/varm_apis.c s_varm_hx_reboot), so clocks, XOSC, PLLs and RESETS are back in
 * their reset state: clk_sys runs from the ROSC (about 12 MHz), clk_peri is off, UART0 and the PLLs are held in
 * reset, the QSPI pins select no function. The boot path then finds this image's IMAGE_DEF (below) in the first
 * 4 KiB of SRAM and, as the block has no VECTOR_TABLE or ENTRY_POINT item, takes the vector table from the start of
 * the image: VTOR = 0x20000000, SP = vectors[0], PC = vectors[1], MSPLIM = 0 (src/main/arm/varm_launch_image.c).
 * Everything else this firmware sets up itself. The image is already in place in RAM (.data included): only .bss
 * is cleared.
 */
#include <stdint.h>
#include "board.h"
#include "rp2350.h"

extern uint32_t __bss_start, __bss_end, __stack_top;
extern int main(void);

void reset_handler(void);
void default_handler(void);

/*
 * 48 MHz for clk_sys and clk_peri, the way the boot ROM sets them up for its own UART boot
 * (src/main/arm/varm_nsboot.c s_varm_nsboot_clock_setup) with pico-sdk's XOSC and PLL start-up order
 * (hardware_xosc xosc_init, hardware_pll pll_init): 12 MHz crystal, PLL_USB 12 MHz x 100 = 1200 MHz VCO, / 5 / 5.
 * The sources are first switched to glitchless ones, so this is also safe when it starts from a warm state.
 */
void board_clock_init(void)
{
	REG32(WATCHDOG_CTRL + ALIAS_CLR) = WATCHDOG_CTRL_ENABLE;
	/* clk_ref / 2 first, as the ROM does: some tolerance of ROSC glitches. */
	REG32(CLK_REF_DIV) = 2u << 16;
	(void)REG32(CLK_REF_DIV);
	/* clk_sys onto clk_ref, clk_ref onto the ROSC, clk_peri off: nothing may run from the PLL about to reset. */
	REG32(CLK_SYS_CTRL + ALIAS_CLR) = CLK_SYS_SRC_AUX;
	while (REG32(CLK_SYS_SELECTED) != 0x1u)
		;
	REG32(CLK_REF_CTRL + ALIAS_CLR) = 0x3u;
	while (REG32(CLK_REF_SELECTED) != 0x1u)
		;
	REG32(CLK_PERI_CTRL + ALIAS_CLR) = CLK_PERI_ENABLE;

	REG32(XOSC_CTRL) = XOSC_FREQ_RANGE_1_15MHZ;
	REG32(XOSC_STARTUP) = XOSC_STARTUP_DELAY;
	REG32(XOSC_CTRL + ALIAS_SET) = XOSC_ENABLE;
	while (!(REG32(XOSC_STATUS) & XOSC_STABLE))
		;

	rp2350_reset_cycle(RESETS_PLL_USB);
	REG32(PLL_USB_BASE + PLL_CS) = 1u; /* REFDIV 1 */
	REG32(PLL_USB_BASE + PLL_FBDIV_INT) = 100u;
	REG32(PLL_USB_BASE + PLL_PWR + ALIAS_CLR) = PLL_PWR_PD | PLL_PWR_VCOPD;
	while (!(REG32(PLL_USB_BASE + PLL_CS) & PLL_CS_LOCK))
		;
	REG32(PLL_USB_BASE + PLL_PRIM) = (5u << 16) | (5u << 12);
	REG32(PLL_USB_BASE + PLL_PWR + ALIAS_CLR) = PLL_PWR_POSTDIVPD;

	/* clk_ref: aux = PLL_USB (changed while not selected), then the glitchless switch to aux: 24 MHz. */
	REG32(CLK_REF_CTRL) = CLK_REF_AUXSRC_PLL_USB;
	REG32(CLK_REF_CTRL + ALIAS_SET) = CLK_REF_SRC_AUX;
	while (REG32(CLK_REF_SELECTED) != (1u << CLK_REF_SRC_AUX))
		;
	/* clk_sys: aux = PLL_USB while it runs from clk_ref, then the glitchless switch to aux: 48 MHz. */
	REG32(CLK_SYS_CTRL) = CLK_SYS_AUXSRC_PLL_USB;
	REG32(CLK_SYS_CTRL + ALIAS_SET) = CLK_SYS_SRC_AUX;
	while (!(REG32(CLK_SYS_SELECTED) & (1u << CLK_SYS_SRC_AUX)))
		;
	/* clk_peri (UART0's clock) from clk_sys, divider left at its reset value 1: 48 MHz. */
	REG32(CLK_PERI_CTRL) = CLK_PERI_AUXSRC_CLK_SYS;
	REG32(CLK_PERI_CTRL + ALIAS_SET) = CLK_PERI_ENABLE;
}

__attribute__((noreturn)) void reset_handler(void)
{
	board_clock_init();
	for (uint32_t *dst = &__bss_start; dst < &__bss_end;)
		*dst++ = 0;
	main();
	for (;;)
		__asm__ volatile("wfi");
}

__attribute__((noreturn)) void default_handler(void)
{
	/* No semihosting on the chip: stop here, where a debugger (SWD) finds the fault in the xPSR and CFSR. */
	for (;;)
		__asm__ volatile("wfi");
}

/* The 16 Armv8-M system exceptions; this firmware enables no interrupt, so no IRQ vectors follow. */
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

/*
 * The minimal IMAGE_DEF block for a Secure Arm executable (RP2350 datasheet 5.9.5; pico-sdk
 * src/rp2_common/pico_crt0/embedded_start_block.inc.S and boot/picobin.h), which the boot ROM must find in the first
 * 4 KiB: link.ld puts it right after the vector table and asserts that it ends in time.
 */
__attribute__((section(".embedded_block"), used, aligned(4))) static const uint32_t image_def[5] = {
	0xffffded3u, /* PICOBIN_BLOCK_MARKER_START */
	0x10210142u, /* item IMAGE_TYPE (0x42), 1 word: EXE | security S | CPU Arm | chip RP2350 */
	0x000001ffu, /* item LAST (0xff): the items above are 1 word */
	0x00000000u, /* offset of the next block in the loop: 0, this block links to itself */
	0xab123579u, /* PICOBIN_BLOCK_MARKER_END */
};
