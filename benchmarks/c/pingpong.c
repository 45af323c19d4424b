/*
 * C baselines for benchmarks/rpmsg_pingpong.py, two processes, round trip of one small message:
 *   pingpong eventfd N      raw eventfd ping-pong (blocking read on each side): the floor for blocking wake-ups
 *   pingpong vring-spin N   an echo through two vrings with the rproc engine (vring.c), both sides busy-polling
 *   pingpong vring-block N  the same, each side blocking on an eventfd doorbell after a failed poll
 * Prints "median_ns <value>". With PINGPONG_SPLIT=A,B in the environment the two processes run on CPUs A and B.
 *   pingpong eventfd-peer RX TX   the other end of a ping-pong driven by someone else (the Python floor in
 *                                 benchmarks/rpmsg_pingpong.py): reads RX, writes TX, until RX fails
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vring.h"

#define NUM 256
#define BUF 512
#define SIZE (0x20000 + 2 * NUM * BUF)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(uint64_t *t, long n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("median_ns %llu\n", (unsigned long long)t[n / 2]);
}

/* PINGPONG_SPLIT=A,B: the parent on CPU A, the child on CPU B (called after fork on both sides). */
static void place(int child)
{
	const char *split = getenv("PINGPONG_SPLIT");
	if (!split)
		return;
	int a = atoi(split), b = strchr(split, ',') ? atoi(strchr(split, ',') + 1) : a;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(child ? b : a, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void kick(int fd) { uint64_t one = 1; if (write(fd, &one, 8) != 8) _exit(9); }
static void wait_fd(int fd) { uint64_t v; if (read(fd, &v, 8) != 8) _exit(9); }

static int eventfd_mode(long n, uint64_t *t)
{
	int a = eventfd(0, 0), b = eventfd(0, 0);
	pid_t pid = fork();
	place(pid == 0);
	if (pid == 0) {
		for (long i = 0; i < n; i++) {
			wait_fd(a);
			kick(b);
		}
		_exit(0);
	}
	for (long i = 0; i < n; i++) {
		uint64_t s = now_ns();
		kick(a);
		wait_fd(b);
		t[i] = now_ns() - s;
	}
	waitpid(pid, 0, 0);
	return 0;
}

struct side {
	struct rp_vq rx, tx; /* host: rx = vring0 driver, tx = vring1 driver; remote: device ends */
};

static void rings(uint8_t *mem, uint8_t **d0, uint8_t **a0, uint8_t **u0, uint8_t **d1, uint8_t **a1, uint8_t **u1)
{
	*d0 = mem;
	*a0 = mem + rp_desc_size(NUM);
	*u0 = mem + 0x2000;
	*d1 = mem + 0x4000;
	*a1 = *d1 + rp_desc_size(NUM);
	*u1 = mem + 0x6000;
}

static int vring_mode(long n, uint64_t *t, int block)
{
	uint8_t *mem = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct rp_region region = { 0, SIZE, mem };
	uint8_t *d0, *a0, *u0, *d1, *a1, *u1;
	rings(mem, &d0, &a0, &u0, &d1, &a1, &u1);
	int to_remote = eventfd(0, 0), to_host = eventfd(0, 0);
	static struct rp_slot s0[NUM], s1[NUM];
	struct rp_vq rx, tx;
	rp_vq_init(&rx, RP_ROLE_DRIVER, NUM, 0, d0, a0, u0, &region, 1, s0, 0);
	rp_vq_init(&tx, RP_ROLE_DRIVER, NUM, 1, d1, a1, u1, &region, 1, s1, 0);
	rp_drv_reset(&rx);
	rp_drv_reset(&tx);
	for (int i = 0; i < NUM; i++) {
		struct rp_buf b = { 0x10000 + (uint64_t)i * BUF, BUF, RP_DESC_F_WRITE, 0 };
		rp_drv_add(&rx, &b, 1, b.addr);
	}
	rp_drv_publish(&rx);
	uint8_t msg[24] = { 0 }, out[NUM * BUF];
	uint32_t len = sizeof(msg), lens[NUM];
	pid_t pid = fork();
	place(pid == 0);
	if (pid == 0) { /* remote: device side of both */
		struct rp_vq from_host, to_h;
		rp_vq_init(&from_host, RP_ROLE_DEVICE, NUM, 1, d1, a1, u1, &region, 1, 0, 0);
		rp_vq_init(&to_h, RP_ROLE_DEVICE, NUM, 0, d0, a0, u0, &region, 1, 0, 0);
		for (long i = 0; i < n; i++) {
			int k;
			while ((k = rp_dev_recv_copy(&from_host, out, sizeof(out), lens, 1)) == 0)
				if (block)
					wait_fd(to_remote);
			rp_dev_publish(&from_host);
			rp_dev_send_copy(&to_h, out, lens, 1);
			if (rp_dev_publish(&to_h) && block)
				kick(to_host);
		}
		_exit(0);
	}
	static uint64_t pool[NUM];
	uint32_t npool = NUM;
	for (int i = 0; i < NUM; i++)
		pool[i] = 0x10000 + (uint64_t)(NUM + i) * BUF;
	for (long i = 0; i < n; i++) {
		uint64_t s = now_ns();
		rp_drv_reclaim(&tx, pool, &npool, NUM);
		rp_drv_send_copy(&tx, msg, &len, 1, pool, &npool, BUF);
		if (rp_drv_publish(&tx) && block)
			kick(to_remote);
		while (rp_drv_recv_copy(&rx, out, sizeof(out), lens, 1, BUF) == 0)
			if (block)
				wait_fd(to_host);
		rp_drv_publish(&rx);
		t[i] = now_ns() - s;
	}
	waitpid(pid, 0, 0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "eventfd-peer")) {
		int rx = atoi(argv[2]), tx = atoi(argv[3]);
		uint64_t v;
		while (read(rx, &v, 8) == 8)
			kick(tx);
		return 0;
	}
	if (argc != 3)
		return 2;
	long n = atol(argv[2]);
	uint64_t *t = calloc((size_t)n, sizeof(uint64_t));
	if (!strcmp(argv[1], "eventfd"))
		eventfd_mode(n, t);
	else if (!strcmp(argv[1], "vring-spin"))
		vring_mode(n, t, 0);
	else if (!strcmp(argv[1], "vring-block"))
		vring_mode(n, t, 1);
	else
		return 2;
	report(t, n);
	return 0;
}
