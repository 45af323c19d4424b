/* The endpoint's sends in C: send, sendto, send_many (the zero-copy ones: endpoint_zerocopy.c). Each *_c
 * function returns NULL with no exception set (and *handled 0) when the Python method must take the call. */
#include "endpoint.h"

/* The lock, then the gate still open and its guard holding: 1 (*release set); 0 the Python method's turn
 * (*handled says whether an exception is set). */
int send_enter(Gate *g, PyObject **release, int *handled)
{
	int taken = lock_try(g, release);
	if (taken <= 0) {
		*handled = taken < 0;
		return 0;
	}
	if (!gate_guard_holds(g)) {
		unlock(*release);
		*handled = 0;
		return 0;
	}
	*handled = 1;
	return 1;
}

/* Send `data` to `dst` in C (RpmsgDevice.try_send_c); NULL with no exception set: the Python method's turn. */
static PyObject *send_c(EndpointBase *e, PyObject *data, PyObject *dst_obj, int *handled)
{
	Gate *g = e->gate;
	uint32_t src, dst;
	*handled = 0;
	if (!g || e->closed || !gate_send_usable(g) || !u32_of(e->addr, &src) || !u32_of(dst_obj, &dst))
		return NULL;
	Py_buffer b;
	if (PyObject_GetBuffer(data, &b, PyBUF_SIMPLE) < 0) {
		PyErr_Clear(); /* not a contiguous buffer: the Python path says what is wrong */
		return NULL;
	}
	PyObject *release = NULL;
	if (b.len > (Py_ssize_t)g->path.max_payload || !send_enter(g, &release, handled)) {
		PyBuffer_Release(&b);
		return NULL;
	}
	int rc = rpc_try_send(&g->path, src, dst, b.buf, (uint32_t)b.len);
	Py_ssize_t len = b.len;
	PyBuffer_Release(&b);
	if (rc < 0 && rc != RPF_GENERAL)
		return failed(g->send_failed, rc, release);
	if (rc <= 0) { /* no buffer (the Python path waits for one), or a host buffer too small (it names it) */
		unlock(release);
		*handled = 0;
		return NULL;
	}
	if ((rc & RPF_NOTIFY) && kick_python(g, rpc_send_queue(&g->path)) < 0) {
		unlock(release);
		return NULL;
	}
	unlock(release);
	return PyLong_FromSsize_t(len);
}

PyObject *ep_send(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	if (nargs == 1 && !kwnames) {
		int handled;
		PyObject *r = send_c(e, args[0], e->peer, &handled);
		if (r || handled)
			return r;
	}
	return slow(e, s_send_py, args, nargs, kwnames);
}

PyObject *ep_sendto(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	if (nargs == 2 && !kwnames) {
		int handled;
		PyObject *r = send_c(e, args[0], args[1], &handled);
		if (r || handled)
			return r;
	}
	return slow(e, s_sendto_py, args, nargs, kwnames);
}

/* One of send_many's messages as C takes it: bytes, a bytearray, or a memoryview of bytes (one dimension, item
 * size 1, contiguous, not released): the built-in types whose buffer no Python code makes (so the list cannot
 * change between the check and the send), and whose len() is their size in bytes, as the Python path counts it.
 * 1 and *b filled (PyBuffer_Release it), or 0: the Python method's. */
static int c_payload(PyObject *m, Py_buffer *b)
{
	if (PyBytes_CheckExact(m) || PyByteArray_CheckExact(m)) {
		if (PyObject_GetBuffer(m, b, PyBUF_SIMPLE) < 0) {
			PyErr_Clear();
			return 0;
		}
		return 1;
	}
	if (!PyMemoryView_Check(m))
		return 0;
	const Py_buffer *v = PyMemoryView_GET_BUFFER(m);
	if (v->ndim > 1 || v->itemsize != 1 || !PyBuffer_IsContiguous(v, 'C'))
		return 0;
	if (PyObject_GetBuffer(m, b, PyBUF_SIMPLE) < 0) { /* released: the Python path says so */
		PyErr_Clear();
		return 0;
	}
	return 1;
}

/* Send a list or tuple of messages (c_payload's) to `dst` in C (RpmsgDevice.send_many's C branch): rpc_try_put
 * each while buffers are free, then one rpc_flush (publish, at most one kick). Returns how many went (k); the rest, if
 * any, is the Python method's: `_send_many_py(rest, dst, k)`, which waits for buffers as the endpoint's timeout
 * says. NULL with no exception: the Python method's turn for all of it (not a list/tuple, a message C does not
 * take, one too long, the gate closed). */
static PyObject *send_many_c(EndpointBase *e, PyObject *msgs, PyObject *dst_obj, Py_ssize_t *sent, int *handled)
{
	Gate *g = e->gate;
	uint32_t src, dst;
	*handled = 0;
	*sent = 0;
	if (!g || e->closed || !gate_send_usable(g) || !u32_of(e->addr, &src) || !u32_of(dst_obj, &dst) ||
	    !(PyList_CheckExact(msgs) || PyTuple_CheckExact(msgs)))
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(msgs);
	PyObject **items = PySequence_Fast_ITEMS(msgs);
	for (Py_ssize_t i = 0; i < n; i++) { /* checked before anything is sent: all or nothing for bad input */
		if (PyBytes_CheckExact(items[i])) {
			if (PyBytes_GET_SIZE(items[i]) > (Py_ssize_t)g->path.max_payload)
				return NULL;
			continue;
		}
		Py_buffer b;
		if (!c_payload(items[i], &b))
			return NULL;
		Py_ssize_t len = b.len;
		PyBuffer_Release(&b);
		if (len > (Py_ssize_t)g->path.max_payload)
			return NULL;
	}
	PyObject *release = NULL;
	if (!send_enter(g, &release, handled))
		return NULL;
	/* the list cannot change meanwhile: no Python code runs until the flush */
	Py_ssize_t k = 0;
	int rc = 0;
	for (; k < n; k++) {
		PyObject *m = items[k];
		if (PyBytes_CheckExact(m)) {
			rc = rpc_try_put(&g->path, src, dst, (const uint8_t *)PyBytes_AS_STRING(m),
					 (uint32_t)PyBytes_GET_SIZE(m));
		} else {
			Py_buffer b;
			if (!c_payload(m, &b)) { /* cannot happen (checked above, no Python ran since); as a full ring */
				rc = 0;
				break;
			}
			rc = rpc_try_put(&g->path, src, dst, (const uint8_t *)b.buf, (uint32_t)b.len);
			PyBuffer_Release(&b);
		}
		if (rc <= 0 || rc == RPF_GENERAL)
			break;
	}
	if (rc < 0 && rc != RPF_GENERAL)
		return failed(g->send_failed, rc, release);
	if (k > 0) {
		rc = rpc_flush(&g->path);
		if (rc < 0)
			return failed(g->send_failed, rc, release);
		if ((rc & RPF_NOTIFY) && kick_python(g, rpc_send_queue(&g->path)) < 0) {
			unlock(release);
			return NULL; /* the device failed (PeerLost, with the count unconfirmed) */
		}
	}
	unlock(release);
	*sent = k;
	if (k == n)
		return PyLong_FromSsize_t(n);
	*handled = 0;
	return NULL;
}

PyObject *ep_send_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	Py_ssize_t sent = 0;
	if ((nargs == 1 || nargs == 2) && !kwnames) {
		int handled;
		PyObject *dst = nargs == 2 && args[1] != Py_None ? args[1] : e->peer;
		PyObject *r = send_many_c(e, args[0], dst ? dst : Py_None, &sent, &handled);
		if (r || handled)
			return r;
		if (sent) { /* the ring filled: the rest waits for buffers in the Python method, counted from here */
			PyObject *rest = PySequence_GetSlice(args[0], sent, PySequence_Fast_GET_SIZE(args[0]));
			PyObject *count = PyLong_FromSsize_t(sent);
			PyObject *stack[3] = { rest, nargs == 2 ? args[1] : Py_None, count };
			r = rest && count ? slow(e, s_send_many_py, stack, 3, NULL) : NULL;
			Py_XDECREF(rest);
			Py_XDECREF(count);
			return r;
		}
	}
	return slow(e, s_send_many_py, args, nargs, kwnames);
}
