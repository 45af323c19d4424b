/*
 * C baseline for benchmarks/virtio_stream.py: the same one-way stream on the same layout, with the same
 * engine (virtio/csrc/vring.c), in two processes sharing a MAP_SHARED mapping, busy-polling.
 *   usage: vring_stream COUNT LENGTH BATCH
 * Prints "msgs_per_s <value>".
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>

#include "vring.h"

#define NUM 256
#define RING_DA 0x0
#define POOL_DA 0x10000
#define BUF_SIZE 512
#define SIZE (POOL_DA + NUM * BUF_SIZE)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	long count = atol(argv[1]);
	uint32_t length = (uint32_t)atol(argv[2]);
	uint32_t batch = (uint32_t)atol(argv[3]);
	uint8_t *mem = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	struct rp_region region = { 0, SIZE, mem };
	uint8_t *desc = mem + RING_DA;
	uint8_t *avail = desc + rp_desc_size(NUM);
	uint8_t *used = mem + ((RING_DA + rp_desc_size(NUM) + rp_avail_size(NUM) + 0xfff) & ~0xfffu);
	static struct rp_slot slots[NUM];
	struct rp_vq vq;
	if (rp_vq_init(&vq, RP_ROLE_DRIVER, NUM, 0, desc, avail, used, &region, 1, slots, 0))
		return 1;
	rp_drv_reset(&vq);

	pid_t pid = fork();
	if (pid == 0) { /* device */
		struct rp_vq dv;
		static uint8_t out[NUM * BUF_SIZE];
		static uint32_t lens[NUM];
		rp_vq_init(&dv, RP_ROLE_DEVICE, NUM, 0, desc, avail, used, &region, 1, 0, 0);
		long got = 0;
		while (got < count) {
			int n = rp_dev_recv_copy(&dv, out, sizeof(out), lens, batch);
			if (n < 0)
				_exit(3);
			if (n == 0) {
				sched_yield();
				continue;
			}
			rp_dev_publish(&dv);
			got += n;
		}
		_exit(0);
	}

	static uint64_t pool[NUM];
	uint32_t npool = NUM;
	for (uint32_t i = 0; i < NUM; i++)
		pool[i] = POOL_DA + (uint64_t)i * BUF_SIZE;
	uint8_t *data = calloc(batch, length);
	uint32_t *lens = calloc(batch, sizeof(uint32_t));
	for (uint32_t i = 0; i < batch; i++)
		lens[i] = length;
	long sent = 0;
	double start = now();
	while (sent < count) {
		rp_drv_reclaim(&vq, pool, &npool, NUM);
		uint32_t n = (uint32_t)(count - sent < batch ? count - sent : batch);
		int k = rp_drv_send_copy(&vq, data, lens, n, pool, &npool, BUF_SIZE);
		if (k < 0)
			return 4;
		rp_drv_publish(&vq);
		if (k == 0)
			sched_yield();
		sent += k;
	}
	while (npool < NUM) {
		if (rp_drv_reclaim(&vq, pool, &npool, NUM) == 0)
			sched_yield();
	}
	double elapsed = now() - start;
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return 5;
	printf("msgs_per_s %.0f\n", count / elapsed);
	return 0;
}
