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
 *   pipe-rt COUNT SIZE                the same between two guest processes over a pair of pipes
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
 *
 * This file holds the usage text and main's dispatch; the commands are in probe_ctrl.c
 * (wait-channel, wait-gone, ctrl-ept, ctrl-dev, send, recv) and probe_data.c (echo,
 * write-expect-errno, stream, rt, pipe-rt), declared in probe_commands.h; what they share
 * (output lines, errors, parsing, sysfs, messages with timeouts) is in probe_util.c/.h.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "probe_commands.h"
#include "probe_util.h"

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
