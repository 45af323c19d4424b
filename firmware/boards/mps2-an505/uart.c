/* CMSDK APB UART (ARM DDI 0479C): DATA +0x0, STATE +0x4 (bit 0 TX full, bit 1 RX full), CTRL +0x8 (bit 0 TX
 * enable, bit 1 RX enable), BAUDDIV +0x10 (at least 16). */
#include "board.h"

#define UART0 0x40200000u
#define REG(off) (*(volatile uint32_t *)(UART0 + (off)))
#define DATA REG(0x0)
#define STATE REG(0x4)
#define CTRL REG(0x8)
#define BAUDDIV REG(0x10)

void board_uart_init(void)
{
	BAUDDIV = 16;
	CTRL = 0x3;
}

void board_uart_putc(uint8_t c)
{
	while (STATE & 0x1)
		;
	DATA = c;
}

int board_uart_getc(void)
{
	if (!(STATE & 0x2))
		return -1;
	return (int)(DATA & 0xff);
}
