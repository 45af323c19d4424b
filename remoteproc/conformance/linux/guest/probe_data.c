// SPDX-License-Identifier: BSD-3-Clause
/*
 * rpmsg-probe's data commands: echo, write-expect-errno, stream and rt on an rpmsg char device,
 * and pipe-rt, the guest's own round trip over pipes that the benchmark reports beside rt.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe_commands.h"
#include "probe_util.h"

/* One echo on an open fd; prints the result line. */
static void echo_one(int fd, size_t size, unsigned char *tx, unsigned char *rx)
{
	char prefix[64];
	ssize_t n;

	snprintf(prefix, sizeof(prefix), "echo size=%zu", size);
	fill_pattern(tx, size, 0);
	if (write_message(fd, tx, size) < 0) {
		fail_errno(prefix, "write", errno);
		return;
	}
	n = read_message(fd, rx, MAX_MSG, REPLY_TIMEOUT_MS);
	if (n == -1) {
		fail(prefix, "timeout");
		return;
	}
	if (n < 0) {
		fail_errno(prefix, "read", errno);
		return;
	}
	if ((size_t)n != size) {
		char reason[64];

		snprintf(reason, sizeof(reason), "mismatch got_len=%zd", n);
		fail(prefix, reason);
		return;
	}
	if (memcmp(tx, rx, size)) {
		fail(prefix, "mismatch");
		return;
	}
	say("%s ok", prefix);
}

int cmd_echo(const char *dev, int nsizes, char **sizes)
{
	unsigned char *tx = malloc(MAX_MSG), *rx = malloc(MAX_MSG);
	long size;
	int fd;

	if (!tx || !rx) {
		fail("echo", "oom");
		return 1;
	}
	fd = open_dev("echo", dev);
	if (fd >= 0) {
		for (int i = 0; i < nsizes; i++) {
			if (parse_long(sizes[i], 0, MAX_MSG, &size) < 0) {
				fail("echo", "bad-size");
				continue;
			}
			echo_one(fd, (size_t)size, tx, rx);
		}
		close(fd);
	}
	free(tx);
	free(rx);
	return failures ? 1 : 0;
}

int cmd_write_expect_errno(const char *dev, long size, const char *expected)
{
	unsigned char *tx = calloc(1, (size_t)size + 1);
	char prefix[96];
	int fd;

	snprintf(prefix, sizeof(prefix), "write-expect-errno size=%ld errno=%s", size, expected);
	if (!tx) {
		fail(prefix, "oom");
		return 1;
	}
	fd = open_dev(prefix, dev);
	if (fd >= 0) {
		fill_pattern(tx, (size_t)size, 0);
		if (write_message(fd, tx, (size_t)size) == 0) {
			fail(prefix, "accepted");
		} else if (strcmp(errname(errno), expected)) {
			char reason[64];

			snprintf(reason, sizeof(reason), "errno=%s", errname(errno));
			fail(prefix, reason);
		} else {
			say("%s ok", prefix);
		}
		close(fd);
	}
	free(tx);
	return failures ? 1 : 0;
}

static void put_seq(unsigned char *buf, uint32_t seq)
{
	buf[0] = (unsigned char)seq;
	buf[1] = (unsigned char)(seq >> 8);
	buf[2] = (unsigned char)(seq >> 16);
	buf[3] = (unsigned char)(seq >> 24);
}

static uint32_t get_seq(const unsigned char *buf)
{
	return (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
}

int cmd_stream(const char *dev, long count, long size, long window)
{
	unsigned char *tx = malloc(MAX_MSG), *rx = malloc(MAX_MSG);
	char prefix[96];
	long sent = 0, received = 0;
	int64_t start;
	int fd;

	snprintf(prefix, sizeof(prefix), "stream count=%ld size=%ld window=%ld", count, size, window);
	if (!tx || !rx) {
		fail(prefix, "oom");
		return 1;
	}
	fd = open_dev(prefix, dev);
	if (fd < 0)
		goto out;
	fill_pattern(tx, (size_t)size, 4);
	start = now_us();
	while (received < count) {
		ssize_t n;
		uint32_t seq;

		while (sent < count && sent - received < window) {
			put_seq(tx, (uint32_t)sent);
			if (write_message(fd, tx, (size_t)size) < 0) {
				char p[256];

				snprintf(p, sizeof(p), "%s seq=%ld", prefix, sent);
				fail_errno(p, "write", errno);
				goto out_close;
			}
			sent++;
		}
		n = read_message(fd, rx, MAX_MSG, REPLY_TIMEOUT_MS);
		if (n < 0) {
			char p[256];

			snprintf(p, sizeof(p), "%s received=%ld", prefix, received);
			if (n == -1)
				fail(p, "timeout");
			else
				fail_errno(p, "read", errno);
			goto out_close;
		}
		seq = n >= 4 ? get_seq(rx) : UINT32_MAX;
		if (n != size || seq != (uint32_t)received || memcmp(rx + 4, tx + 4, (size_t)size - 4)) {
			char p[256];

			snprintf(p, sizeof(p), "%s received=%ld got_len=%zd got_seq=%u", prefix, received, n,
				 seq);
			fail(p, seq != (uint32_t)received ? "order" : "mismatch");
			goto out_close;
		}
		received++;
	}
	{
		int64_t us = now_us() - start;

		say("%s ok us=%lld msgs_per_s=%lld", prefix, (long long)us,
		    us > 0 ? (long long)(count * 1000000LL / us) : 0LL);
	}
out_close:
	close(fd);
out:
	free(tx);
	free(rx);
	return failures ? 1 : 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int cmd_rt(const char *dev, long count, long size)
{
	unsigned char *tx = malloc(MAX_MSG), *rx = malloc(MAX_MSG);
	int64_t *lat = calloc((size_t)count, sizeof(*lat));
	char prefix[96];
	int64_t total = 0;
	int fd;

	snprintf(prefix, sizeof(prefix), "rt count=%ld size=%ld", count, size);
	if (!tx || !rx || !lat) {
		fail(prefix, "oom");
		goto out;
	}
	fd = open_dev(prefix, dev);
	if (fd < 0)
		goto out;
	fill_pattern(tx, (size_t)size, 0);
	for (long i = 0; i < count; i++) {
		int64_t t0 = now_us();
		ssize_t n;

		if (write_message(fd, tx, (size_t)size) < 0) {
			fail_errno(prefix, "write", errno);
			goto out_close;
		}
		n = read_message(fd, rx, MAX_MSG, REPLY_TIMEOUT_MS);
		lat[i] = now_us() - t0;
		if (n == -1) {
			fail(prefix, "timeout");
			goto out_close;
		}
		if (n < 0) {
			fail_errno(prefix, "read", errno);
			goto out_close;
		}
		if (n != size || memcmp(tx, rx, (size_t)size)) {
			fail(prefix, "mismatch");
			goto out_close;
		}
		total += lat[i];
	}
	qsort(lat, (size_t)count, sizeof(*lat), cmp_i64);
	say("%s p50_us=%lld p99_us=%lld mean_us=%lld ok", prefix, (long long)lat[count / 2],
	    (long long)lat[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1],
	    (long long)(total / count));
out_close:
	close(fd);
out:
	free(tx);
	free(rx);
	free(lat);
	return failures ? 1 : 0;
}

/*
 * The guest's own wake-up round trip: two processes ping-pong SIZE bytes over a pair of pipes. The
 * benchmark reports rpmsg round trips next to it, so UML's scheduling cost is not charged to the remote.
 */
int cmd_pipe_rt(long count, long size)
{
	unsigned char *buf = calloc(1, MAX_MSG);
	int64_t *lat = calloc((size_t)count, sizeof(*lat));
	int to_child[2], to_parent[2];
	char prefix[96];
	int64_t total = 0;
	pid_t child;

	snprintf(prefix, sizeof(prefix), "pipe-rt count=%ld size=%ld", count, size);
	if (!buf || !lat || pipe(to_child) || pipe(to_parent)) {
		fail(prefix, "setup");
		return 1;
	}
	child = fork();
	if (child < 0) {
		fail_errno(prefix, "fork", errno);
		return 1;
	}
	if (child == 0) {
		for (long i = 0; i < count; i++) {
			if (read(to_child[0], buf, (size_t)size) != size ||
			    write(to_parent[1], buf, (size_t)size) != size)
				_exit(1);
		}
		_exit(0);
	}
	for (long i = 0; i < count; i++) {
		int64_t t0 = now_us();

		if (write(to_child[1], buf, (size_t)size) != size ||
		    read(to_parent[0], buf, (size_t)size) != size) {
			fail_errno(prefix, "pipe", errno);
			return 1;
		}
		lat[i] = now_us() - t0;
		total += lat[i];
	}
	waitpid(child, NULL, 0);
	qsort(lat, (size_t)count, sizeof(*lat), cmp_i64);
	say("%s p50_us=%lld p99_us=%lld mean_us=%lld ok", prefix, (long long)lat[count / 2],
	    (long long)lat[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1],
	    (long long)(total / count));
	free(buf);
	free(lat);
	return 0;
}
