// SPDX-License-Identifier: BSD-3-Clause
/*
 * rpmsg-probe's commands, one function each, called by main (rpmsg_probe.c) with parsed
 * arguments; each prints its result lines and returns the exit status.
 */
#ifndef PROBE_COMMANDS_H
#define PROBE_COMMANDS_H

/* probe_ctrl.c: channels and devices, single messages */
int cmd_wait_channel(const char *name, long timeout_ms);
int cmd_wait_gone(const char *dev, long timeout_ms);
int cmd_ctrl_ept(const char *ctrl, const char *name, const char *src, const char *dst);
int cmd_ctrl_dev(const char *ctrl, const char *op, const char *name, const char *src, const char *dst);
int cmd_send(const char *dev, const char *text);
int cmd_recv(const char *dev, long timeout_ms);

/* probe_data.c: echoes, streams and round-trip timings */
int cmd_echo(const char *dev, int nsizes, char **sizes);
int cmd_write_expect_errno(const char *dev, long size, const char *expected);
int cmd_stream(const char *dev, long count, long size, long window);
int cmd_rt(const char *dev, long count, long size);
int cmd_pipe_rt(long count, long size);

#endif /* PROBE_COMMANDS_H */
