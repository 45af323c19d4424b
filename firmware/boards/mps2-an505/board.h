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

/* The doorbell as an interrupt (docs/mcu.md, "Sleeping"): UART0's receive interrupt is NVIC line 32 on the AN505
 * (QEMU hw/arm/mps2-tz.c: UART0 RX is the SSE's expansion interrupt 0, which the IoT Kit wires to the CPU's
 * interrupt 32 after its own 32; AN505 "UART 0 receive interrupt"). Its handler (board_uart0_rx_handler, in the
 * vector table of startup.c) drops the bytes received, which are kicks, and counts its runs. Firmware that reads
 * UART0 itself (the serial link) must not enable it. */
#define BOARD_UART0_RX_IRQ 32u
void board_uart_rx_irq_enable(void);
void board_uart0_rx_handler(void);
uint32_t board_uart_rx_irqs(void); /* handler runs so far */
/* The same interrupt for firmware that reads UART0 itself (the serial link): the handler only wakes the core and
 * leaves the byte for board_uart_getc; board_uart_rx_ready says whether one waits. SysTick stays the caller's. */
void board_uart_rx_wake_enable(void);
int board_uart_rx_ready(void);

#endif
