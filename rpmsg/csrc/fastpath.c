/*
 * The rpmsg host's per-message work in one C call each, for rpmsg/fastpath.py. Every rule stays in the Python
 * runner (rpmsg/device.py) and cores (rpmsg/host_core.py, rpmsg/remote_core.py); this file only does what they do per message without the
 * interpreter in between:
 *
 *   rpf_send  take a send buffer (reclaiming returned ones when none is free), write the 16-byte header
 *             {src, dst, reserved 0, len, flags 0} and the payload, add it to vring 1 and publish; when the
 *             remote wants a kick and the doorbell is an eventfd, write it (the runner's kick, saved a call).
 *             It is rpf_put (take, header, payload, add) and rpf_flush (publish, kick)
 *   rpf_send_many  rpf_put for each message of a batch (payloads back to back, lengths apart) until the pool
 *             runs dry, then one rpf_flush: one publish and at most one kick for the batch; the count added
 *   rpf_dev_put / rpf_dev_flush / rpf_dev_send_many  the same three for the remote role (fastpath_remote.c,
 *             with every rpf_dev_*)
 *   rpf_take / rpf_send_buffer  the same for zero-copy sends: a pool buffer's address, then its header,
 *             add, publish and kick once the caller has written the payload in place
 *   rpf_send_buffers  rpf_send_buffer for a batch of filled buffers: every size checked first, then header and
 *             add of each, one publish and at most one kick
 *   rpf_recv  copy the messages waiting in vring 0 out back to back, re-post their buffers and publish (with
 *             `arm` > 0, when none waits: enable the remote's kicks and look once more, as enable_callbacks
 *             does; `arm` < 0: first turn the remote's kicks off, as disable_callbacks does)
 *   rpf_dev_send / rpf_dev_recv  the same two for the remote role (virtio device): fill a host receive buffer
 *             from vring 0; copy out what the host sent on vring 1 and give its buffers back
 *   rpf_wait  the runner's wait: spin on vring 0's used index, then sleep on the doorbell and wake descriptors
 *   rpf_kick  a kick through a kick word (fastpath.h): an eventfd, one byte on a stream socket, one datagram
 *   rpf_api   all of the above as a table of pointers, for rpmsg._endpoint_c (which has no copy of its own)
 *
 * rpf_recv does no I/O; rpf_send's only I/O is that kick (rpf_kick, whatever the doorbell's kind); rpf_wait is the runner's own select, in C so that a
 * blocking receive costs the wake-up and not the interpreter. It only reads the ring (no state changes), so a
 * thread may wait while another, holding the device lock, consumes.
 */
#define _GNU_SOURCE
#include "fastpath.h"
#include "fastpath_common.h"
#include "vring_layout.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Header and add of a filled buffer at `addr` (not published: rpf_flush does that, once per batch). */
static int post(struct rp_vq *tx, uint64_t addr, uint8_t *host, uint32_t src, uint32_t dst, uint32_t len,
		uint32_t reserved, uint32_t *npool)
{
	put_header(host, src, dst, reserved, len);
	struct rp_buf b = { addr, HDR + len, 0, 0 };
	int r = rp_drv_add(tx, &b, 1, addr);
	if (r < 0)
		return r;
	if (npool) /* the buffer left the pool (rpf_put took it from the top) */
		(*npool)--;
	return 1;
}

#define KICK_FD(w) ((w) & ((1 << RPF_KICK_SHIFT) - 1))
#define KICK_KIND(w) ((w) >> RPF_KICK_SHIFT)

int rpf_kick(int kick, uint32_t queue)
{
	if (kick < 0)
		return 0;
	int fd = KICK_FD(kick);
	switch (KICK_KIND(kick)) {
	case RPF_KICK_EVENTFD: {
		uint64_t one = 1;
		return write(fd, &one, 8) == 8;
	}
	case RPF_KICK_STREAM:
	case RPF_KICK_DGRAM: {
		/* SocketDoorbell.notify / DatagramSocketDoorbell.notify: the queue number as one byte; a full socket
		 * (EAGAIN) means kicks are pending already and the peer looks at every queue: done, as there. Any
		 * other failure (EPIPE, ECONNREFUSED: the peer is gone) is left to the runner's kick, which reports it
		 * (PeerLostError) and marks the doorbell lost. MSG_NOSIGNAL: no SIGPIPE (Python ignores it). */
		uint8_t b = (uint8_t)queue;
		if (send(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
			return 1;
		return errno == EAGAIN || errno == EWOULDBLOCK;
	}
	case RPF_KICK_MIRROR: { /* MirrorDoorbell's sender thread: it sends the changes, then the kick */
		uint64_t v = queue < 3 ? 1ull << (16 * (queue + 1)) : 1;
		return write(fd, &v, 8) == 8; /* a full counter: the runner's notify kicks */
	}
	default:
		return 0;
	}
}

/* Consume the wake-ups waiting on the drain word's descriptor: 1 if there was a kick, 0 if not (nothing there,
 * end of file, an error: the runner's doorbell looks, and reports the peer's end). */
static int drain(int kick)
{
	if (kick < 0)
		return 0;
	int fd = KICK_FD(kick);
	switch (KICK_KIND(kick)) {
	case RPF_KICK_EVENTFD: {
		uint64_t v;
		return read(fd, &v, 8) == 8;
	}
	case RPF_KICK_STREAM: { /* SocketDoorbell.wait's recv(4096): 0 is the peer's end, left for the runner */
		uint8_t buf[4096];
		return recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0;
	}
	case RPF_KICK_DGRAM: { /* DatagramSocketDoorbell._drain: every datagram waiting (an empty one ends it) */
		uint8_t buf[64];
		int got = 0;
		while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
			got = 1;
		return got;
	}
	case RPF_KICK_EPOLL: { /* VhostUserDoorbell._drain: every kick eventfd that is readable */
		struct epoll_event ev[8];
		int n = epoll_wait(fd, ev, 8, 0), got = 0;
		for (int i = 0; i < n; i++) {
			uint64_t v;
			if (read(ev[i].data.fd, &v, 8) == 8)
				got = 1;
		}
		return got;
	}
	default:
		return 0;
	}
}

/* The kick after a publish of `vq` that asked for one: done here when the kick word allows, else the runner's. */
int rpf_flush(struct rp_vq *tx, int kick_fd)
{
	int r = rp_drv_publish(tx);
	if (r < 0)
		return r;
	return kicked(r, tx, kick_fd, 0);
}

int rpf_take(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint64_t *addr)
{
	if (*npool == 0) {
		int r = rp_drv_reclaim(tx, pool, npool, cap);
		if (r < 0)
			return r;
		if (*npool == 0)
			return 0;
	}
	*addr = pool[--(*npool)];
	return 1;
}

int rpf_put(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint32_t buf_size, uint32_t src,
	    uint32_t dst, const uint8_t *data, uint32_t len)
{
	if (HDR + len > buf_size || len > 0xffffu)
		return RP_ERR_SPACE; /* the runner checked; a caller that did not gets an error, not an overrun */
	if (*npool == 0 || tx->num_free == 0) {
		int r = rp_drv_reclaim(tx, pool, npool, cap);
		if (r < 0)
			return r;
	}
	if (*npool == 0 || tx->num_free == 0)
		return 0;
	uint64_t addr = pool[*npool - 1];
	uint8_t *host = host_of(tx, addr, buf_size);
	if (!host)
		return RP_ERR_BAD_ADDR;
	memcpy(host + HDR, data, len);
	return post(tx, addr, host, src, dst, len, 0, npool);
}

int rpf_send(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint32_t buf_size, uint32_t src,
	     uint32_t dst, const uint8_t *data, uint32_t len, int kick_fd)
{
	int r = rpf_put(tx, pool, npool, cap, buf_size, src, dst, data, len);
	if (r <= 0)
		return r;
	r = rpf_flush(tx, kick_fd);
	return r < 0 ? r : 1 | r;
}

int rpf_send_many(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint32_t buf_size,
		  uint32_t src, uint32_t dst, const uint8_t *data, const uint32_t *lens, uint32_t n, int kick_fd)
{
	for (uint32_t i = 0; i < n; i++) /* all or nothing for sizes: none is added if one does not fit */
		if (HDR + lens[i] > buf_size || lens[i] > 0xffffu)
			return RP_ERR_SPACE;
	uint32_t k = 0, pos = 0;
	int r = 0;
	while (k < n) {
		r = rpf_put(tx, pool, npool, cap, buf_size, src, dst, data + pos, lens[k]);
		if (r <= 0)
			break;
		pos += lens[k++];
	}
	if (r < 0) /* a broken ring (found reclaiming): what was added is not published; the device fails */
		return r;
	if (k == 0)
		return 0;
	r = rpf_flush(tx, kick_fd);
	return r < 0 ? r : (int)k | r;
}

int rpf_send_buffer(struct rp_vq *tx, uint64_t addr, uint32_t buf_size, uint32_t src, uint32_t dst, uint32_t len,
		    uint32_t reserved, int kick_fd)
{
	if (HDR + len > buf_size || len > 0xffffu)
		return RP_ERR_SPACE;
	uint8_t *host = host_of(tx, addr, buf_size);
	if (!host)
		return RP_ERR_BAD_ADDR;
	int r = post(tx, addr, host, src, dst, len, reserved, 0);
	if (r < 0)
		return r;
	r = rpf_flush(tx, kick_fd);
	return r < 0 ? r : 1 | r;
}

int rpf_send_buffers(struct rp_vq *tx, const uint64_t *addrs, const uint32_t *lens, uint32_t n, uint32_t buf_size,
		     uint32_t src, uint32_t dst, int kick_fd)
{
	for (uint32_t i = 0; i < n; i++) /* all or nothing for sizes and addresses: none is added if one is bad */
		if (HDR + lens[i] > buf_size || lens[i] > 0xffffu)
			return RP_ERR_SPACE;
	for (uint32_t i = 0; i < n; i++)
		if (!host_of(tx, addrs[i], buf_size))
			return RP_ERR_BAD_ADDR;
	if (n == 0 || n > tx->num_free) /* a descriptor for each, or none is added (the caller says why) */
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		/* the buffers are the caller's (taken from the pool): the ring has a descriptor for each, as
		 * rp_drv_add checks; a broken ring fails the device, what was added is not published */
		int r = post(tx, addrs[i], rp_translate(tx->regions, tx->nregions, addrs[i], buf_size), src, dst, lens[i],
			     0, 0);
		if (r < 0)
			return r;
	}
	int r = rpf_flush(tx, kick_fd);
	return r < 0 ? r : (int)n | r;
}

int rpf_recv(struct rp_vq *rx, uint8_t *out, uint32_t out_cap, uint32_t *lens, uint32_t max, uint32_t buf_size,
	     int arm)
{
	if (arm < 0 && !rx->suppressed)
		rp_drv_disable_cb(rx);
	int n = rp_drv_recv_copy(rx, out, out_cap, lens, max, buf_size);
	if (n == 0 && arm > 0) {
		int waiting = rp_drv_enable_cb(rx);
		if (waiting < 0)
			return waiting;
		if (waiting)
			n = rp_drv_recv_copy(rx, out, out_cap, lens, max, buf_size);
	}
	if (n <= 0)
		return n;
	int r = rp_drv_publish(rx);
	if (r < 0) /* an entry after these broke the queue: deliver these, the next call reports it */
		return n;
	return n | (r ? RPF_NOTIFY : 0);
}

int rpf_drv_peek(struct rp_vq *rx, uint32_t buf_size, const uint8_t **msg, uint32_t *len)
{
	struct rp_used u;
	int r = rp_drv_peek(rx, &u);
	if (r <= 0)
		return r;
	const uint8_t *host = rp_translate(rx->regions, rx->nregions, u.token, buf_size);
	if (!host)
		return RPF_GENERAL; /* rp_drv_recv_copy reports it: the general path's */
	*msg = host;
	*len = u.len;
	return 1;
}

int rpf_drv_take(struct rp_vq *rx, uint32_t buf_size)
{
	struct rp_used u;
	int r = rp_drv_skip(rx, &u);
	if (r < 0)
		return r;
	struct rp_buf b = { u.token, buf_size, RP_DESC_F_WRITE, 0 };
	r = rp_drv_add(rx, &b, 1, u.token); /* cannot fail: the entry just freed one descriptor */
	return r < 0 ? r : 1;
}

int rpf_drv_hold(struct rp_vq *rx, uint64_t *token)
{
	struct rp_used u;
	int r = rp_drv_skip(rx, &u);
	if (r < 0)
		return r;
	*token = u.token;
	return 1;
}

int rpf_drv_give(struct rp_vq *rx, uint64_t token, uint32_t buf_size)
{
	struct rp_buf b = { token, buf_size, RP_DESC_F_WRITE, 0 };
	int r = rp_drv_add(rx, &b, 1, token);
	return r < 0 ? r : 1;
}

int rpf_drv_taken(struct rp_vq *rx, int n)
{
	int r = rp_drv_publish(rx);
	if (r < 0) /* as rpf_recv: these were taken, the next call reports the ring */
		return n;
	return n | (r ? RPF_NOTIFY : 0);
}

int rpf_arm(struct rp_vq *rx, int remote, int arm)
{
	if (arm < 0 && !rx->suppressed) {
		if (remote)
			rp_dev_disable_notify(rx);
		else
			rp_drv_disable_cb(rx);
	}
	if (arm > 0)
		return remote ? rp_dev_enable_notify(rx) : rp_drv_enable_cb(rx);
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The spin-wait hint between two looks at the ring (x86 PAUSE, Arm YIELD): the SMT sibling of a spinning CPU
 * gets its share of the core instead of losing it to our loads, and the loop leaves the memory-order machine
 * alone while the line it reads is not written; it delays seeing a message by one hint at most. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A spin that has found nothing for this long yields the CPU at each look at the clock (every 64 looks at the
 * ring): a peer sharing this CPU (two processes on one core, a loaded machine) then runs at once instead of after
 * the whole budget (spin_ns, which spin_adapt grows to 4x when the message comes just after the spin gave up, as
 * it always does when the peer could not run: 110-210 us a 16-byte round trip on one CPU in wait mode spin); on
 * a CPU of its own sched_yield returns at once. Under traffic the message comes before this (a round trip ~1 us). */
#define YIELD_AFTER_NS 3000

int rpf_wait(struct rp_vq *rx, int64_t spin_ns, int poll_fd, int kick_fd, int wake_fd, int64_t timeout_ns)
{
	int64_t start = now_ns();
	if (spin_ns > 0) {
		int64_t stop = start + (timeout_ns >= 0 && timeout_ns < spin_ns ? timeout_ns : spin_ns);
		int driver = rx->role == RP_ROLE_DRIVER;
		for (uint32_t i = 0;; i++) {
			/* < 0 (broken) counts too: the runner's next receive reports it */
			if (driver ? rp_drv_has_used(rx) : rp_dev_has_avail(rx))
				return RPF_READY;
			if ((i & 63) == 63) {
				int64_t now = now_ns();
				if (now >= stop)
					break;
				if (now - start >= YIELD_AFTER_NS)
					sched_yield();
			}
			cpu_relax();
		}
	}
	if (poll_fd < 0)
		return RPF_TIMEOUT;
	struct pollfd fds[2] = { { poll_fd, POLLIN, 0 }, { wake_fd, POLLIN, 0 } };
	struct timespec ts, *tsp = 0;
	if (timeout_ns >= 0) {
		int64_t left = timeout_ns - (now_ns() - start);
		if (left < 0)
			left = 0;
		ts.tv_sec = (time_t)(left / 1000000000);
		ts.tv_nsec = (long)(left % 1000000000);
		tsp = &ts;
	}
	int r = ppoll(fds, wake_fd >= 0 ? 2 : 1, tsp, 0);
	if (r < 0)
		return errno == EINTR ? RPF_EINTR : RPF_DOORBELL;
	if (r == 0)
		return RPF_TIMEOUT;
	if (wake_fd >= 0 && fds[1].revents) {
		uint64_t v;
		if (read(wake_fd, &v, 8) < 0) {
			/* already consumed by another thread */
		}
		return RPF_WOKEN;
	}
	if (drain(kick_fd))
		return RPF_KICKED;
	return RPF_DOORBELL;
}

const struct rpf_api *rpf_api(void)
{
	static const struct rpf_api api = {
		sizeof(struct rpf_api), RP_VQ_LAYOUT, rpf_send, rpf_put, rpf_flush, rpf_take, rpf_send_buffer, rpf_recv,
		rpf_dev_send, rpf_dev_put, rpf_dev_flush, rpf_dev_recv, rpf_wait, rpf_kick, rpf_send_buffers,
		rpf_dev_peek, rpf_dev_take, rpf_dev_taken, rpf_dev_prefetch, rpf_drv_peek, rpf_drv_take, rpf_drv_taken,
		rpf_dev_hold, rpf_dev_give, rpf_drv_hold, rpf_drv_give, rpf_dev_lend, rpf_dev_send_buffers,
		rpf_arm,
	};
	return &api;
}
