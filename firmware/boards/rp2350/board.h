/* Raspberry Pi RP2350 board support (Cortex-M33, Secure): a RAM image loaded through the UART boot ROM
 * (remoteproc/platforms/rp2350.py, docs/rp2350.md). The host talks to it on UART0, which the boot ROM also uses: QSPI SD2 =
 * TX, SD3 = RX, 1 Mbaud 8N1. Same API as boards/mps2-an505/board.h. */
#ifndef RPROC_BOARD_H
#define RPROC_BOARD_H

#include <stdint.h>

#define BOARD_CPU_HZ 48000000u   /* clk_sys after board_clock_init(): PLL_USB, 12 MHz crystal x 100 / 25 */
#define BOARD_UART_BAUD 1000000u /* what the boot ROM uses on the same pins */

void board_clock_init(void); /* startup.c: XOSC, PLL_USB, clk_ref, clk_sys, clk_peri (called before main) */
void board_uart_init(void);
void board_uart_putc(uint8_t c);
int board_uart_getc(void); /* -1 when nothing was received */

#endif
