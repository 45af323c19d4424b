/* The rpmsg host's per-message work in one C call each; see fastpath.c. */
#ifndef RPROC_RPMSG_FASTPATH_H
#define RPROC_RPMSG_FASTPATH_H

#include <stdint.h>
#include "vring.h"

#define RPF_NOTIFY 0x10000 /* or-ed into a count: the peer asked to be kicked for this queue */
/* RPF_MORE, or-ed into a remote's count: more messages wait than the batch buffer held; a remote's receive takes
 * every waiting message (RemoteCore.poll), so the general path takes the rest at once */
#define RPF_MORE 0x20000
#define RPF_MSG_MAX 65551 /* the largest rpmsg message: a 16-byte header and 65,535 bytes of payload */
#define RPF_GENERAL -1000   /* not for the C path (too large, too small a host buffer): the general path's turn */
#define RPF_DEV_MAX 65535   /* largest payload the remote's C send takes (the header's u16 len) */

/* A kick word (every `kick_fd` argument below): the descriptor in its low 24 bits, how to kick (or, for
 * rpf_wait, how to drain a wake-up) in bits 24..27; < 0: no descriptor, the runner kicks. An eventfd's word is
 * its descriptor. The kinds are the doorbells' of transports/doorbell.py (CDoorbell, KICK_*):
 *   EVENTFD  write (kick) / read (drain) the 8-byte counter
 *   STREAM   one byte, the queue number, on a stream socket (OpenAMP's Linux layout, QEMU's chardev); the
 *            drain reads what is there, up to 4096 bytes; end of file: the runner looks
 *   DGRAM    one one-byte datagram, the queue number; the drain reads every datagram waiting
 *   EPOLL    drain only: an epoll descriptor holding nothing but kick eventfds, each registered with its own
 *            number in data.fd (as Python's select.epoll does); the drain reads every eventfd it reports ready
 *            (vhost-user's one kick eventfd per queue). As a kick: none (the runner kicks)
 *   MIRROR   kick only: an eventfd read by the doorbell's own thread, which sends what this side changed, then
 *            the kicks (the UART mirror, transports/mirror.py): kicking queue q adds 1 << 16 * (q + 1) to its
 *            counter (queues 0..2; any other adds 1, a publish without a kick) */
#define RPF_KICK_EVENTFD 0
#define RPF_KICK_STREAM 1
#define RPF_KICK_DGRAM 2
#define RPF_KICK_EPOLL 3
#define RPF_KICK_MIRROR 4
#define RPF_KICK_SHIFT 24

int rpf_send(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint32_t buf_size, uint32_t src,
	     uint32_t dst, const uint8_t *data, uint32_t len, int kick_fd);
int rpf_put(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint32_t buf_size, uint32_t src,
	    uint32_t dst, const uint8_t *data, uint32_t len);
int rpf_flush(struct rp_vq *tx, int kick_fd);
int rpf_send_many(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint32_t buf_size,
		  uint32_t src, uint32_t dst, const uint8_t *data, const uint32_t *lens, uint32_t n, int kick_fd);
int rpf_take(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint64_t *addr);
int rpf_send_buffer(struct rp_vq *tx, uint64_t addr, uint32_t buf_size, uint32_t src, uint32_t dst, uint32_t len,
		    uint32_t reserved, int kick_fd);
int rpf_send_buffers(struct rp_vq *tx, const uint64_t *addrs, const uint32_t *lens, uint32_t n, uint32_t buf_size,
		     uint32_t src, uint32_t dst, int kick_fd);
int rpf_recv(struct rp_vq *rx, uint8_t *out, uint32_t out_cap, uint32_t *lens, uint32_t max, uint32_t buf_size,
	     int arm);
int rpf_dev_send(struct rp_vq *to_host, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len, int kick_fd);
int rpf_dev_put(struct rp_vq *to_host, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len);
int rpf_dev_flush(struct rp_vq *to_host, int kick_fd);
int rpf_dev_send_many(struct rp_vq *to_host, uint32_t src, uint32_t dst, const uint8_t *data, const uint32_t *lens,
		      uint32_t n, int kick_fd);
int rpf_dev_recv(struct rp_vq *from_host, uint8_t *out, uint32_t out_cap, uint32_t *lens, uint32_t max, int arm,
		 int kick_fd);
/* The remote's receive with one copy, straight out of the ring into the caller's object (recvfrom_many in C):
 * rpf_dev_peek gives the next message the host sent in place: 1 and its bytes, when it is a chain of one
 * readable descriptor (as Linux, OpenAMP and rproc's hosts send); 0 none waits; RPF_GENERAL another shape
 * (rpf_dev_recv takes it); < 0 a broken ring (`ahead` > 0: the message that many after the next, looked at
 * early to prefetch it; 0 when fewer wait). It stays the host's until rpf_dev_take takes it and gives the
 * buffer back (used.len its length, as rpf_dev_recv); rpf_dev_taken after a run of them: one publish, at
 * most one kick, `n` | RPF_NOTIFY as rpf_dev_recv returns. */
int rpf_dev_peek(struct rp_vq *from_host, uint16_t ahead, const uint8_t **msg, uint32_t *len);
/* Fetch the message `ahead` after the next into this CPU's cache (the host wrote it on its own): its copy, a few
 * messages later, then finds it there. Nothing when fewer wait. */
void rpf_dev_prefetch(struct rp_vq *from_host, uint16_t ahead);
int rpf_dev_take(struct rp_vq *from_host, uint32_t len);
int rpf_dev_taken(struct rp_vq *from_host, int n, int kick_fd);
/* The host's receive with one copy, the same way: rpf_drv_peek gives the next message the remote wrote, in place in
 * its receive buffer (`buf_size` bytes at the used entry's token): 1 and its bytes (used.len of them); 0 none
 * waits; RPF_GENERAL a token that is no buffer (rpf_recv reports it); < 0 a broken ring. rpf_drv_take takes it
 * and posts the buffer again (as rpf_recv); rpf_drv_taken after a run: one publish, `n` | RPF_NOTIFY when the
 * remote wants to hear of the buffers (the caller kicks, as after rpf_recv). */
int rpf_drv_peek(struct rp_vq *rx, uint32_t buf_size, const uint8_t **msg, uint32_t *len);
int rpf_drv_take(struct rp_vq *rx, uint32_t buf_size);
int rpf_drv_taken(struct rp_vq *rx, int n);
/* A zero-copy receive lends the message in place (rpmsg.core.Message holding its buffer): rpf_dev_hold /
 * rpf_drv_hold take the message rpf_dev_peek / rpf_drv_peek gave without giving its buffer back (the remote: the
 * chain's head, >= 0; the host: 1 and the buffer's address in *token); rpf_dev_give / rpf_drv_give give it back
 * when the message is released (the remote: used.len `len`; the host: posted again, `buf_size` bytes), then
 * rpf_dev_taken / rpf_drv_taken publish it. < 0: a broken ring. */
int rpf_dev_hold(struct rp_vq *from_host);
int rpf_dev_give(struct rp_vq *from_host, uint16_t head, uint32_t len);
int rpf_drv_hold(struct rp_vq *rx, uint64_t *token);
int rpf_drv_give(struct rp_vq *rx, uint64_t token, uint32_t buf_size);
/* The remote's zero-copy send (RemoteCore.get_tx_buffer / send_buffers): rpf_dev_lend holds the host's next
 * posted receive buffer out of vring 0 when it is one device-writable descriptor with room for the header: 1, its
 * head, device address, place in memory and length; 0 none posted; RPF_GENERAL another shape (a chain, a buffer
 * flagged readable or smaller than the header: the general path's, which returns, keeps or lends it); < 0 a
 * broken ring. rpf_dev_send_buffers sends `n` lent buffers (header at each address, used.len 16 + its length),
 * one publish, at most one kick: n | RPF_NOTIFY as rpf_dev_send; none pushed when a length exceeds the header's
 * u16 or a header lies outside the memory (RP_ERR_SPACE, RP_ERR_BAD_ADDR: the caller checked, this bounds it). */
int rpf_dev_lend(struct rp_vq *to_host, uint16_t *head, uint64_t *addr, uint8_t **host, uint32_t *len);
int rpf_dev_send_buffers(struct rp_vq *to_host, const uint16_t *heads, const uint64_t *addrs, const uint32_t *lens,
			 uint32_t n, uint32_t src, uint32_t dst, int kick_fd);
/* The receive ring's kicks, for a receive that looks without taking (the zero-copy lend's wait): `arm` < 0 tells
 * the peer not to kick us (unless it is told already), > 0 asks it to and returns 1 when entries wait already (the
 * look then finds them), 0 leaves them; `remote`: the ring is our device side's (vring 1), else our driver side's.
 * < 0: a broken ring. rpf_recv and rpf_dev_recv do the same around their take. */
int rpf_arm(struct rp_vq *rx, int remote, int arm);
int rpf_wait(struct rp_vq *rx, int64_t spin_ns, int poll_fd, int kick_fd, int wake_fd, int64_t timeout_ns);
/* Kick `queue` through the kick word: 1 done (or dropped because kicks are pending already: a full socket, as
 * the Python doorbells do), 0 not (a dead peer, no descriptor): the runner kicks and reports it its way. */
int rpf_kick(int kick, uint32_t queue);

#define RPF_TIMEOUT 0  /* nothing happened within the time given */
#define RPF_READY 1    /* the used ring has entries (seen while spinning) */
#define RPF_KICKED 2   /* the peer kicked; the kick is consumed */
#define RPF_DOORBELL 3 /* the doorbell descriptor is readable but held no kick: the runner looks (the peer's end?) */
#define RPF_WOKEN 4    /* another thread woke us through the wake descriptor (consumed) */
#define RPF_EINTR 5    /* a signal: the runner returns to Python so its handlers run */

/* The entry points above as one table: rpmsg._endpoint_c calls this module's copy of fastpath.c and vring.c
 * through it (one build of both for rpmsg; rpmsg/fastpath.py hands the table's address to Gate.attach).
 * vq_layout is rp_vq_layout() of this build: the extension refuses a table whose layout is not its own. */
struct rpf_api {
	uint32_t size; /* sizeof(struct rpf_api) */
	uint32_t vq_layout;
	int (*send)(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint32_t buf_size, uint32_t src,
		    uint32_t dst, const uint8_t *data, uint32_t len, int kick_fd);
	int (*put)(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint32_t buf_size, uint32_t src,
		   uint32_t dst, const uint8_t *data, uint32_t len);
	int (*flush)(struct rp_vq *tx, int kick_fd);
	int (*take)(struct rp_vq *tx, uint64_t *pool, uint32_t *npool, uint32_t cap, uint64_t *addr);
	int (*send_buffer)(struct rp_vq *tx, uint64_t addr, uint32_t buf_size, uint32_t src, uint32_t dst, uint32_t len,
			   uint32_t reserved, int kick_fd);
	int (*recv)(struct rp_vq *rx, uint8_t *out, uint32_t out_cap, uint32_t *lens, uint32_t max, uint32_t buf_size,
		    int arm);
	int (*dev_send)(struct rp_vq *to_host, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len,
			int kick_fd);
	int (*dev_put)(struct rp_vq *to_host, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len);
	int (*dev_flush)(struct rp_vq *to_host, int kick_fd);
	int (*dev_recv)(struct rp_vq *from_host, uint8_t *out, uint32_t out_cap, uint32_t *lens, uint32_t max, int arm,
			int kick_fd);
	int (*wait)(struct rp_vq *rx, int64_t spin_ns, int poll_fd, int kick_fd, int wake_fd, int64_t timeout_ns);
	int (*kick)(int kick, uint32_t queue);
	int (*send_buffers)(struct rp_vq *tx, const uint64_t *addrs, const uint32_t *lens, uint32_t n,
			    uint32_t buf_size, uint32_t src, uint32_t dst, int kick_fd);
	int (*dev_peek)(struct rp_vq *from_host, uint16_t ahead, const uint8_t **msg, uint32_t *len);
	int (*dev_take)(struct rp_vq *from_host, uint32_t len);
	int (*dev_taken)(struct rp_vq *from_host, int n, int kick_fd);
	void (*dev_prefetch)(struct rp_vq *from_host, uint16_t ahead);
	int (*drv_peek)(struct rp_vq *rx, uint32_t buf_size, const uint8_t **msg, uint32_t *len);
	int (*drv_take)(struct rp_vq *rx, uint32_t buf_size);
	int (*drv_taken)(struct rp_vq *rx, int n);
	int (*dev_hold)(struct rp_vq *from_host);
	int (*dev_give)(struct rp_vq *from_host, uint16_t head, uint32_t len);
	int (*drv_hold)(struct rp_vq *rx, uint64_t *token);
	int (*drv_give)(struct rp_vq *rx, uint64_t token, uint32_t buf_size);
	int (*dev_lend)(struct rp_vq *to_host, uint16_t *head, uint64_t *addr, uint8_t **host, uint32_t *len);
	int (*dev_send_buffers)(struct rp_vq *to_host, const uint16_t *heads, const uint64_t *addrs,
				const uint32_t *lens, uint32_t n, uint32_t src, uint32_t dst, int kick_fd);
	int (*arm)(struct rp_vq *rx, int remote, int arm);
};
const struct rpf_api *rpf_api(void);

#endif
