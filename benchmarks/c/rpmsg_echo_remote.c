/*
 * The C remote of benchmarks/rpmsg_pingpong.py: the firmware's rpmsg remote library (firmware/lib/rpmsg_remote.c)
 * running in a host process on the shm profile's rings, so the benchmark times the Python host endpoint API
 * against a remote that costs what the firmware costs, not a second Python interpreter.
 *
 *   bench_remote_run(...)  announces "bench-echo" (echoes each message to its sender), "bench-count" (counts,
 *                          answers b"report" with the count in ASCII) and "bench-touch" (reads every byte of each
 *                          message, as a consumer would: answers b"report" with "COUNT SUM", the count of
 *                          messages and the sum of their bytes), then serves until the host's doorbell
 *                          socket closes. block 1: sleep in ppoll on the kick eventfd and the socket when the
 *                          rings are empty; block 2: sleep in read() on the kick eventfd only, like the C
 *                          baselines (the host's end goes unseen: the benchmark terminates it); block 0:
 *                          busy-poll with the host's kicks turned off; block 3: the host's "spin" mode on
 *                          this side: busy-poll with the host's kicks off for SPIN_NS after the last message,
 *                          then ask for kicks, look once more (a message published before the ask is seen
 *                          here, one after it kicks) and sleep as block 1 does.
 *                          rx_fd == tx_fd == sock_fd: the host's doorbell is one byte per kick on the socket
 *                          itself (shm://...?doorbell=socket, OpenAMP's Linux layout): kicks are sent and read
 *                          there (block 2 then sleeps in ppoll as block 1).
 * Returns 0 at the host's end, or an RPMSG_ERR_* code.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rproc/rpmsg_remote.h"

struct bench {
	int tx_fd;
	int sock_bytes; /* kicks are bytes on the doorbell socket (tx_fd is the socket) */
	uint64_t counted;
	uint64_t touched; /* messages bench-touch read */
	uint64_t sum;     /* the sum of their bytes */
};

static void kick(void *ctx, uint32_t queue)
{
	struct bench *b = ctx;
	if (b->sock_bytes) { /* one byte, the queue number, as transports.doorbell.SocketDoorbell and OpenAMP */
		uint8_t q = (uint8_t)queue;
		if (send(b->tx_fd, &q, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
			/* full (kicks pending) or the host gone: the socket check ends the loop */
		}
		return;
	}
	uint64_t one = 1;
	if (write(b->tx_fd, &one, 8) != 8) {
		/* the host is gone: the socket check below ends the loop */
	}
}

static void send_all(struct rpmsg_remote *r, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len)
{
	/* The host re-posts its receive buffers as it reads them: wait for one. */
	while (rpmsg_send(r, src, dst, data, len) == RPMSG_ERR_NO_BUFFER)
		rpmsg_poll(r);
}

static void echo(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		 uint32_t src)
{
	/* In place: the host's buffer stays ours until this returns; rpmsg_send copies it into a receive buffer of
	 * the host's (any size the buffers allow, the library takes the room from the descriptors). */
	send_all(r, ept->addr, src, (const uint8_t *)data, len);
}

static int is_report(const volatile uint8_t *data, uint32_t len)
{
	static const char report[] = "report";
	if (len != sizeof(report) - 1)
		return 0;
	for (uint32_t i = 0; i < len; i++)
		if (data[i] != (uint8_t)report[i])
			return 0;
	return 1;
}

/* Read every byte of the message where it lies (the host's buffer), as a consumer that uses its data must: the
 * sum of its bytes, 8 at a time (pairs of bytes added in 16-bit lanes, folded every 128 words before a lane can
 * overflow: 128 * 2 * 255 < 65536). The sum proves each byte was read. */
static uint64_t touch_all(const volatile uint8_t *data, uint32_t len)
{
	const uint8_t *p = (const uint8_t *)data;
	const uint64_t even = 0x00ff00ff00ff00ffull;
	uint64_t sum = 0;
	uint32_t i = 0;
	while (i + 8 <= len) {
		uint64_t lanes = 0;
		for (uint32_t k = 0; k < 128 && i + 8 <= len; k++, i += 8) {
			uint64_t w;
			__builtin_memcpy(&w, p + i, 8);
			lanes += (w & even) + ((w >> 8) & even);
		}
		sum += (lanes & 0xffff) + ((lanes >> 16) & 0xffff) + ((lanes >> 32) & 0xffff) + (lanes >> 48);
	}
	for (; i < len; i++)
		sum += p[i];
	return sum;
}

static void touch(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		  uint32_t src)
{
	struct bench *b = ept->priv;
	if (!is_report(data, len)) {
		b->touched++;
		b->sum += touch_all(data, len);
		return;
	}
	char text[48];
	int n = snprintf(text, sizeof(text), "%llu %llu", (unsigned long long)b->touched, (unsigned long long)b->sum);
	b->touched = b->sum = 0;
	send_all(r, ept->addr, src, (const uint8_t *)text, (uint32_t)n);
}

static void count(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		  uint32_t src)
{
	struct bench *b = ept->priv;
	static const char report[] = "report";
	uint32_t i = 0;
	if (len == sizeof(report) - 1)
		while (i < len && data[i] == (uint8_t)report[i])
			i++;
	if (i != sizeof(report) - 1 || len != i) {
		b->counted++;
		return;
	}
	char text[24];
	int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)b->counted);
	b->counted = 0;
	send_all(r, ept->addr, src, (const uint8_t *)text, (uint32_t)n);
}

#define SPIN_NS 50000 /* as rpmsg/device.py SPIN_SECONDS: the host's default spin */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* After a wake-up: consume the kicks (the eventfd's counter, or the bytes on the socket); 1 if the host is gone. */
static int consume_kicks(int rx_fd, int sock_fd)
{
	if (rx_fd == sock_fd) {
		uint8_t buf[4096];
		return recv(sock_fd, buf, sizeof buf, MSG_DONTWAIT) == 0;
	}
	uint64_t v;
	if (read(rx_fd, &v, 8) < 0) {
		/* nothing to consume: a spurious wake-up */
	}
	return 0;
}

static int host_gone(int sock_fd)
{
	char c;
	ssize_t n = recv(sock_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0;
}

int bench_remote_run(uint8_t *mem, uint64_t size, uint32_t da0, uint32_t da1, uint32_t num, uint32_t align,
		     int rx_fd, int tx_fd, int sock_fd, int block)
{
	/* The shm profile has no resource table: describe its rings in a vdev entry of our own, DRIVER_OK set. */
	struct {
		struct fw_rsc_vdev vdev;
		struct fw_rsc_vdev_vring ring[2];
	} RPROC_PACKED table = { { 3, 7, 0, 1, 1, 0, 0x7, 2, { 0, 0 } },
				 { { da0, align, num, 0, 0 }, { da1, align, num, 1, 0 } } };
	struct rp_region region = { 0, size, mem };
	struct rpmsg_remote r;
	int sock_bytes = rx_fd == sock_fd;
	struct bench b = { tx_fd, sock_bytes, 0, 0, 0 };
	struct rpmsg_ept echo_ept, count_ept, touch_ept;
	int rc = rpmsg_remote_init(&r, &table.vdev, &region, kick, &b);
	if (rc == RPMSG_OK)
		rc = rpmsg_create_ept(&r, &echo_ept, "bench-echo", RPMSG_ADDR_ANY, echo, &b);
	if (rc == RPMSG_OK)
		rc = rpmsg_create_ept(&r, &count_ept, "bench-count", RPMSG_ADDR_ANY, count, &b);
	if (rc == RPMSG_OK)
		rc = rpmsg_create_ept(&r, &touch_ept, "bench-touch", RPMSG_ADDR_ANY, touch, &b);
	if (rc != RPMSG_OK)
		return rc;
	if (!block || block == 3)
		rp_dev_disable_notify(&r.from_host);
	int64_t busy_since = now_ns(); /* block 3: the last message, or the last wake-up */
	if (block == 2 && sock_bytes)
		block = 1; /* the socket is the kick: ppoll on it */
	if (block == 2) /* sleep in read(), the way the C baselines do */
		fcntl(rx_fd, F_SETFL, fcntl(rx_fd, F_GETFL) & ~O_NONBLOCK);
	struct pollfd fds[2] = { { rx_fd, POLLIN, 0 }, { sock_fd, POLLIN | POLLRDHUP, 0 } };
	nfds_t nfds = sock_bytes ? 1 : 2; /* socket bytes: one descriptor, its end of file read by consume_kicks */
	for (uint64_t idle = 0;; idle++) {
		int n = rpmsg_poll(&r);
		if (n < 0)
			return n;
		if (n > 0) {
			idle = 0;
			if (block == 3)
				busy_since = now_ns();
			continue;
		}
		if (block == 3) {
			if ((idle & 63) != 63 || now_ns() - busy_since < SPIN_NS)
				continue;
			if (rp_dev_enable_notify(&r.from_host) != 0) { /* arrived while asking */
				rp_dev_disable_notify(&r.from_host);
				continue;
			}
		}
		if (block == 2) {
			uint64_t v;
			if (read(rx_fd, &v, 8) < 0 && host_gone(sock_fd))
				return 0;
		} else if (block) { /* 1, and 3 once its spin is over and kicks are asked for */
			if (poll(fds, nfds, -1) < 0)
				continue;
			if (nfds == 2 && fds[1].revents)
				return host_gone(sock_fd) ? 0 : RPMSG_ERR_RESET;
			if (consume_kicks(rx_fd, sock_fd))
				return 0;
			if (block == 3) {
				rp_dev_disable_notify(&r.from_host);
				busy_since = now_ns();
			}
		} else if ((idle & 0xffff) == 0xffff && host_gone(sock_fd)) {
			return 0;
		}
	}
}
