// SPDX-License-Identifier: BSD-3-Clause
/*
 * rpmsg-probe: drives the Linux rpmsg char interface (/dev/rpmsgN, /dev/rpmsg_ctrlN)
 * from inside the conformance-test guest and prints one line per result:
 *
 *     <command> <key>=<value> ... ok
 *     <command> <key>=<value> ... fail reason=<why> [call=<syscall>]
 *
 * Every line is flushed at once. Exit status 0 when every check passed, 1 otherwise
 * (2 for a usage error). Nothing blocks without a timeout: reads go through poll().
 *
 * Commands:
 *   wait-channel NAME TIMEOUT_MS      a /dev/rpmsgN for a channel NAME announced by the remote
 *   wait-gone DEV TIMEOUT_MS          DEV disappears
 *   echo DEV SIZE...                  write a pattern of SIZE bytes, expect it back (5 s each)
 *   write-expect-errno DEV SIZE ERRNO a write of SIZE bytes fails with ERRNO (e.g. EMSGSIZE)
 *   stream DEV COUNT SIZE WINDOW      COUNT echoes, up to WINDOW outstanding, checked in order
 *   rt DEV COUNT SIZE                 COUNT round trips (write, then read), latency percentiles
 *   ctrl-ept CTRL NAME SRC DST        RPMSG_CREATE_EPT_IOCTL, one exchange, RPMSG_DESTROY_EPT_IOCTL
 *                                     (the reply is printed as text, \xNN for other bytes)
 *   ctrl-dev CTRL create|release NAME SRC DST
 *                                     RPMSG_CREATE_DEV_IOCTL / RPMSG_RELEASE_DEV_IOCTL
 *   send DEV TEXT                     write TEXT as one message
 *   recv DEV TIMEOUT_MS               read one message, printed as hex
 * Addresses (SRC, DST) are numbers (0x.. allowed) or "any" (RPMSG_ADDR_ANY).
 *
 * Note: rpmsg_char drops the messages queued for a device when it is closed, so a
 * request and its reply must use one open file: use echo/stream/rt, not send + recv.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * From include/uapi/linux/rpmsg.h of Linux 6.1 (checked against the tree the
 * conformance kernel is built from); copied so the program does not depend on
 * the host's kernel headers.
 */
#define RPMSG_ADDR_ANY 0xFFFFFFFFu
struct rpmsg_endpoint_info {
	char name[32];
	uint32_t src;
	uint32_t dst;
};
#define RPMSG_CREATE_EPT_IOCTL _IOW(0xb5, 0x1, struct rpmsg_endpoint_info)
#define RPMSG_DESTROY_EPT_IOCTL _IO(0xb5, 0x2)
#define RPMSG_CREATE_DEV_IOCTL _IOW(0xb5, 0x3, struct rpmsg_endpoint_info)
#define RPMSG_RELEASE_DEV_IOCTL _IOW(0xb5, 0x4, struct rpmsg_endpoint_info)

#define SYSFS_RPMSG_CLASS "/sys/class/rpmsg"
#define REPLY_TIMEOUT_MS 5000
#define NODE_TIMEOUT_MS 2000
#define MAX_MSG 65536 /* far above what virtio_rpmsg_bus carries (496 bytes) */

static int failures;

/* ---- output ---------------------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static const char *errname(int err)
{
	static char buf[16];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

/* A failed check: "<prefix> fail reason=<reason>". */
static void fail(const char *prefix, const char *reason)
{
	failures++;
	say("%s fail reason=%s", prefix, reason);
}

/* A failed system call: "<prefix> fail reason=errno=<ENAME> call=<call>". */
static void fail_errno(const char *prefix, const char *call, int err)
{
	failures++;
	say("%s fail reason=errno=%s call=%s", prefix, errname(err), call);
}

/* Text on one line: printable ASCII (space included) as is, '\\' and the rest as \xNN. */
static void escape(const unsigned char *data, size_t len, char *out, size_t out_size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < out_size; i++) {
		unsigned char c = data[i];

		if (c >= ' ' && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, out_size - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

/* ---- helpers --------------------------------------------------------------------------- */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_addr(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!strcmp(s, "any") || !strcmp(s, "-1")) {
		*out = RPMSG_ADDR_ANY;
		return 0;
	}
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* A sysfs attribute, trailing newline removed; -1 when it cannot be read. */
static int read_attr(const char *dir, const char *attr, char *buf, size_t size)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

/* A sysfs address attribute ("%d" for char devices, "0x%x" on the rpmsg bus) as unsigned. */
static uint32_t read_addr_attr(const char *dir, const char *attr)
{
	char buf[32];

	if (read_attr(dir, attr, buf, sizeof(buf)) < 0)
		return RPMSG_ADDR_ANY;
	return (uint32_t)strtoll(buf, NULL, 0);
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Is /sys/class/rpmsg/NAME an endpoint device ("rpmsgN", not "rpmsg_ctrlN")? */
static int is_ept_entry(const char *name)
{
	if (strncmp(name, "rpmsg", 5) != 0 || !name[5])
		return 0;
	for (const char *p = name + 5; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

/* Set of endpoint device names present now, as a bitmap over N (rpmsgN). */
#define MAX_EPT_IDS 1024
static void snapshot_epts(unsigned char present[MAX_EPT_IDS])
{
	DIR *d = opendir(SYSFS_RPMSG_CLASS);
	struct dirent *e;

	memset(present, 0, MAX_EPT_IDS);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (is_ept_entry(e->d_name)) {
			long id = strtol(e->d_name + 5, NULL, 10);

			if (id >= 0 && id < MAX_EPT_IDS)
				present[id] = 1;
		}
	}
	closedir(d);
}

static void fill_pattern(unsigned char *buf, size_t size, size_t from)
{
	for (size_t i = from; i < size; i++)
		buf[i] = (unsigned char)((i * 31 + size) & 0xff);
}

/* Wait up to timeout_ms for one message; returns its length, -1 on timeout, -2 on error (errno). */
static ssize_t read_message(int fd, unsigned char *buf, size_t size, int timeout_ms)
{
	int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_us();
		int r;

		if (left < 0)
			left = 0;
		r = poll(&pfd, 1, (int)((left + 999) / 1000));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -2;
		}
		if (r == 0)
			return -1;
		if (pfd.revents & (POLLERR | POLLNVAL)) {
			errno = pfd.revents & POLLNVAL ? EBADF : EPIPE;
			return -2;
		}
		if (pfd.revents & POLLIN) {
			ssize_t n = read(fd, buf, size);

			if (n >= 0)
				return n;
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -2;
		}
		if (pfd.revents & POLLHUP) {
			errno = EPIPE;
			return -2;
		}
	}
}

static int open_dev(const char *prefix, const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fail_errno(prefix, "open", errno);
	return fd;
}

/* Write one whole message; 0, or -1 with errno (a short write is reported as EIO). */
static int write_message(int fd, const unsigned char *buf, size_t len)
{
	ssize_t n;

	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* ---- commands -------------------------------------------------------------------------- */

static int cmd_wait_channel(const char *name, long timeout_ms)
{
	int64_t deadline = now_us() + timeout_ms * 1000;
	char prefix[128];

	snprintf(prefix, sizeof(prefix), "wait-channel name=%s", name);
	for (;;) {
		DIR *d = opendir(SYSFS_RPMSG_CLASS);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char dir[512], devpath[512], attr[64], announce[1024];

			if (!is_ept_entry(e->d_name))
				continue;
			snprintf(dir, sizeof(dir), SYSFS_RPMSG_CLASS "/%s", e->d_name);
			if (read_attr(dir, "name", attr, sizeof(attr)) < 0 || strcmp(attr, name))
				continue;
			/* announced by the remote: the parent is a device on the rpmsg bus,
			 * not an endpoint made through /dev/rpmsg_ctrlN */
			snprintf(announce, sizeof(announce), "%s/device/announce", dir);
			if (!exists(announce))
				continue;
			snprintf(devpath, sizeof(devpath), "/dev/%s", e->d_name);
			if (!exists(devpath))
				continue;
			say("wait-channel name=%s dev=%s src=%u dst=%u ok", name, devpath,
			    read_addr_attr(dir, "src"), read_addr_attr(dir, "dst"));
			closedir(d);
			return 0;
		}
		if (d)
			closedir(d);
		if (now_us() >= deadline) {
			fail(prefix, "timeout");
			return 1;
		}
		sleep_ms(10);
	}
}

static int cmd_wait_gone(const char *dev, long timeout_ms)
{
	int64_t deadline = now_us() + timeout_ms * 1000;
	char prefix[PATH_MAX + 32];

	snprintf(prefix, sizeof(prefix), "wait-gone dev=%s", dev);
	while (exists(dev)) {
		if (now_us() >= deadline) {
			fail(prefix, "timeout");
			return 1;
		}
		sleep_ms(10);
	}
	say("%s ok", prefix);
	return 0;
}

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

static int cmd_echo(const char *dev, int nsizes, char **sizes)
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

static int cmd_write_expect_errno(const char *dev, long size, const char *expected)
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

static int cmd_stream(const char *dev, long count, long size, long window)
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

static int cmd_rt(const char *dev, long count, long size)
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
static int cmd_pipe_rt(long count, long size)
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

static int wait_node(const char *path, int present, int timeout_ms)
{
	int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;

	while (exists(path) != present) {
		if (now_us() >= deadline)
			return -1;
		sleep_ms(10);
	}
	return 0;
}

static int fill_info(struct rpmsg_endpoint_info *info, const char *name, const char *src, const char *dst)
{
	memset(info, 0, sizeof(*info));
	if (strlen(name) >= sizeof(info->name) || parse_addr(src, &info->src) < 0 ||
	    parse_addr(dst, &info->dst) < 0)
		return -1;
	memcpy(info->name, name, strlen(name));
	return 0;
}

static int cmd_ctrl_ept(const char *ctrl, const char *name, const char *src, const char *dst)
{
	unsigned char before[MAX_EPT_IDS], after[MAX_EPT_IDS];
	struct rpmsg_endpoint_info info;
	char devpath[64] = "", text[64], reply_text[MAX_MSG * 4 / 16];
	unsigned char *rx = NULL;
	int cfd, fd = -1, id = -1;
	ssize_t n;

	if (fill_info(&info, name, src, dst) < 0) {
		fail("ctrl-ept", "bad-args");
		return 1;
	}
	cfd = open_dev("ctrl-ept", ctrl);
	if (cfd < 0)
		return 1;
	snapshot_epts(before);
	if (ioctl(cfd, RPMSG_CREATE_EPT_IOCTL, &info) < 0) {
		fail_errno("ctrl-ept", "ioctl(RPMSG_CREATE_EPT_IOCTL)", errno);
		goto out;
	}
	snapshot_epts(after);
	for (int i = 0; i < MAX_EPT_IDS; i++) {
		if (after[i] && !before[i]) {
			char dir[PATH_MAX], attr[64];

			snprintf(dir, sizeof(dir), SYSFS_RPMSG_CLASS "/rpmsg%d", i);
			if (read_attr(dir, "name", attr, sizeof(attr)) == 0 && !strcmp(attr, name)) {
				id = i;
				break;
			}
		}
	}
	if (id < 0) {
		fail("ctrl-ept", "no-new-device");
		goto out;
	}
	snprintf(devpath, sizeof(devpath), "/dev/rpmsg%d", id);
	if (wait_node(devpath, 1, NODE_TIMEOUT_MS) < 0) {
		char p[96];

		snprintf(p, sizeof(p), "ctrl-ept dev=%s", devpath);
		fail(p, "no-node");
		goto out;
	}
	say("ctrl-ept dev=%s ok", devpath);

	fd = open_dev("ctrl-ept", devpath);
	if (fd < 0)
		goto out;
	snprintf(text, sizeof(text), "hello from %s", name);
	if (write_message(fd, (const unsigned char *)text, strlen(text)) < 0) {
		fail_errno("ctrl-ept", "write", errno);
		goto destroy;
	}
	rx = malloc(MAX_MSG);
	if (!rx) {
		fail("ctrl-ept", "oom");
		goto destroy;
	}
	n = read_message(fd, rx, MAX_MSG / 16, REPLY_TIMEOUT_MS);
	if (n == -1) {
		fail("ctrl-ept reply", "timeout");
		goto destroy;
	}
	if (n < 0) {
		fail_errno("ctrl-ept reply", "read", errno);
		goto destroy;
	}
	escape(rx, (size_t)n, reply_text, sizeof(reply_text));
	say("ctrl-ept reply=%s ok", reply_text);

destroy:
	if (ioctl(fd, RPMSG_DESTROY_EPT_IOCTL) < 0) {
		fail_errno("ctrl-ept destroyed", "ioctl(RPMSG_DESTROY_EPT_IOCTL)", errno);
	} else {
		close(fd);
		fd = -1;
		if (wait_node(devpath, 0, NODE_TIMEOUT_MS) < 0)
			fail("ctrl-ept destroyed", "node-remains");
		else
			say("ctrl-ept destroyed ok");
	}
out:
	if (fd >= 0)
		close(fd);
	close(cfd);
	free(rx);
	return failures ? 1 : 0;
}

static int cmd_ctrl_dev(const char *ctrl, const char *op, const char *name, const char *src, const char *dst)
{
	struct rpmsg_endpoint_info info;
	unsigned long req;
	char prefix[96];
	int cfd;

	snprintf(prefix, sizeof(prefix), "ctrl-dev %s name=%s", op, name);
	if (!strcmp(op, "create"))
		req = RPMSG_CREATE_DEV_IOCTL;
	else if (!strcmp(op, "release"))
		req = RPMSG_RELEASE_DEV_IOCTL;
	else {
		fail(prefix, "bad-op");
		return 1;
	}
	if (fill_info(&info, name, src, dst) < 0) {
		fail(prefix, "bad-args");
		return 1;
	}
	cfd = open_dev(prefix, ctrl);
	if (cfd < 0)
		return 1;
	if (ioctl(cfd, req, &info) < 0)
		fail_errno(prefix, req == RPMSG_CREATE_DEV_IOCTL ? "ioctl(RPMSG_CREATE_DEV_IOCTL)"
								  : "ioctl(RPMSG_RELEASE_DEV_IOCTL)",
			   errno);
	else
		say("%s ok", prefix);
	close(cfd);
	return failures ? 1 : 0;
}

static int cmd_send(const char *dev, const char *text)
{
	char prefix[64];
	int fd = open_dev("send", dev);

	if (fd < 0)
		return 1;
	snprintf(prefix, sizeof(prefix), "send len=%zu", strlen(text));
	if (write_message(fd, (const unsigned char *)text, strlen(text)) < 0)
		fail_errno(prefix, "write", errno);
	else
		say("%s ok", prefix);
	close(fd);
	return failures ? 1 : 0;
}

static int cmd_recv(const char *dev, long timeout_ms)
{
	unsigned char *rx = malloc(MAX_MSG);
	int fd;
	ssize_t n;

	if (!rx) {
		fail("recv", "oom");
		return 1;
	}
	fd = open_dev("recv", dev);
	if (fd < 0) {
		free(rx);
		return 1;
	}
	n = read_message(fd, rx, MAX_MSG, (int)timeout_ms);
	if (n == -1) {
		fail("recv", "timeout");
	} else if (n < 0) {
		fail_errno("recv", "read", errno);
	} else {
		char *hex = malloc((size_t)n * 2 + 1);

		if (!hex) {
			fail("recv", "oom");
		} else {
			for (ssize_t i = 0; i < n; i++)
				sprintf(hex + i * 2, "%02x", rx[i]);
			hex[n * 2] = '\0';
			say("recv len=%zd data=%s ok", n, hex);
			free(hex);
		}
	}
	close(fd);
	free(rx);
	return failures ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------------------ */

static int usage(void)
{
	fprintf(stderr,
		"usage: rpmsg-probe wait-channel NAME TIMEOUT_MS\n"
		"       rpmsg-probe wait-gone DEV TIMEOUT_MS\n"
		"       rpmsg-probe echo DEV SIZE...\n"
		"       rpmsg-probe write-expect-errno DEV SIZE ERRNO\n"
		"       rpmsg-probe stream DEV COUNT SIZE WINDOW\n"
		"       rpmsg-probe rt DEV COUNT SIZE\n"
		"       rpmsg-probe pipe-rt COUNT SIZE\n"
		"       rpmsg-probe ctrl-ept CTRL NAME SRC DST\n"
		"       rpmsg-probe ctrl-dev CTRL create|release NAME SRC DST\n"
		"       rpmsg-probe send DEV TEXT\n"
		"       rpmsg-probe recv DEV TIMEOUT_MS\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	long a, b, c;

	if (!strcmp(cmd, "wait-channel") && argc == 4 && !parse_long(argv[3], 0, INT_MAX, &a))
		return cmd_wait_channel(argv[2], a);
	if (!strcmp(cmd, "wait-gone") && argc == 4 && !parse_long(argv[3], 0, INT_MAX, &a))
		return cmd_wait_gone(argv[2], a);
	if (!strcmp(cmd, "echo") && argc >= 4)
		return cmd_echo(argv[2], argc - 3, argv + 3);
	if (!strcmp(cmd, "write-expect-errno") && argc == 5 && !parse_long(argv[3], 0, MAX_MSG, &a))
		return cmd_write_expect_errno(argv[2], a, argv[4]);
	if (!strcmp(cmd, "stream") && argc == 6 && !parse_long(argv[3], 1, INT_MAX, &a) &&
	    !parse_long(argv[4], 4, MAX_MSG, &b) && !parse_long(argv[5], 1, INT_MAX, &c))
		return cmd_stream(argv[2], a, b, c);
	if (!strcmp(cmd, "rt") && argc == 5 && !parse_long(argv[3], 1, 10000000, &a) &&
	    !parse_long(argv[4], 0, MAX_MSG, &b))
		return cmd_rt(argv[2], a, b);
	if (!strcmp(cmd, "pipe-rt") && argc == 4 && !parse_long(argv[2], 1, 10000000, &a) &&
	    !parse_long(argv[3], 1, 4096, &b))
		return cmd_pipe_rt(a, b);
	if (!strcmp(cmd, "ctrl-ept") && argc == 6)
		return cmd_ctrl_ept(argv[2], argv[3], argv[4], argv[5]);
	if (!strcmp(cmd, "ctrl-dev") && argc == 7)
		return cmd_ctrl_dev(argv[2], argv[3], argv[4], argv[5], argv[6]);
	if (!strcmp(cmd, "send") && argc == 4)
		return cmd_send(argv[2], argv[3]);
	if (!strcmp(cmd, "recv") && argc == 4 && !parse_long(argv[3], 0, INT_MAX, &a))
		return cmd_recv(argv[2], a);
	return usage();
}
