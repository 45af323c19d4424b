/* RP2350 registers this board uses. Every address and field is from raspberrypi/pico-sdk,
 * src/rp2350/hardware_regs/include/hardware/regs/{addressmap,resets,clocks,xosc,pll,io_qspi,pads_qspi,uart}.h. */
#ifndef RPROC_RP2350_H
#define RPROC_RP2350_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))
/* Atomic aliases of every peripheral register (addressmap.h REG_ALIAS_*_BITS). */
#define ALIAS_XOR 0x1000u
#define ALIAS_SET 0x2000u
#define ALIAS_CLR 0x3000u

#define CLOCKS_BASE 0x40010000u
#define RESETS_BASE 0x40020000u
#define IO_QSPI_BASE 0x40030000u
#define PADS_QSPI_BASE 0x40040000u
#define XOSC_BASE 0x40048000u
#define PLL_SYS_BASE 0x40050000u
#define PLL_USB_BASE 0x40058000u
#define UART0_BASE 0x40070000u
#define WATCHDOG_BASE 0x400d8000u

/* RESETS: a block is held in reset while its bit in RESET is set; RESET_DONE says it came out. */
#define RESETS_RESET (RESETS_BASE + 0x0u)
#define RESETS_RESET_DONE (RESETS_BASE + 0x8u)
#define RESETS_UART0 (1u << 26)
#define RESETS_PLL_USB (1u << 15)
#define RESETS_PLL_SYS (1u << 14)
#define RESETS_PADS_QSPI (1u << 10)
#define RESETS_IO_QSPI (1u << 7)

/* CLOCKS */
#define CLK_REF_CTRL (CLOCKS_BASE + 0x30u)     /* SRC[1:0]: 0 ROSC, 1 aux, 2 XOSC; AUXSRC[6:5]: 0 PLL_USB */
#define CLK_REF_DIV (CLOCKS_BASE + 0x34u)      /* INT[23:16] */
#define CLK_REF_SELECTED (CLOCKS_BASE + 0x38u) /* one-hot by SRC */
#define CLK_SYS_CTRL (CLOCKS_BASE + 0x3cu)     /* SRC bit 0: 0 clk_ref, 1 aux; AUXSRC[7:5]: 1 PLL_USB */
#define CLK_SYS_SELECTED (CLOCKS_BASE + 0x44u)
#define CLK_PERI_CTRL (CLOCKS_BASE + 0x48u) /* ENABLE bit 11; AUXSRC[7:5]: 0 clk_sys */
#define CLK_PERI_DIV (CLOCKS_BASE + 0x4cu)  /* reset 0x10000: divide by 1 */
#define CLK_PERI_HZ 48000000u               /* after board_clock_init (startup.c): clk_sys, undivided */
#define CLK_REF_SRC_AUX 0x1u
#define CLK_REF_AUXSRC_PLL_USB (0x0u << 5)
#define CLK_SYS_SRC_AUX 0x1u
#define CLK_SYS_AUXSRC_BITS (0x7u << 5)
#define CLK_SYS_AUXSRC_PLL_USB (0x1u << 5)
#define CLK_PERI_ENABLE (1u << 11)
#define CLK_PERI_AUXSRC_CLK_SYS (0x0u << 5)

/* XOSC */
#define XOSC_CTRL (XOSC_BASE + 0x0u)   /* FREQ_RANGE[11:0] (0xaa0: 1-15 MHz), ENABLE[23:12] (0xfab) */
#define XOSC_STATUS (XOSC_BASE + 0x4u) /* STABLE bit 31 */
#define XOSC_STARTUP (XOSC_BASE + 0xcu)
#define XOSC_FREQ_RANGE_1_15MHZ 0xaa0u
#define XOSC_ENABLE (0xfabu << 12)
#define XOSC_STABLE (1u << 31)
/* pico-sdk hardware_xosc: ((XOSC_HZ / 1000 + 128) / 256) * PICO_XOSC_STARTUP_DELAY_MULTIPLIER (6), 12 MHz */
#define XOSC_STARTUP_DELAY (((12000u + 128u) / 256u) * 6u)

/* PLL (same layout for PLL_SYS and PLL_USB) */
#define PLL_CS 0x0u        /* REFDIV[5:0], LOCK bit 31 */
#define PLL_PWR 0x4u       /* power-down bits: PD 0x1, POSTDIVPD 0x8, VCOPD 0x20 */
#define PLL_FBDIV_INT 0x8u
#define PLL_PRIM 0xcu      /* POSTDIV1[18:16], POSTDIV2[14:12] */
#define PLL_CS_LOCK (1u << 31)
#define PLL_PWR_PD 0x1u
#define PLL_PWR_POSTDIVPD 0x8u
#define PLL_PWR_VCOPD 0x20u

/* IO_QSPI: FUNCSEL[4:0] of the QSPI pins; 0x0b is UART0_TX on SD2 and UART0_RX on SD3 (reset 0x1f: NULL). */
#define IO_QSPI_SD2_CTRL (IO_QSPI_BASE + 0x34u)
#define IO_QSPI_SD3_CTRL (IO_QSPI_BASE + 0x3cu)
#define IO_QSPI_FUNCSEL_UART0 0x0bu

/* PADS_QSPI: reset 0x15a = ISO | IE | DRIVE 4 mA | PUE | SCHMITT. ISO (isolation) must be cleared. */
#define PADS_QSPI_SD2 (PADS_QSPI_BASE + 0x10u)
#define PADS_QSPI_SD3 (PADS_QSPI_BASE + 0x14u)
#define PADS_ISO (1u << 8)
#define PADS_OD (1u << 7)
#define PADS_IE (1u << 6)

/* WATCHDOG: CTRL ENABLE bit 30 */
#define WATCHDOG_CTRL (WATCHDOG_BASE + 0x0u)
#define WATCHDOG_CTRL_ENABLE (1u << 30)

/* UART0: an Arm PL011 */
#define UART_DR (UART0_BASE + 0x00u)
#define UART_FR (UART0_BASE + 0x18u) /* TXFF 0x20, RXFE 0x10, BUSY 0x08 */
#define UART_IBRD (UART0_BASE + 0x24u)
#define UART_FBRD (UART0_BASE + 0x28u)
#define UART_LCR_H (UART0_BASE + 0x2cu) /* writing it latches IBRD/FBRD */
#define UART_CR (UART0_BASE + 0x30u)
#define UART_FR_TXFF 0x20u
#define UART_FR_RXFE 0x10u
#define UART_FR_BUSY 0x08u
#define UART_LCR_H_8N1_FIFO 0x70u /* WLEN 8 bits (3 << 5) | FEN */
#define UART_CR_ENABLE 0x301u     /* RXE | TXE | UARTEN */

/* Hold `mask` blocks in reset, release them, wait until they are out (pico-sdk reset_unreset_block_wait). */
static inline void rp2350_reset_cycle(uint32_t mask)
{
	REG32(RESETS_RESET + ALIAS_SET) = mask;
	REG32(RESETS_RESET + ALIAS_CLR) = mask;
	while ((REG32(RESETS_RESET_DONE) & mask) != mask)
		;
}

#endif
