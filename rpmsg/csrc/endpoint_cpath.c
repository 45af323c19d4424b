/* The C path of one rpmsg device for the endpoints' C methods: see endpoint_cpath.h. No Python here. */
#include "endpoint_cpath.h"

#include <string.h>

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int rpc_try_send(struct rpc_path *p, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len)
{
	if (p->remote)
		return p->rpf->dev_send(p->tx, src, dst, data, len, p->kick_fd);
	return p->rpf->send(p->tx, p->pool, p->npool, p->pool_cap, p->tx_size, src, dst, data, len, p->kick_fd);
}

int rpc_try_put(struct rpc_path *p, uint32_t src, uint32_t dst, const uint8_t *data, uint32_t len)
{
	if (p->remote)
		return p->rpf->dev_put(p->tx, src, dst, data, len);
	return p->rpf->put(p->tx, p->pool, p->npool, p->pool_cap, p->tx_size, src, dst, data, len);
}

int rpc_flush(struct rpc_path *p)
{
	return p->remote ? p->rpf->dev_flush(p->tx, p->kick_fd) : p->rpf->flush(p->tx, p->kick_fd);
}

int rpc_try_take(struct rpc_path *p, uint64_t *addr)
{
	return p->rpf->take(p->tx, p->pool, p->npool, p->pool_cap, addr);
}

void rpc_untake(struct rpc_path *p, uint64_t addr)
{
	p->pool[(*p->npool)++] = addr; /* the pop of rpc_try_take undone: the slot it left is free */
}

int rpc_lend(struct rpc_path *p, uint16_t *head, uint64_t *addr, uint8_t **host, uint32_t *len)
{
	return p->rpf->dev_lend(p->tx, head, addr, host, len);
}

int rpc_send_buffer(struct rpc_path *p, uint64_t addr, uint16_t slot, uint32_t src, uint32_t dst, uint32_t len)
{
	if (p->remote)
		return p->rpf->dev_send_buffers(p->tx, &slot, &addr, &len, 1, src, dst, p->kick_fd);
	return p->rpf->send_buffer(p->tx, addr, p->tx_size, src, dst, len, 0, p->kick_fd);
}

int rpc_send_buffers(struct rpc_path *p, const uint64_t *addrs, const uint16_t *slots, const uint32_t *lens,
		     uint32_t n, uint32_t src, uint32_t dst)
{
	if (p->remote)
		return p->rpf->dev_send_buffers(p->tx, slots, addrs, lens, n, src, dst, p->kick_fd);
	return p->rpf->send_buffers(p->tx, addrs, lens, n, p->tx_size, src, dst, p->kick_fd);
}

int rpc_try_recv(struct rpc_path *p, uint32_t max, int arm)
{
	uint32_t count = max && max < p->rx_count ? max : p->rx_count;
	int rc = p->remote ? p->rpf->dev_recv(p->rx, p->out, p->out_cap, p->lens, count, arm, p->rx_kick_fd)
			   : p->rpf->recv(p->rx, p->out, p->out_cap, p->lens, count, p->rx_size, arm);
	if (arm && (rc >= 0 || rc == RPF_GENERAL)) /* what the ring says: asking that found messages first left them off */
		p->kicks_on = !p->rx->suppressed;
	return rc;
}

int rpc_recv_kicked(struct rpc_path *p)
{
	return !p->remote && p->rpf->kick(p->rx_kick_fd, p->rx->index);
}

int rpc_single(const struct rpc_path *p, uint32_t addr, uint32_t *src, const uint8_t **payload, uint32_t *len)
{
	if (p->lens[0] < RPC_HDR)
		return 0;
	const uint8_t *m = p->out;
	uint32_t dst = le32(m + 4), n = (uint32_t)m[12] | (uint32_t)m[13] << 8;
	if (dst != addr || n > p->lens[0] - RPC_HDR)
		return 0;
	*src = le32(m);
	*payload = m + RPC_HDR;
	*len = n;
	return 1;
}

int rpc_batch_is_for(const struct rpc_path *p, int n, uint32_t addr)
{
	uint32_t pos = 0;
	for (int i = 0; i < n; pos += p->lens[i], i++) {
		const uint8_t *m = p->out + pos;
		if (p->lens[i] < RPC_HDR) /* not even a header: the parser drops it */
			return 0;
		uint32_t len = (uint32_t)m[12] | (uint32_t)m[13] << 8;
		if (le32(m + 4) != addr || len > p->lens[i] - RPC_HDR)
			return 0;
	}
	return 1;
}

const uint8_t *rpc_batch_next(const struct rpc_path *p, int i, uint32_t *pos, uint32_t *src, uint32_t *len)
{
	const uint8_t *m = p->out + *pos;
	*pos += p->lens[i];
	*src = le32(m);
	*len = (uint32_t)m[12] | (uint32_t)m[13] << 8;
	return m + RPC_HDR;
}

int rpc_peek_for(const struct rpc_path *p, uint32_t addr, uint32_t *src, const uint8_t **payload, uint32_t *len,
		 uint32_t *size)
{
	const uint8_t *m;
	uint32_t n;
	int r = p->remote ? p->rpf->dev_peek(p->rx, 0, &m, &n) : p->rpf->drv_peek(p->rx, p->rx_size, &m, &n);
	if (r != 1 || n < RPC_HDR || n > p->out_cap)
		return 0;
	uint8_t hdr[RPC_HDR];
	memcpy(hdr, m, RPC_HDR); /* read once: the host may write it meanwhile */
	uint32_t length = (uint32_t)hdr[12] | (uint32_t)hdr[13] << 8;
	if (le32(hdr + 4) != addr || length > n - RPC_HDR)
		return 0;
	*src = le32(hdr);
	*payload = m + RPC_HDR;
	*len = length;
	*size = n;
	return 1;
}

int rpc_arm(struct rpc_path *p, int arm)
{
	int r = p->rpf->arm(p->rx, p->remote, arm);
	if (arm && r >= 0)
		p->kicks_on = !p->rx->suppressed;
	return r;
}

int rpc_waiting(const struct rpc_path *p)
{
	const uint8_t *m;
	uint32_t n;
	return (p->remote ? p->rpf->dev_peek(p->rx, 0, &m, &n) : p->rpf->drv_peek(p->rx, p->rx_size, &m, &n)) != 0;
}

void rpc_prefetch(const struct rpc_path *p, uint16_t ahead)
{
	if (p->remote) /* the host's receive buffers are its own, posted again in turn: nothing to fetch early */
		p->rpf->dev_prefetch(p->rx, ahead);
}

int rpc_take_next(struct rpc_path *p, uint32_t size)
{
	return p->remote ? p->rpf->dev_take(p->rx, size) : p->rpf->drv_take(p->rx, p->rx_size);
}

int rpc_taken(struct rpc_path *p, int n)
{
	return p->remote ? p->rpf->dev_taken(p->rx, n, p->rx_kick_fd) : p->rpf->drv_taken(p->rx, n);
}

int rpc_hold(struct rpc_path *p, uint64_t *token)
{
	if (!p->remote)
		return p->rpf->drv_hold(p->rx, token);
	int head = p->rpf->dev_hold(p->rx);
	if (head >= 0)
		*token = (uint64_t)head;
	return head;
}

int rpc_give(struct rpc_path *p, uint64_t token, uint32_t size)
{
	if (p->remote)
		return p->rpf->dev_give(p->rx, (uint16_t)token, size);
	return p->rpf->drv_give(p->rx, token, p->rx_size);
}

int rpc_sleep(const struct rpc_path *p, int poll_fd, int kick_fd, int wake_fd, long long timeout_ns)
{
	return p->rpf->wait(p->rx, 0, poll_fd, kick_fd, wake_fd, timeout_ns);
}

int rpc_spin(const struct rpc_path *p, long long spin_ns)
{
	return p->rpf->wait(p->rx, spin_ns, -1, -1, -1, -1);
}
