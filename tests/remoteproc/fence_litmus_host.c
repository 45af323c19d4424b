/* The host's side of the store-buffering litmus test (firmware/tests/fence_litmus/main.c says what a round is).
 *
 *   fence_litmus_host RAM_FILE OFFSET ROUNDS SPREAD
 *
 * RAM_FILE is the board's shared RAM (QEMU's memory-backend-file), OFFSET where struct litmus is in it. Each round
 * waits a pseudo-random 0..SPREAD-1 loop iterations between starting the round and its own store, so that the two
 * sides' stores and loads meet at every distance. Prints "ROUNDS REORDERED"; exit status 2 on a setup error, 3 when
 * the core stops answering (5 s). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include "litmus.h" /* firmware/tests/fence_litmus */
#include "vring_fence.h"

#define RAM_SIZE (16u << 20)

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Spin until *word == want; 0 on time, -1 after `seconds`. */
static int await_word(volatile uint32_t *word, uint32_t want, double seconds)
{
	double deadline = now() + seconds;

	for (uint32_t spins = 0; *word != want; spins++)
		if ((spins & 0xffff) == 0 && now() > deadline)
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s RAM_FILE OFFSET ROUNDS SPREAD\n", argv[0]);
		return 2;
	}
	unsigned long offset = strtoul(argv[2], NULL, 0);
	unsigned long rounds = strtoul(argv[3], NULL, 0);
	unsigned long spread = strtoul(argv[4], NULL, 0);

	if (offset > RAM_SIZE - sizeof(struct litmus) || spread == 0) {
		fprintf(stderr, "offset %#lx or spread %lu out of range\n", offset, spread);
		return 2;
	}
	int fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ram == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	volatile struct litmus *l = (volatile struct litmus *)(ram + offset);

	if (await_word(&l->magic, LITMUS_MAGIC, 10.0)) {
		fprintf(stderr, "no litmus magic at %#lx\n", offset);
		return 3;
	}
	uint64_t rnd = 88172645463325252ull; /* xorshift64: the same sequence of delays every run */
	unsigned long reordered = 0;
	uint32_t round = l->done;

	for (unsigned long k = 0; k < rounds; k++) {
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		round++;
		l->go = round;
		for (volatile unsigned long d = rnd % spread; d; d--)
			;
		l->y = round;
		rp_mb();
		uint32_t x = l->x;

		if (await_word(&l->done, round, 5.0)) {
			fprintf(stderr, "the core did not finish round %u\n", round);
			return 3;
		}
		if (x != round && l->seen != round)
			reordered++;
	}
	printf("%lu %lu\n", rounds, reordered);
	return 0;
}
