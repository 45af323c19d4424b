/*
 * The C path of one rpmsg device, as the endpoints' C methods use it: a plain struct and functions, no Python.
 *
 * This is the one boundary between the CPython methods (endpoint_send.c, endpoint_recv.c) and the rings. Each
 * function mirrors one step of the Python path in rpmsg/device.py over rpmsg/fastpath.py (named at each one),
 * and returns what that step's C call returns there: a count, or'ed with RPF_NOTIFY when the caller must kick;
 * 0 (no buffer, nothing waiting); RPF_GENERAL (the general path's case); < 0 a broken ring (RP_ERR_*). The
 * ring work itself is rpmsg._fastpath_cffi's (rpmsg/csrc/fastpath.c over virtio/csrc/vring.c), called through
 * its table (struct rpf_api): one build of both serves the cffi path and these methods.
 *
 * Role: the host (virtio driver) receives on vring 0 and sends on vring 1 with a pool of send buffers; the
 * remote (virtio device) receives on vring 1 and sends into the host's buffers posted on vring 0.
 */
#ifndef RPROC_RPMSG_ENDPOINT_CPATH_H
#define RPROC_RPMSG_ENDPOINT_CPATH_H

#include <stdint.h>

#include "fastpath.h"

#define RPC_HDR 16u /* struct rpmsg_hdr: src, dst, reserved, len (u16), flags (u16) */

struct rpc_path {
	const struct rpf_api *rpf; /* rpmsg._fastpath_cffi's entry points; 0: not attached */
	int remote;                /* the remote role: rpf_dev_*; else the host's */
	int block;                 /* wait mode "block": a receive turns the peer's kicks off while it looks */
	int kicks_on;              /* whether the peer was asked to kick us for new messages */
	struct rp_vq *rx, *tx;     /* the rings we receive from and send to */
	uint64_t *pool;            /* host: the free send buffers (a stack in the virtio module's arrays) */
	uint32_t *npool;
	uint32_t pool_cap, tx_size, rx_size, rx_count, max_payload;
	uint8_t *out; /* the batch buffer: messages copied out back to back, their lengths in lens */
	uint32_t *lens;
	uint32_t out_cap;
	int kick_fd; /* how to kick the peer for the send ring: a kick word (fastpath.h: an eventfd, socket bytes, datagrams) */
	int rx_kick_fd; /* for the receive ring (buffers given back): the same word but for a doorbell with a
			 * descriptor per queue (vhost-user's call eventfds) */
};

/* The queue a send (a receive) kicks when the C write could not: _FastPath.send_queue (recv_queue). */
static inline int rpc_send_queue(const struct rpc_path *p) { return p->remote ? 0 : 1; }
static inline int rpc_recv_queue(const struct rpc_path *p) { return p->remote ? 1 : 0; }

/* RpmsgDevice.try_send_c -> HostFastPath.send / RemoteFastPath.send. */
int rpc_try_send(struct rpc_path *p, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len);

/* RpmsgDevice.send_many's C branch -> HostFastPath.send_many / RemoteFastPath.send_many, in two steps so the
 * caller can stop at the first message that does not go: put (take, header, payload, add) ... then flush
 * (one publish, at most one kick). */
int rpc_try_put(struct rpc_path *p, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len);
int rpc_flush(struct rpc_path *p);

/* RpmsgDevice.get_buffer's C branch -> HostFastPath.take: a free send buffer's address (host). rpc_untake puts
 * it back (the caller could not make its TxBuffer). */
int rpc_try_take(struct rpc_path *p, uint64_t *addr);
void rpc_untake(struct rpc_path *p, uint64_t addr);

/* RemoteCore.get_tx_buffer in C (remote): the host's next posted receive buffer held out of vring 0
 * (rpf_dev_lend: 1 and its head, address, place in memory and length; 0 none; RPF_GENERAL a shape the general
 * path takes; < 0 a broken ring). */
int rpc_lend(struct rpc_path *p, uint16_t *head, uint64_t *addr, uint8_t **host, uint32_t *len);

/* RpmsgDevice.send_buffer's C branch -> HostFastPath.send_buffer (header, add, publish, kick); the remote's
 * (RemoteCore.send_buffer): header, the lent chain `slot` pushed, publish, kick. */
int rpc_send_buffer(struct rpc_path *p, uint64_t addr, uint16_t slot, uint32_t src, uint32_t dst, uint32_t len);

/* RpmsgDevice.send_buffers's C branch -> HostFastPath.send_buffers (headers, adds, one publish, at most one
 * kick): n | RPF_NOTIFY; 0 when the ring has fewer than n descriptors free (nothing added: the general path
 * says so). The remote's: RemoteCore.send_buffers (its lent chains `slots`). */
int rpc_send_buffers(struct rpc_path *p, const uint64_t *addrs, const uint16_t *slots, const uint32_t *lens,
		     uint32_t n, uint32_t src, uint32_t dst);

/* One pass of RpmsgDevice.try_recv_c's loop -> HostFastPath.recv / RemoteFastPath.recv (at most `max`
 * messages; 0: a whole batch buffer), then, when it armed, `self._kicks_on = fast.kicks_on()`. */
int rpc_try_recv(struct rpc_path *p, uint32_t max, int arm);

/* `self._kick(fast.recv_queue)` after a receive that asked for it, when C can: the host kicks through its kick word
 * (rpf_recv does not), the remote's rpf_dev_recv already tried. 1 kicked; 0 the device must (kick_python). */
int rpc_recv_kicked(struct rpc_path *p);

/* _FastPath.single: the batch's only message, if it is a well-formed one for `addr`: 1 and its source,
 * payload and length; 0 otherwise (the general parser then delivers it, or drops it with the reason). */
int rpc_single(const struct rpc_path *p, uint32_t addr, uint32_t *src, const uint8_t **payload, uint32_t *len);

/* _FastPath.single for each of the batch's `n` messages: 1 when all of them are well-formed ones for `addr`
 * (recvfrom_many then takes them all in C), 0 when the device's parser must deliver the batch. */
int rpc_batch_is_for(const struct rpc_path *p, int n, uint32_t addr);

/* The i-th message of a batch rpc_batch_is_for accepted; *pos walks the batch buffer (start at 0). */
const uint8_t *rpc_batch_next(const struct rpc_path *p, int i, uint32_t *pos, uint32_t *src, uint32_t *len);

/* The copy straight out of the ring (recvfrom_many, and a receive beside a zero-copy endpoint): the next message in
 * place, when it is a well-formed one for `addr` (rpc_batch_is_for's rule) no longer than the batch buffer (the
 * remote: in one readable descriptor; the host: in its receive buffer, used.len bytes): 1, its source, payload
 * and length, and the buffer's size for rpc_take_next; 0 for anything else (none waiting, another endpoint's,
 * malformed, another shape, a broken ring: rpc_try_recv takes it and says). The payload is the peer's memory: it
 * may change under the reader (a hostile peer), never its bounds. */
int rpc_peek_for(const struct rpc_path *p, uint32_t addr, uint32_t *src, const uint8_t **payload, uint32_t *len,
		 uint32_t *size);

/* The kicks of the receive ring without taking anything (rpf_arm: the zero-copy lend's wait, as rpc_try_recv's
 * `arm`), then `kicks_on` as the ring says: 1 when arming found entries waiting, 0, or < 0 a broken ring. */
int rpc_arm(struct rpc_path *p, int arm);

/* Whether anything waits in the receive ring (a message of any kind; a broken ring counts: the general path
 * says so). */
int rpc_waiting(const struct rpc_path *p);

/* Remote: ask the CPU to fetch the message `ahead` after the next one (what the host wrote last is in its cache,
 * not ours): its copy, a few messages later, then finds it here. Nothing when fewer wait, nor for the host. */
void rpc_prefetch(const struct rpc_path *p, uint16_t ahead);

/* Take the message rpc_peek_for gave (its buffer back to the host, or posted again by it); after a run of them,
 * rpc_taken: one publish, at most one kick, `n` | RPF_NOTIFY when the caller must kick (rpc_try_recv's result).
 * < 0: a broken ring. */
int rpc_take_next(struct rpc_path *p, uint32_t size);
int rpc_taken(struct rpc_path *p, int n);

/* The zero-copy receive (RemoteCore.poll / HostCore.poll with `zero_copy`: the message lent in its buffer until
 * Message.release): rpc_hold takes the message rpc_peek_for gave without giving its buffer back; *token is what
 * rpc_give needs to give it back (the remote: the chain's head; the host: the buffer's address), `size` of
 * rpc_peek_for its used.len (the remote). The host then publishes (rpc_taken: its used event may move), as
 * HostCore.poll does after every batch; rpc_give is followed by rpc_taken(p, 1): one publish, the kick it asks
 * for. < 0: a broken ring. */
int rpc_hold(struct rpc_path *p, uint64_t *token);
int rpc_give(struct rpc_path *p, uint64_t token, uint32_t size);

/* Waiter.block's wait, in C: sleep on the doorbell (poll_fd, its kick read from kick_fd) and the device's
 * wake descriptor up to timeout_ns (< 0: no limit): RPF_KICKED, RPF_WOKEN, RPF_DOORBELL, RPF_EINTR or
 * RPF_TIMEOUT. */
int rpc_sleep(const struct rpc_path *p, int poll_fd, int kick_fd, int wake_fd, long long timeout_ns);

/* Waiter.wait's spin (modes spin and busy), in C: spin on the receive ring up to spin_ns: RPF_READY when it has
 * entries, RPF_TIMEOUT. */
int rpc_spin(const struct rpc_path *p, long long spin_ns);

#endif /* RPROC_RPMSG_ENDPOINT_CPATH_H */
