/*
 * The rpmsg remote's (virtio device's) per-message work in one C call each, for rpmsg/fastpath.py's
 * RemoteFastPath and the endpoints' C methods: the twins of rpmsg/remote_core.py's steps, as fastpath.c holds the
 * host's (see the top of fastpath.c):
 *
 *   rpf_dev_put / rpf_dev_flush / rpf_dev_send / rpf_dev_send_many  a message into the host's next posted
 *             receive buffer (vring 0), header and payload in place, then one publish and the kick
 *   rpf_dev_recv  copy out what the host sent on vring 1 and give its buffers back
 *   rpf_dev_peek / rpf_dev_take / rpf_dev_taken / rpf_dev_prefetch  the same one message at a time, in place
 *   rpf_dev_hold / rpf_dev_give  a message lent (zero-copy receive) and given back
 *   rpf_dev_lend / rpf_dev_send_buffers  the zero-copy send: the host's buffer lent, then sent
 */
#include "fastpath.h"
#include "fastpath_common.h"

#include <string.h>

/* rp_dev_peek of a chain of one descriptor: its result, or RPF_GENERAL for a chain of more (a question answered,
 * not an error to show: the ring's error fields are left as they were). */
static int peek_one(struct rp_vq *vq, uint16_t ahead, struct rp_desc *d, uint16_t *head)
{
	int32_t err = vq->err;
	uint32_t where = vq->err_where;
	uint64_t value = vq->err_value;
	int r = rp_dev_peek(vq, ahead, d, 1, head);
	if (r == RP_ERR_ARG) {
		vq->err = err;
		vq->err_where = where;
		vq->err_value = value;
		return RPF_GENERAL;
	}
	return r;
}

/* A chain's message goes through a copy on the stack (rp_dev_send_copy fills its writable descriptors in order):
 * up to this much payload; a larger one for a chain is the general path's. */
#define DEV_STACK 4080

int rpf_dev_put(struct rp_vq *to_host, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len)
{
	if (len > RPF_DEV_MAX)
		return RPF_GENERAL;
	/* The host's next buffer, looked at in place: one device-writable descriptor with room (what Linux and
	 * OpenAMP post) takes header and payload straight, then is taken and given back; any other shape goes
	 * through rp_dev_send_copy below (or the general path), which says what is wrong with it. */
	struct rp_desc d;
	uint16_t head;
	int r = peek_one(to_host, 0, &d, &head);
	if (r != RPF_GENERAL) { /* (a chain: rp_dev_send_copy below) */
		if (r <= 0)
			return r; /* 0: no host buffer; < 0 a broken ring */
		if ((d.flags & RP_DESC_F_WRITE) && d.len >= HDR + len) {
			/* taken first: a buffer the host placed over its own avail ring would move it under us */
			int taken = rp_dev_skip(to_host);
			if (taken < 0)
				return taken;
			put_header(d.host, src, dst, 0, len);
			memcpy(d.host + HDR, data, len);
			r = rp_dev_push(to_host, (uint16_t)taken, HDR + len);
			return r < 0 ? r : 1;
		}
	}
	uint8_t msg[HDR + DEV_STACK];
	if (len > DEV_STACK)
		return RPF_GENERAL;
	put_header(msg, src, dst, 0, len);
	memcpy(msg + HDR, data, len);
	uint32_t total = HDR + len;
	int n = rp_dev_send_copy(to_host, msg, &total, 1);
	if (n == RP_ERR_SPACE)
		return RPF_GENERAL; /* the host's buffer is too small; nothing taken: the general path names the limit */
	return n;
}

int rpf_dev_flush(struct rp_vq *to_host, int kick_fd)
{
	int r = rp_dev_publish(to_host);
	if (r < 0)
		return r;
	return kicked(r, to_host, kick_fd, 0);
}

int rpf_dev_send(struct rp_vq *to_host, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len, int kick_fd)
{
	int n = rpf_dev_put(to_host, src, dst, data, len);
	if (n <= 0 || n == RPF_GENERAL)
		return n;
	int r = rpf_dev_flush(to_host, kick_fd);
	return r < 0 ? r : 1 | r;
}

int rpf_dev_send_many(struct rp_vq *to_host, uint32_t src, uint32_t dst, const uint8_t *data, const uint32_t *lens,
		      uint32_t n, int kick_fd)
{
	uint32_t k = 0, pos = 0;
	int r = 0;
	while (k < n) {
		r = rpf_dev_put(to_host, src, dst, data + pos, lens[k]);
		if (r <= 0 || r == RPF_GENERAL)
			break;
		pos += lens[k++];
	}
	if (r < 0 && r != RPF_GENERAL) /* a broken ring: the device fails */
		return r;
	if (k == 0)
		return r; /* 0: no host buffer; RPF_GENERAL: the first one is the general path's */
	r = rpf_dev_flush(to_host, kick_fd);
	return r < 0 ? r : (int)k | r;
}

int rpf_dev_recv(struct rp_vq *from_host, uint8_t *out, uint32_t out_cap, uint32_t *lens, uint32_t max, int arm,
		 int kick_fd)
{
	if (arm < 0 && !from_host->suppressed)
		rp_dev_disable_notify(from_host);
	int n = rp_dev_recv_copy(from_host, out, out_cap, lens, max);
	if (n == 0 && arm > 0) {
		int waiting = rp_dev_enable_notify(from_host);
		if (waiting < 0)
			return waiting;
		if (waiting)
			n = rp_dev_recv_copy(from_host, out, out_cap, lens, max);
	}
	if (n == RP_ERR_SPACE)
		return RPF_GENERAL; /* one message larger than the batch buffer: the general path takes it */
	if (n <= 0)
		return n;
	/* The host's buffers go back now; a Linux sender blocked on a full ring waits for exactly this kick. */
	int r = rp_dev_publish(from_host);
	if (r < 0) /* as in rpf_recv: deliver what was taken before the bad entry */
		return n;
	int res = kicked(r, from_host, kick_fd, n);
	if (res > 0 && (uint32_t)n < max && rp_dev_has_avail(from_host) > 0) {
		/* Stopped by the batch buffer's size (the next message did not fit what was left), not by an empty
		 * ring? A message is at most RPF_MSG_MAX bytes: with that much left, the stop was the ring's (the
		 * host posted more since), and the next call takes them. */
		uint64_t used = 0;
		for (int i = 0; i < n; i++)
			used += lens[i];
		if (out_cap - used < RPF_MSG_MAX)
			res |= RPF_MORE;
	}
	return res;
}

int rpf_dev_peek(struct rp_vq *from_host, uint16_t ahead, const uint8_t **msg, uint32_t *len)
{
	struct rp_desc d;
	uint16_t head;
	int r = peek_one(from_host, ahead, &d, &head);
	if (r <= 0 || r == RPF_GENERAL)
		return r;
	if (d.flags & RP_DESC_F_WRITE)
		return RPF_GENERAL; /* no message in it: rpf_dev_recv's reading of it is the rule */
	*msg = d.host;
	*len = d.len;
	return 1;
}

void rpf_dev_prefetch(struct rp_vq *from_host, uint16_t ahead)
{
	rp_dev_prefetch(from_host, (uint16_t)(2 * ahead), 0); /* a later one's descriptor, for its own turn */
	rp_dev_prefetch(from_host, ahead, 2048);              /* the head of a big one: the copy streams the rest */
}

int rpf_dev_take(struct rp_vq *from_host, uint32_t len)
{
	int head = rp_dev_skip(from_host);
	if (head < 0)
		return head;
	return rp_dev_push(from_host, (uint16_t)head, len);
}

int rpf_dev_hold(struct rp_vq *from_host)
{
	return rp_dev_skip(from_host);
}

int rpf_dev_give(struct rp_vq *from_host, uint16_t head, uint32_t len)
{
	int r = rp_dev_push(from_host, head, len);
	return r < 0 ? r : 1;
}

int rpf_dev_lend(struct rp_vq *to_host, uint16_t *head, uint64_t *addr, uint8_t **host, uint32_t *len)
{
	struct rp_desc d;
	uint16_t h;
	int r = peek_one(to_host, 0, &d, &h); /* a chain: the general path's */
	if (r <= 0 || r == RPF_GENERAL)
		return r;
	if (!(d.flags & RP_DESC_F_WRITE) || d.len < HDR)
		return RPF_GENERAL; /* the general path returns it, or keeps it and says it is too small */
	int taken = rp_dev_skip(to_host);
	if (taken < 0)
		return taken;
	*head = (uint16_t)taken;
	*addr = d.addr;
	*host = d.host;
	*len = d.len;
	return 1;
}

/* Header and push of a lent buffer (not published). The header's place is looked up again: the caller's
 * address, bounded by the memory the ring translates. */
static int dev_post(struct rp_vq *to_host, uint16_t head, uint64_t addr, uint32_t src, uint32_t dst, uint32_t len)
{
	if (len > 0xffffu)
		return RP_ERR_SPACE;
	uint8_t *host = host_of(to_host, addr, HDR + len);
	if (!host)
		return RP_ERR_BAD_ADDR;
	put_header(host, src, dst, 0, len);
	return rp_dev_push(to_host, head, HDR + len);
}

int rpf_dev_send_buffers(struct rp_vq *to_host, const uint16_t *heads, const uint64_t *addrs, const uint32_t *lens,
			 uint32_t n, uint32_t src, uint32_t dst, int kick_fd)
{
	for (uint32_t i = 0; i < n; i++) /* all or nothing for sizes and addresses: none is pushed if one is bad */
		if (lens[i] > 0xffffu || !host_of(to_host, addrs[i], HDR + lens[i]))
			return lens[i] > 0xffffu ? RP_ERR_SPACE : RP_ERR_BAD_ADDR;
	for (uint32_t i = 0; i < n; i++) {
		int r = dev_post(to_host, heads[i], addrs[i], src, dst, lens[i]);
		if (r < 0)
			return r;
	}
	if (n == 0)
		return 0;
	int r = rpf_dev_flush(to_host, kick_fd);
	return r < 0 ? r : (int)n | r;
}

int rpf_dev_taken(struct rp_vq *from_host, int n, int kick_fd)
{
	int r = rp_dev_publish(from_host);
	if (r < 0) /* as in rpf_dev_recv: deliver what was taken */
		return n;
	return kicked(r, from_host, kick_fd, n);
}

