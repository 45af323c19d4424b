/* The endpoint's recv_many_into in C (recvmmsg's shape: no object per message): the messages for this endpoint
 * waiting at the head of the ring, each copied straight out of the peer's buffer into its slot of the caller's
 * buffer (rpc_peek_for, as take_direct in endpoint_recv.c), its length into `sizes`. Anything else (nothing
 * waiting: the wait; messages queued; another endpoint's first; arguments the Python method must check) is the
 * Python method's, Endpoint._recv_many_into_py, which does the same through recv_many. */
#include "endpoint.h"

#include <string.h>

/* Take up to `max` messages into `out` (slot bytes each) and their sizes: how many; 0 when the Python method
 * must go on (see above). Only while the gate lets a receive take its own messages in C. */
static Py_ssize_t take_into(EndpointBase *e, uint8_t *out, Py_ssize_t slot, uint32_t *sizes, Py_ssize_t max)
{
	Gate *g = e->gate;
	uint32_t addr, src, len, size;
	const uint8_t *payload;
	PyObject *release = NULL;
	Py_ssize_t n = 0;
	if (!own_turn(e, 0, &addr, &release))
		return 0;
	struct rpc_path *p = &g->path;
	while (n < max && rpc_peek_for(p, addr, &src, &payload, &len, &size)) {
		uint32_t take = (Py_ssize_t)len < slot ? len : (uint32_t)slot;
		memcpy(out + n * slot, payload, take);
		sizes[n++] = take;
		if (rpc_take_next(p, size) < 0)
			break; /* the ring broke under us (a hostile peer): the next receive reports it */
	}
	if (n) {
		int rc = rpc_taken(p, (int)n);
		if ((rc & RPF_NOTIFY) && recv_kick(g) < 0)
			PyErr_Clear(); /* the device failed: the next call says so */
	}
	unlock(release);
	return n;
}

PyObject *ep_recv_many_into(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	Py_ssize_t slot = 0;
	if (kwnames || nargs < 2 || nargs > 3 || (nargs == 3 && !PyLong_CheckExact(args[2])))
		return slow(e, s_recv_many_into_py, args, nargs, kwnames);
	if (nargs == 3 && (slot = PyLong_AsSsize_t(args[2])) < 1) {
		PyErr_Clear();
		return slow(e, s_recv_many_into_py, args, nargs, kwnames);
	}
	Py_buffer buf, sz;
	if (PyObject_GetBuffer(args[0], &buf, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
		PyErr_Clear();
		return slow(e, s_recv_many_into_py, args, nargs, kwnames);
	}
	if (PyObject_GetBuffer(args[1], &sz, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
		PyErr_Clear();
		PyBuffer_Release(&buf);
		return slow(e, s_recv_many_into_py, args, nargs, kwnames);
	}
	Py_ssize_t count = sz.itemsize == 4 && sz.format && strcmp(sz.format, "I") == 0 ? sz.len / 4 : 0;
	if (count && !slot)
		slot = buf.len / count;
	Py_ssize_t max = slot ? buf.len / slot : 0;
	if (max > count)
		max = count;
	Py_ssize_t n = max > 0 ? take_into(e, buf.buf, slot, sz.buf, max) : 0;
	PyBuffer_Release(&sz);
	PyBuffer_Release(&buf);
	if (n > 0)
		return PyLong_FromSsize_t(n);
	return slow(e, s_recv_many_into_py, args, nargs, kwnames);
}
