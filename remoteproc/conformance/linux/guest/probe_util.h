// SPDX-License-Identifier: BSD-3-Clause
/*
 * rpmsg-probe's shared parts (probe_util.c): the rpmsg char interface's ioctls and limits, the
 * output lines and failure count, argument parsing, sysfs attributes, and one message written or
 * read with a timeout. The commands are in probe_data.c and probe_ctrl.c, main in rpmsg_probe.c.
 */
#ifndef PROBE_UTIL_H
#define PROBE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

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
#define MAX_EPT_IDS 1024

/* The number of failed checks so far; a command returns 1 when it is not 0. */
extern int failures;

/* ---- output ---- */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *errname(int err);
void fail(const char *prefix, const char *reason);
void fail_errno(const char *prefix, const char *call, int err);
void escape(const unsigned char *data, size_t len, char *out, size_t out_size);

/* ---- helpers ---- */
int64_t now_us(void);
void sleep_ms(int ms);
int parse_long(const char *s, long min, long max, long *out);
int parse_addr(const char *s, uint32_t *out);
int read_attr(const char *dir, const char *attr, char *buf, size_t size);
uint32_t read_addr_attr(const char *dir, const char *attr);
int exists(const char *path);
int is_ept_entry(const char *name);
void snapshot_epts(unsigned char present[MAX_EPT_IDS]);
void fill_pattern(unsigned char *buf, size_t size, size_t from);
ssize_t read_message(int fd, unsigned char *buf, size_t size, int timeout_ms);
int open_dev(const char *prefix, const char *dev);
int write_message(int fd, const unsigned char *buf, size_t len);

#endif /* PROBE_UTIL_H */
