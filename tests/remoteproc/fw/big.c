/* A firmware with one 16 MiB initialised segment (every byte 0x5a, filled by the assembler: a C initialiser
 * of that size takes the compiler many seconds) and a .bss. */
__asm__(".section .big,\"a\"\n.global big\nbig:\n.fill 0x1000000, 1, 0x5a\n.previous\n");
extern const unsigned char big[];
unsigned int zeroed[1024];

void _start(void)
{
	for (;;)
		zeroed[0] += big[zeroed[1]];
}
