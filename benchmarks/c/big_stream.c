/*
 * C baselines for benchmarks/big_buffers.py.
 *
 *   big_stream memcpy LENGTH COUNT
 *       memcpy of LENGTH bytes between two buffers COUNT times: prints "bytes_per_s <value>", this machine's copy
 *       rate at that size (what any copy of a message costs, the floor of a copying rpmsg path).
 *   big_stream stream COUNT LENGTH NUM ALIGN DA0 DA1 POOL RX_SIZE TX_SIZE
 *       the transfer benchmarks/big_buffers.py times from Python, done by a C sender on the same layout (rproc's
 *       Profile: vrings at DA0 and DA1, the buffer pool at POOL, NUM receive buffers of RX_SIZE then NUM send
 *       buffers of TX_SIZE) with the same receiver: the firmware's rpmsg remote library running the benchmark
 *       remote (rpmsg_echo_remote.c, bench_remote_run, busy-polling) in a child process. The sender is the host:
 *       it posts its receive buffers, reads the name service to find "bench-touch", streams COUNT messages of
 *       LENGTH bytes (rpmsg header + payload copied into each send buffer, rp_drv_send_copy), sends "report" and
 *       waits for the answer "COUNT SUM" (the receiver read every byte). Prints "msgs_per_s <value> sum <sum>".
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vring.h"

int bench_remote_run(uint8_t *mem, uint64_t size, uint32_t da0, uint32_t da1, uint32_t num, uint32_t align,
		     int rx_fd, int tx_fd, int sock_fd, int block);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_memcpy(uint32_t length, long count)
{
	uint8_t *a = malloc(length), *b = malloc(length);
	if (!a || !b)
		return 1;
	for (uint32_t i = 0; i < length; i++)
		a[i] = (uint8_t)(i * 7);
	uint64_t check = 0;
	double start = now();
	for (long i = 0; i < count; i++) {
		a[i % length] = (uint8_t)i; /* a new message each time */
		memcpy(b, a, length);
		check += b[(i * 13) % length];
	}
	double elapsed = now() - start;
	printf("bytes_per_s %.0f check %llu\n", (double)length * count / elapsed, (unsigned long long)check);
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void ring(struct rp_vq *vq, uint8_t *mem, uint32_t da, uint16_t num, uint32_t align, uint16_t index,
		 struct rp_region *region, struct rp_slot *slots)
{
	uint8_t *desc = mem + da;
	uint8_t *avail = desc + rp_desc_size(num);
	uint64_t used = ((uint64_t)da + rp_desc_size(num) + rp_avail_size(num) + align - 1) / align * align;
	if (rp_vq_init(vq, RP_ROLE_DRIVER, num, index, desc, avail, mem + used, region, 1, slots, 0))
		exit(10);
	rp_drv_reset(vq);
	rp_drv_disable_cb(vq); /* busy-polling: no kicks wanted */
}

/* Messages the remote sent into our receive buffers (re-posted at once): calls on_msg for each. */
static int drain(struct rp_vq *rx, uint8_t *out, uint32_t *lens, uint32_t num, uint32_t rx_size,
		 void (*on_msg)(const uint8_t *msg, uint32_t len, void *ctx), void *ctx)
{
	int n = rp_drv_recv_copy(rx, out, num * rx_size, lens, num, rx_size);
	if (n < 0)
		exit(11);
	uint32_t pos = 0;
	for (int i = 0; i < n; i++) {
		on_msg(out + pos, lens[i], ctx);
		pos += lens[i];
	}
	if (n)
		rp_drv_publish(rx);
	return n;
}

struct found {
	uint32_t touch_addr;
	int have_report;
	unsigned long long count, sum;
};

static void on_msg(const uint8_t *msg, uint32_t len, void *ctx)
{
	struct found *f = ctx;
	uint32_t dst, plen;
	if (len < 16)
		return;
	memcpy(&dst, msg + 4, 4);
	plen = (uint32_t)msg[12] | (uint32_t)msg[13] << 8;
	if (plen > len - 16)
		return;
	if (dst == 53 && plen >= 40 && strncmp((const char *)msg + 16, "bench-touch", 32) == 0)
		memcpy(&f->touch_addr, msg + 16 + 32, 4);
	else if (dst == 1024) {
		char text[64] = { 0 };
		memcpy(text, msg + 16, plen < 63 ? plen : 63);
		if (sscanf(text, "%llu %llu", &f->count, &f->sum) == 2)
			f->have_report = 1;
	}
}

static int run_stream(char **argv)
{
	long count = atol(argv[0]);
	uint32_t length = (uint32_t)strtoul(argv[1], 0, 0);
	uint16_t num = (uint16_t)strtoul(argv[2], 0, 0);
	uint32_t align = (uint32_t)strtoul(argv[3], 0, 0), da0 = (uint32_t)strtoul(argv[4], 0, 0);
	uint32_t da1 = (uint32_t)strtoul(argv[5], 0, 0), pool_da = (uint32_t)strtoul(argv[6], 0, 0);
	uint32_t rx_size = (uint32_t)strtoul(argv[7], 0, 0), tx_size = (uint32_t)strtoul(argv[8], 0, 0);
	if (length + 16 > tx_size || length > 0xffff)
		return 2;
	uint64_t size = (uint64_t)pool_da + (uint64_t)num * (rx_size + tx_size);
	uint8_t *mem = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	struct rp_region region = { 0, size, mem };
	struct rp_slot *rx_slots = calloc(num, sizeof(*rx_slots)), *tx_slots = calloc(num, sizeof(*tx_slots));
	struct rp_vq rx, tx;
	ring(&rx, mem, da0, num, align, 0, &region, rx_slots);
	ring(&tx, mem, da1, num, align, 1, &region, tx_slots);
	struct rp_buf *bufs = calloc(num, sizeof(*bufs));
	uint64_t *tokens = calloc(num, sizeof(*tokens)), *pool = calloc(num, sizeof(*pool));
	for (uint32_t i = 0; i < num; i++) {
		bufs[i] = (struct rp_buf){ pool_da + (uint64_t)i * rx_size, rx_size, RP_DESC_F_WRITE, 0 };
		tokens[i] = bufs[i].addr;
		pool[i] = pool_da + (uint64_t)num * rx_size + (uint64_t)i * tx_size;
	}
	uint32_t npool = num;
	if (rp_drv_add_many(&rx, bufs, tokens, num) != (int)num)
		return 12;
	rp_drv_publish(&rx);

	int to_remote = eventfd(0, EFD_NONBLOCK), to_host = eventfd(0, EFD_NONBLOCK), sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(bench_remote_run(mem, size, da0, da1, num, align, to_remote, to_host, sv[1], 0) ? 3 : 0);
	}
	close(sv[1]);

	uint8_t *out = malloc((size_t)num * rx_size);
	uint32_t *lens = calloc(num, sizeof(*lens));
	struct found f = { 0, 0, 0, 0 };
	while (!f.touch_addr)
		if (!drain(&rx, out, lens, num, rx_size, on_msg, &f))
			sched_yield();

	uint8_t *msg = malloc(16 + length);
	memset(msg, 0, 16);
	put32(msg, 1024);
	put32(msg + 4, f.touch_addr);
	msg[12] = (uint8_t)length;
	msg[13] = (uint8_t)(length >> 8);
	for (uint32_t i = 0; i < length; i++)
		msg[16 + i] = (uint8_t)(i * 7);
	uint32_t mlen = 16 + length;
	double start = now();
	for (long sent = 0; sent < count;) {
		msg[16] = (uint8_t)sent; /* a new message each time */
		int k = rp_drv_send_copy(&tx, msg, &mlen, 1, pool, &npool, tx_size);
		if (k < 0)
			return 4;
		if (k == 0) { /* every buffer in flight: take back what the receiver is done with */
			int back = rp_drv_reclaim(&tx, pool, &npool, num);
			if (back < 0)
				return 4;
			if (back == 0)
				sched_yield(); /* as benchmarks/c/vring_stream.c: let a receiver on this CPU run */
			continue;
		}
		rp_drv_publish(&tx);
		sent++;
	}
	static const char report[] = "report";
	uint8_t rep[16 + sizeof(report) - 1];
	memcpy(rep, msg, 16);
	rep[12] = sizeof(report) - 1;
	rep[13] = 0;
	memcpy(rep + 16, report, sizeof(report) - 1);
	uint32_t rlen = sizeof(rep);
	while (rp_drv_send_copy(&tx, rep, &rlen, 1, pool, &npool, tx_size) == 0)
		rp_drv_reclaim(&tx, pool, &npool, num);
	rp_drv_publish(&tx);
	while (!f.have_report)
		drain(&rx, out, lens, num, rx_size, on_msg, &f);
	double elapsed = now() - start;
	close(sv[0]);
	int status;
	waitpid(pid, &status, 0);
	if ((long)f.count != count)
		return 5;
	printf("msgs_per_s %.0f sum %llu\n", count / elapsed, f.sum);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "memcpy") == 0)
		return run_memcpy((uint32_t)strtoul(argv[2], 0, 0), atol(argv[3]));
	if (argc == 11 && strcmp(argv[1], "stream") == 0)
		return run_stream(argv + 2);
	fprintf(stderr, "usage: big_stream memcpy LENGTH COUNT | stream COUNT LENGTH NUM ALIGN DA0 DA1 POOL RX TX\n");
	return 2;
}
