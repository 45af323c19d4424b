/*
 * An emulated RP2350 UART boot ROM for QEMU's mps2-an505, so that rproc's loader (remoteproc/platforms/rp2350.py) runs its
 * whole protocol in CI (RP2350 datasheet 5.8.2): splash "RP2350", the knock 56 ff 8b e4 (any byte sequence
 * ending with it), then n / w + 32 bytes / r / c / x, each answered by its optional 32-byte read payload and the
 * command byte echoed. The 520 KiB window stands in for the chip's SRAM at 0x20000000; `x` cannot run RP2350
 * code here, so it reports what it would run — "EXEC <bytes written> <crc32 of them>" on the UART — and then runs
 * the built-in uart_echo firmware (examples/uart_echo, included below) in its place, so that a host can go on
 * from loading to talking rpmsg over the serial link, as it would with the real chip.
 */
#include <stdint.h>
#include "board.h"

#define main uart_echo_main
#include "../uart_echo/main.c"
#undef main

#define ROM_WINDOW_SIZE (520u * 1024u)
static uint8_t rom_window[ROM_WINDOW_SIZE];

static int getc_wait(void)
{
	int c;
	while ((c = board_uart_getc()) < 0)
		;
	return c;
}

static void put_text(const char *s)
{
	while (*s)
		board_uart_putc((uint8_t)*s++);
}

static void put_hex(uint32_t v)
{
	for (int i = 28; i >= 0; i -= 4)
		board_uart_putc((uint8_t)"0123456789abcdef"[(v >> i) & 15u]);
}

static uint32_t crc32(const uint8_t *p, uint32_t n)
{
	uint32_t crc = 0xFFFFFFFFu;
	for (uint32_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

int main(void)
{
	board_uart_init();
	put_text("RP2350");
	uint32_t last = 0;
	while (last != 0x56FF8BE4u)
		last = (last << 8) | (uint32_t)getc_wait();
	uint32_t ptr = 0, high = 0;
	for (;;) {
		int c = getc_wait();
		switch (c) {
		case 'n':
			break;
		case 'w':
			for (uint32_t i = 0; i < 32; i++) {
				uint8_t b = (uint8_t)getc_wait();
				if (ptr + i < ROM_WINDOW_SIZE)
					rom_window[ptr + i] = b;
			}
			ptr += 32;
			if (ptr > high)
				high = ptr;
			break;
		case 'r':
			for (uint32_t i = 0; i < 32; i++)
				board_uart_putc(ptr + i < ROM_WINDOW_SIZE ? rom_window[ptr + i] : 0);
			ptr += 32;
			break;
		case 'c':
			ptr = 0;
			break;
		case 'x':
			board_uart_putc('x');
			put_text("EXEC ");
			put_hex(high);
			board_uart_putc(' ');
			put_hex(crc32(rom_window, high < ROM_WINDOW_SIZE ? high : ROM_WINDOW_SIZE));
			put_text("\n");
			return uart_echo_main(); /* "the loaded image" starts: here, the built-in echo firmware */
		default:
			continue; /* not a command: no echo */
		}
		board_uart_putc((uint8_t)c);
	}
}
