/* CMSDK APB UART (ARM DDI 0479C): DATA +0x0, STATE +0x4 (bit 0 TX full, bit 1 RX full), CTRL +0x8 (bit 0 TX
 * enable, bit 1 RX enable, bit 3 RX interrupt enable), INTSTATUS/INTCLEAR +0xC (bit 1 RX, write 1 to clear),
 * BAUDDIV +0x10 (at least 16). */
#include "board.h"

#define UART0 0x40200000u
#define REG(off) (*(volatile uint32_t *)(UART0 + (off)))
#define DATA REG(0x0)
#define STATE REG(0x4)
#define CTRL REG(0x8)
#define INTCLEAR REG(0xC)
#define BAUDDIV REG(0x10)
#define STATE_RXFULL 0x2u
#define CTRL_RX_INTEN 0x8u
#define INT_RX 0x2u
#define NVIC_ISER(n) (*(volatile uint32_t *)(0xE000E100u + 4u * (n)))
#define NVIC_ISPR(n) (*(volatile uint32_t *)(0xE000E200u + 4u * (n)))
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

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
	if (!(STATE & STATE_RXFULL))
		return -1;
	return (int)(DATA & 0xff);
}

static volatile uint32_t rx_irqs;
static uint8_t wake_only;

int board_uart_rx_ready(void)
{
	return (STATE & STATE_RXFULL) != 0;
}

/* Tests only (tests/remoteproc/test_qemu_sleep.py builds it): busy-wait this many iterations with the receiver on
 * and its interrupt still off, widening the window in which the host's first kick arrives. */
#ifndef BOARD_RX_IRQ_RACE_WINDOW
#define BOARD_RX_IRQ_RACE_WINDOW 0
#endif

static void rx_irq_on(void)
{
#if BOARD_RX_IRQ_RACE_WINDOW
	for (volatile uint32_t i = 0; i < BOARD_RX_IRQ_RACE_WINDOW; i++)
		;
#endif
	INTCLEAR = INT_RX;
	CTRL |= CTRL_RX_INTEN;
	NVIC_ISER(BOARD_UART0_RX_IRQ / 32u) = 1u << (BOARD_UART0_RX_IRQ % 32u);
	/* A byte that arrived since board_uart_init (RX on, its interrupt off) raised no interrupt: QEMU's model sets
	 * INTSTATUS.RX as a byte arrives, and only with RX_INTEN set (hw/char/cmsdk-apb-uart.c uart_receive; setting
	 * RX_INTEN later raises nothing). It holds the one-byte buffer, so QEMU takes no later byte either, and every
	 * kick after it would be lost: pend the handler, which drains it. (A byte arriving after RX_INTEN interrupts by
	 * itself; pending twice, or on a UART whose interrupt is a level, is harmless.) */
	if (STATE & STATE_RXFULL)
		NVIC_ISPR(BOARD_UART0_RX_IRQ / 32u) = 1u << (BOARD_UART0_RX_IRQ % 32u);
}

void board_uart_rx_wake_enable(void)
{
	wake_only = 1;
	rx_irq_on();
}

void board_uart_rx_irq_enable(void)
{
	wake_only = 0;
	/* SysTick runs without its interrupt, only for the handler's nudge below. */
	SYST_RVR = 0xFFFFFFu;
	SYST_CVR = 0;
	SYST_CSR = 5u; /* enabled, processor clock, TICKINT off: it never interrupts this core */
	rx_irq_on();
}

void board_uart0_rx_handler(void)
{
	/* Clear first, then drain: a byte that arrives after the last read sets the bit again and interrupts anew. In
	 * the other order a byte landing between the last read and the clear would sit in DATA with no interrupt, and
	 * QEMU (one byte of buffer, hw/char/cmsdk-apb-uart.c uart_can_receive) would take no further byte: a stall. */
	INTCLEAR = INT_RX;
	rx_irqs++;
	if (wake_only)
		return; /* the byte stays in DATA for board_uart_getc; the next one interrupts again */
	while (STATE & STATE_RXFULL)
		(void)DATA; /* the bytes are kicks: the rings say what to do */
	/* An emulator fix, harmless on hardware: QEMU's CMSDK UART (7.2, hw/char/cmsdk-apb-uart.c uart_read) frees
	 * its one-byte buffer on a read of DATA without qemu_chr_fe_accept_input(), as hw/char/pl011.c does, so QEMU's
	 * main loop takes the next byte only at its next pass, some milliseconds later when nothing else wakes it: a
	 * sleeping core would wait that long for every kick (measured: 5.3 ms per round trip instead of 0.16 ms).
	 * Writing SYST_CVR re-arms QEMU's SysTick timer for now, and arming a timer wakes the main loop. */
	SYST_CVR = 0;
}

uint32_t board_uart_rx_irqs(void)
{
	return rx_irqs;
}
