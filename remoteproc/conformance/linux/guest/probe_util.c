// SPDX-License-Identifier: BSD-3-Clause
/*
 * rpmsg-probe's shared parts (declared in probe_util.h): the output lines ("<command> ... ok",
 * "... fail reason=<why>") and the failure count, argument parsing, sysfs attributes, and one
 * message written, or read with a timeout through poll().
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "probe_util.h"

int failures;

/* ---- output ---------------------------------------------------------------------------- */

void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

const char *errname(int err)
{
	static char buf[16];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

/* A failed check: "<prefix> fail reason=<reason>". */
void fail(const char *prefix, const char *reason)
{
	failures++;
	say("%s fail reason=%s", prefix, reason);
}

/* A failed system call: "<prefix> fail reason=errno=<ENAME> call=<call>". */
void fail_errno(const char *prefix, const char *call, int err)
{
	failures++;
	say("%s fail reason=errno=%s call=%s", prefix, errname(err), call);
}

/* Text on one line: printable ASCII (space included) as is, '\\' and the rest as \xNN. */
void escape(const unsigned char *data, size_t len, char *out, size_t out_size)
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

int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int parse_long(const char *s, long min, long max, long *out)
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

int parse_addr(const char *s, uint32_t *out)
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
int read_attr(const char *dir, const char *attr, char *buf, size_t size)
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
uint32_t read_addr_attr(const char *dir, const char *attr)
{
	char buf[32];

	if (read_attr(dir, attr, buf, sizeof(buf)) < 0)
		return RPMSG_ADDR_ANY;
	return (uint32_t)strtoll(buf, NULL, 0);
}

int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Is /sys/class/rpmsg/NAME an endpoint device ("rpmsgN", not "rpmsg_ctrlN")? */
int is_ept_entry(const char *name)
{
	if (strncmp(name, "rpmsg", 5) != 0 || !name[5])
		return 0;
	for (const char *p = name + 5; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

/* Set of endpoint device names present now, as a bitmap over N (rpmsgN). */
void snapshot_epts(unsigned char present[MAX_EPT_IDS])
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

void fill_pattern(unsigned char *buf, size_t size, size_t from)
{
	for (size_t i = from; i < size; i++)
		buf[i] = (unsigned char)((i * 31 + size) & 0xff);
}

/* Wait up to timeout_ms for one message; returns its length, -1 on timeout, -2 on error (errno). */
ssize_t read_message(int fd, unsigned char *buf, size_t size, int timeout_ms)
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

int open_dev(const char *prefix, const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fail_errno(prefix, "open", errno);
	return fd;
}

/* Write one whole message; 0, or -1 with errno (a short write is reported as EIO). */
int write_message(int fd, const unsigned char *buf, size_t len)
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
