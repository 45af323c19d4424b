/* QEMU mps2-an505 board support: the CMSDK APB UART0 (0x40200000) used as the doorbell to the host. */
#ifndef RPROC_BOARD_H
#define RPROC_BOARD_H

#include <stdint.h>

#define SHARED_RAM_DA 0x80000000u
#define SHARED_RAM_SIZE 0x01000000u
#define BOARD_CPU_HZ 20000000u /* QEMU's mps2-an505 SYSCLK: SysTick counts at this rate */

void board_uart_init(void);
void board_uart_putc(uint8_t c);
int board_uart_getc(void); /* -1 when nothing was received */

#endif
