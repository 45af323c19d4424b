// SPDX-License-Identifier: BSD-3-Clause
/*
 * rpmsg-probe's channel and control commands: wait-channel and wait-gone (sysfs and /dev),
 * ctrl-ept and ctrl-dev (the /dev/rpmsg_ctrlN ioctls), and send and recv (one message each).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "probe_commands.h"
#include "probe_util.h"

int cmd_wait_channel(const char *name, long timeout_ms)
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

int cmd_wait_gone(const char *dev, long timeout_ms)
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

int cmd_ctrl_ept(const char *ctrl, const char *name, const char *src, const char *dst)
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

int cmd_ctrl_dev(const char *ctrl, const char *op, const char *name, const char *src, const char *dst)
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

int cmd_send(const char *dev, const char *text)
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

int cmd_recv(const char *dev, long timeout_ms)
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
