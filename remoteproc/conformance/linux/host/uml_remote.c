/*
 * The remote processor of the kernel's uml_rproc driver (kernel-tree/drivers/remoteproc/uml_rproc.c), as a host
 * process: the firmware's C rpmsg remote library (firmware/lib/rpmsg_remote.c, the MCU stack) on the memory file
 * the guest maps with iomem=, driven by the driver's socket.
 *
 *   uml-remote MEMFILE SOCKET RSC_DA SNAPSHOT
 *
 * Listens on SOCKET (prints "uml-remote: listening"), accepts the kernel's connection, then:
 *   HELLO     remembers the device address of the file's offset 0 (uml_rproc: the guest's pa unless
 *             uml_rproc.da= is given)
 *   PHYS      (right after HELLO) records the guest-physical address of offset 0, which Linux's
 *             descriptors hold; this remote resolves descriptors as device addresses, so rpmsg works only
 *             with da == pa (printed, not used)
 *   START     takes the resource table at RSC_DA (where the firmware ELF put it and Linux copied its own version
 *             of it back), waits for DRIVER_OK in its vdev entry, copies the whole file to SNAPSHOT.N for the
 *             Nth START (the memory
 *             image as Linux left it: loaded segments, resource table after boot, vrings), then announces
 *             "rpmsg-raw" by name service, writes a line into its trace buffer and echoes every message back to
 *             its sender
 *   KICK      handles the host's messages; the message "crash" makes it report CRASH and stop serving (Linux
 *             then recovers it: STOP, START), like a core that faulted
 *   STOP      copies the file to SNAPSHOT.stop.N (what Linux left in memory once it stopped), prints what it did
 *             and answers STOPPED (the kernel's stop waits for it), then waits for the next START, like a core
 *             held in reset
 * The socket's end (UML gone) exits 0 after a STOP, 3 otherwise.
 * Every event is one line on stdout ("uml-remote: ..."), flushed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rproc/rpmsg_remote.h"

/* uml_rproc's messages: { u32 type; u32 arg; u64 value; }, little-endian (as this host). */
enum { MSG_HELLO = 1, MSG_START = 2, MSG_STOP = 3, MSG_KICK = 4, MSG_CRASH = 5, MSG_STOPPED = 6, MSG_PHYS = 7 };
struct msg {
	uint32_t type;
	uint32_t arg;
	uint64_t value;
};

#define RSC_TRACE 2u
#define RSC_VDEV 3u

struct remote {
	int fd;
	uint8_t *mem;
	uint64_t size;
	uint64_t da_base;
	int have_base;
	uint64_t phys_base; /* PHYS: the guest-physical address of offset 0 */
	uint64_t kicks_in, kicks_out, echoed;
	struct rpmsg_remote r;
	struct rpmsg_ept ept;
	int running;
	int stopped; /* a STOP came since the last START */
	int crash;   /* the host asked for a crash: report it and stop serving */
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("uml-remote: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static void die(const char *what)
{
	say("error %s: %s", what, strerror(errno));
	exit(2);
}

static int send_msg(struct remote *rm, uint32_t type, uint32_t arg)
{
	struct msg m = { type, arg, 0 };
	return write(rm->fd, &m, sizeof(m)) == (ssize_t)sizeof(m) ? 0 : -1;
}

static void kick(void *ctx, uint32_t queue)
{
	struct remote *rm = ctx;
	rm->kicks_out++;
	if (send_msg(rm, MSG_KICK, queue) != 0) {
		/* the kernel is gone: the socket's end ends the main loop */
	}
}

/* Wait for a message: 1 with one in *m, 0 on timeout, -1 at the socket's end. */
static int recv_msg(struct remote *rm, struct msg *m, int timeout_ms)
{
	struct pollfd p = { rm->fd, POLLIN, 0 };
	int n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	if (n == 0)
		return 0;
	size_t got = 0;
	while (got < sizeof(*m)) {
		ssize_t r = read(rm->fd, (uint8_t *)m + got, sizeof(*m) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 1;
}

static void echo(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data, uint32_t len,
		 uint32_t src)
{
	struct remote *rm = ept->priv;
	uint8_t copy[512];
	if (len > sizeof(copy))
		return;
	if (len == 5 && data[0] == 'c' && data[1] == 'r' && data[2] == 'a' && data[3] == 's' && data[4] == 'h') {
		rm->crash = 1;
		return;
	}
	for (uint32_t i = 0; i < len; i++)
		copy[i] = data[i];
	/* Linux re-posts its receive buffers as it reads them: wait for one. */
	int rc;
	while ((rc = rpmsg_send(r, ept->addr, src, copy, len)) == RPMSG_ERR_NO_BUFFER)
		usleep(100);
	if (rc == RPMSG_OK)
		rm->echoed++;
	else
		say("send failed rc=%d", rc);
}

/* The first entry of `type` in the resource table at `rsc_da` (with at least `len` bytes), or NULL. */
static volatile void *find_entry(struct remote *rm, uint64_t rsc_da, uint32_t type, uint64_t len)
{
	if (rsc_da < rm->da_base || rsc_da - rm->da_base + sizeof(struct resource_table_hdr) > rm->size) {
		say("error resource table da=0x%" PRIx64 " outside the memory", rsc_da);
		return NULL;
	}
	uint64_t base = rsc_da - rm->da_base;
	const volatile struct resource_table_hdr *t = (const volatile void *)(rm->mem + base);
	uint32_t num = t->num;
	if (base + sizeof(*t) + 4ull * num > rm->size) {
		say("error resource table num=%u too big", num);
		return NULL;
	}
	for (uint32_t i = 0; i < num; i++) {
		uint32_t off = ((const volatile uint32_t *)(t + 1))[i];
		if (base + off + len > rm->size) {
			say("error resource table entry %u at offset %u outside the memory", i, off);
			return NULL;
		}
		volatile uint32_t *entry = (volatile void *)(rm->mem + base + off);
		if (*entry == type)
			return entry;
	}
	return NULL;
}

/* Write `text` into the trace buffer Linux shows at /sys/kernel/debug/remoteproc/remoteprocN/trace0. */
static void trace(struct remote *rm, uint64_t rsc_da, const char *text)
{
	volatile struct fw_rsc_trace *t = find_entry(rm, rsc_da, RSC_TRACE, sizeof(*t));
	if (t == NULL || t->da < rm->da_base || t->da - rm->da_base > rm->size || t->len > rm->size - (t->da - rm->da_base))
		return;
	volatile char *buf = (volatile char *)(rm->mem + (t->da - rm->da_base));
	size_t n = strlen(text);
	for (size_t i = 0; i < t->len; i++)
		buf[i] = i < n ? text[i] : 0;
}

static void snapshot(struct remote *rm, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open snapshot");
	uint64_t done = 0;
	while (done < rm->size) {
		ssize_t n = write(fd, rm->mem + done, rm->size - done);
		if (n <= 0)
			die("write snapshot");
		done += (uint64_t)n;
	}
	close(fd);
}

static int boot(struct remote *rm, uint64_t rsc_da, const char *snap)
{
	volatile struct fw_rsc_vdev *vdev = find_entry(rm, rsc_da, RSC_VDEV, sizeof(struct fw_rsc_vdev));
	if (vdev == NULL) {
		say("error no vdev entry in the resource table");
		return -1;
	}
	/* The kernel sets DRIVER_OK once virtio_rpmsg_bus has probed, after the START message. */
	struct msg m;
	while (!rpmsg_remote_ready(vdev)) {
		int n = recv_msg(rm, &m, 1);
		if (n < 0)
			return -1;
		if (n == 1 && m.type == MSG_STOP) {
			say("stop before DRIVER_OK");
			return -1;
		}
		if (n == 1 && m.type == MSG_KICK)
			rm->kicks_in++;
	}
	snapshot(rm, snap);
	say("driver-ok status=0x%02x", vdev->status);
	struct rp_region region = { rm->da_base, rm->size, rm->mem };
	int rc = rpmsg_remote_init(&rm->r, vdev, &region, kick, rm);
	if (rc == RPMSG_OK)
		rc = rpmsg_create_ept(&rm->r, &rm->ept, "rpmsg-raw", RPMSG_ADDR_ANY, echo, rm);
	if (rc != RPMSG_OK) {
		say("error rpmsg init rc=%d", rc);
		return -1;
	}
	rm->running = 1;
	trace(rm, rsc_da, "uml-remote: rpmsg-raw announced\n");
	say("announced name=rpmsg-raw addr=%u", rm->ept.addr);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: uml-remote MEMFILE SOCKET RSC_DA SNAPSHOT\n");
		return 2;
	}
	struct remote rm;
	memset(&rm, 0, sizeof(rm));
	uint64_t rsc_da = strtoull(argv[3], NULL, 0);
	char snap[4096];
	unsigned boots = 0;

	int mfd = open(argv[1], O_RDWR);
	struct stat st;
	if (mfd < 0 || fstat(mfd, &st) != 0)
		die("open memory file");
	rm.size = (uint64_t)st.st_size;
	rm.mem = mmap(NULL, rm.size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (rm.mem == MAP_FAILED)
		die("mmap memory file");

	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(argv[2]) >= sizeof(addr.sun_path)) {
		say("error socket path too long");
		return 2;
	}
	strcpy(addr.sun_path, argv[2]);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 1) != 0)
		die("listen");
	say("listening");
	rm.fd = accept(lfd, NULL, NULL);
	if (rm.fd < 0)
		die("accept");
	close(lfd);
	say("connected");

	for (;;) {
		struct msg m;
		int n = recv_msg(&rm, &m, rm.running ? 10 : -1);
		if (n < 0) {
			say("end of socket stopped=%d", rm.stopped);
			return rm.stopped && !rm.running ? 0 : 3;
		}
		if (n == 1) {
			switch (m.type) {
			case MSG_HELLO:
				rm.da_base = m.value;
				rm.have_base = 1;
				if (m.arg < rm.size)
					rm.size = m.arg;
				say("hello da=0x%" PRIx64 " size=0x%x", m.value, m.arg);
				break;
			case MSG_PHYS:
				rm.phys_base = m.value;
				say("phys pa=0x%" PRIx64, m.value);
				break;
			case MSG_START:
				say("start boot=0x%" PRIx64, m.value);
				rm.stopped = 0;
				snprintf(snap, sizeof(snap), "%s.%u", argv[4], ++boots);
				if (!rm.have_base || boot(&rm, rsc_da, snap) != 0)
					say("error boot failed");
				break;
			case MSG_STOP:
				/* Like a core held in reset: wait for the next START (or the socket's end). */
				say("stop kicks_in=%" PRIu64 " kicks_out=%" PRIu64 " echoed=%" PRIu64 " dropped=%u",
				    rm.kicks_in, rm.kicks_out, rm.echoed, rm.r.dropped);
				rm.running = 0;
				rm.stopped = 1;
				snprintf(snap, sizeof(snap), "%s.stop.%u", argv[4], boots);
				snapshot(&rm, snap);
				if (send_msg(&rm, MSG_STOPPED, 0) != 0)
					say("error cannot answer STOP");
				break;
			case MSG_KICK:
				rm.kicks_in++;
				break;
			default:
				say("unknown message type=%u", m.type);
			}
		}
		/* A timeout too: a kick may have been missed while DRIVER_OK was awaited. */
		if (rm.running) {
			int rc = 0;
			while (!rm.crash && (rc = rpmsg_poll(&rm.r)) > 0) {
			}
			if (rm.crash) {
				rm.crash = 0;
				rm.running = 0;
				say("crash sent");
				if (send_msg(&rm, MSG_CRASH, 0) != 0)
					say("error cannot report the crash");
			} else if (rc == RPMSG_ERR_RESET) {
				say("reset status=0x%02x", rm.r.vdev->status);
				rm.running = 0;
			} else if (rc < 0) {
				say("error poll rc=%d", rc);
				rm.running = 0;
			}
		}
	}
}
