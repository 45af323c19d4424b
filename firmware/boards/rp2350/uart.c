/*
 * UART0 (an Arm PL011) on the QSPI SD2 (TX) and SD3 (RX) pins, the ones the boot ROM's UART boot uses, at 1 Mbaud
 * 8N1 from clk_peri = 48 MHz (board_clock_init). Polled; the order follows the boot ROM
 * (raspberrypi/pico-bootrom-rp2350: src/main/arm/varm_nsboot.c resets UART0 and selects FUNCSEL 0x0b on SD2/SD3,
 * src/nsboot/nsboot_uart_client.S programs the PL011, src/main/arm/varm_boot_path.c clears the QSPI pads'
 * isolation after resetting them); registers in rp2350.h.
 *
 * At 1 Mbaud a byte arrives every 10 us and the RX FIFO holds 32: while this side waits for room in the TX FIFO it
 * moves what arrived into a software FIFO, so a long frame going out does not make the one coming in overrun.
 */
#include "board.h"
#include "rp2350.h"

#define RX_SIZE 2048u /* a power of two */
static uint8_t rx_buf[RX_SIZE];
static uint32_t rx_head, rx_tail; /* head: next free slot; tail: next byte to give out */

static void rx_drain(void)
{
	while (!(REG32(UART_FR) & UART_FR_RXFE)) {
		uint8_t c = (uint8_t)REG32(UART_DR); /* bits 8..11 flag framing/parity/break/overrun: the link's CRC copes */
		if (rx_head - rx_tail < RX_SIZE)
			rx_buf[rx_head++ & (RX_SIZE - 1u)] = c;
	}
}

void board_uart_init(void)
{
	/* The pins: IO and pads blocks reset (as the boot ROM does before it uses them), UART0 functions selected,
	 * pad isolation removed; input enabled and output disable off, as the pads come out of reset. */
	rp2350_reset_cycle(RESETS_IO_QSPI | RESETS_PADS_QSPI);
	REG32(IO_QSPI_SD2_CTRL) = IO_QSPI_FUNCSEL_UART0; /* UART0_TX */
	REG32(IO_QSPI_SD3_CTRL) = IO_QSPI_FUNCSEL_UART0; /* UART0_RX */
	REG32(PADS_QSPI_SD2 + ALIAS_SET) = PADS_IE;
	REG32(PADS_QSPI_SD3 + ALIAS_SET) = PADS_IE;
	REG32(PADS_QSPI_SD2 + ALIAS_CLR) = PADS_OD | PADS_ISO;
	REG32(PADS_QSPI_SD3 + ALIAS_CLR) = PADS_OD | PADS_ISO;

	/* UART0 out of reset (its clock, clk_peri, runs: RESET_DONE needs it), then pico-sdk's divisor formula
	 * (hardware_uart uart_set_baudrate): d = 8 * clk / baud + 1, IBRD = d >> 7, FBRD = (d & 0x7f) >> 1; 48 MHz,
	 * 1 Mbaud: IBRD 3, FBRD 0 (the boot ROM's 3 too). Writing LCR_H latches them. */
	rp2350_reset_cycle(RESETS_UART0);
	const uint32_t d = 8u * CLK_PERI_HZ / BOARD_UART_BAUD + 1u;
	REG32(UART_IBRD) = d >> 7;
	REG32(UART_FBRD) = (d & 0x7fu) >> 1;
	REG32(UART_LCR_H) = UART_LCR_H_8N1_FIFO;
	REG32(UART_CR) = UART_CR_ENABLE;
}

void board_uart_putc(uint8_t c)
{
	while (REG32(UART_FR) & UART_FR_TXFF)
		rx_drain();
	REG32(UART_DR) = c;
}

int board_uart_getc(void)
{
	rx_drain();
	if (rx_head == rx_tail)
		return -1;
	return (int)rx_buf[rx_tail++ & (RX_SIZE - 1u)];
}
