/* The endpoint's zero-copy sends in C (host): get_buffer, send_buffer, send_buffer_reuse, get_buffers,
 * send_buffers, send_buffers_reuse. Each *_c function returns NULL with no exception set (and *handled 0) when the
 * Python method must take the call. */
#include "endpoint.h"

/* A send buffer for a zero-copy send (host; RpmsgDevice.get_buffer's C branch): rpc_try_take, then a TxBuffer
 * over it; NULL with no exception: the Python method's turn (no buffer free: it waits; the pool replaced;
 * anything the gate does not allow). */
static PyObject *get_buffer_c(EndpointBase *e, int *handled)
{
	Gate *g = e->gate;
	*handled = 0;
	if (!g || e->closed || g->path.remote || !g->txbuf_type || !g->tx_view || !gate_send_usable(g))
		return NULL;
	PyObject *release = NULL;
	if (!send_enter(g, &release, handled))
		return NULL;
	if (!g->txbuf_type) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	uint64_t addr = 0;
	int rc = rpc_try_take(&g->path, &addr);
	if (rc < 0)
		return failed(g->send_failed, rc, release);
	if (rc == 0) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	TxBufferBase *b = (TxBufferBase *)g->txbuf_type->tp_alloc(g->txbuf_type, 0);
	if (!b) {
		rpc_untake(&g->path, addr);
		unlock(release);
		return NULL;
	}
	txb_arm(g, b, addr); /* its token: the gate's owner */
	unlock(release);
	return (PyObject *)b;
}

PyObject *ep_get_buffer(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	if (nargs == 0 && !kwnames) {
		int handled;
		PyObject *r = get_buffer_c(e, &handled);
		if (r || handled)
			return r;
	}
	return slow(e, s_get_buffer_py, args, nargs, kwnames);
}

/* Send a filled TxBuffer in C (RpmsgDevice.send_buffer's C branch; `reuse`: then RpmsgDevice.rearm's); NULL
 * with no exception: the Python method's turn (it raises what is wrong). */
static PyObject *send_buffer_c(EndpointBase *e, PyObject *buf, PyObject *length, PyObject *dst_obj, int reuse,
			       int *handled)
{
	Gate *g = e->gate;
	uint32_t src, dst, len;
	*handled = 0;
	if (!g || e->closed || g->path.remote || !g->txbuf_type || !gate_send_usable(g) || !u32_of(e->addr, &src) ||
	    !u32_of(dst_obj, &dst) || !u32_of(length, &len) || !PyObject_TypeCheck(buf, &TxBufferBaseType))
		return NULL;
	TxBufferBase *b = (TxBufferBase *)buf;
	if (b->done || len > b->capacity || b->token != g->tx_owner) /* another device's: the Python method refuses it */
		return NULL;
	PyObject *release = NULL;
	int taken = lock_try(g, &release);
	if (taken <= 0) {
		*handled = taken < 0;
		return NULL;
	}
	*handled = 1;
	/* re-arming takes from the pool: it must be the one attached (as get_buffer) */
	int go = g->send_open && !b->done && (!reuse || (g->tx_view && gate_guard_holds(g)));
	if (!go) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	if (txb_finish(b) < 0) {
		unlock(release);
		return NULL;
	}
	int rc = rpc_send_buffer(&g->path, b->addr, src, dst, len);
	if (rc < 0)
		return failed(g->send_failed, rc, release);
	if ((rc & RPF_NOTIFY) && kick_python(g, rpc_send_queue(&g->path)) < 0) {
		unlock(release);
		return NULL;
	}
	if (!reuse) {
		unlock(release);
		Py_RETURN_NONE;
	}
	/* send_buffer_reuse: the same object, re-armed with a buffer free now (never waits for one) */
	uint64_t addr = 0;
	rc = g->attached && g->tx_view ? rpc_try_take(&g->path, &addr) : 0;
	if (rc < 0)
		return failed(g->send_failed, rc, release);
	if (rc)
		txb_arm(g, b, addr);
	unlock(release);
	return PyBool_FromLong(rc);
}

/* send_buffer_c or send_buffers_c: (buf or bufs, length or lengths, dst, reuse, &handled). */
typedef PyObject *(*zero_copy_send)(EndpointBase *, PyObject *, PyObject *, PyObject *, int, int *);

/* The four zero-copy sends' one argument shape, (what, length[s], dst=None), positional: the C send, or the
 * Python method `name` for any other shape and whatever the C send hands over. */
static PyObject *send_entry(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int reuse,
			    PyObject *name, zero_copy_send send)
{
	if ((nargs == 2 || nargs == 3) && !kwnames) {
		int handled;
		PyObject *dst = nargs == 3 && args[2] != Py_None ? args[2] : e->peer;
		PyObject *r = send(e, args[0], args[1], dst ? dst : Py_None, reuse, &handled);
		if (r || handled)
			return r;
	}
	return slow(e, name, args, nargs, kwnames);
}

PyObject *ep_send_buffer(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return send_entry(e, args, nargs, kwnames, 0, s_send_buffer_py, send_buffer_c);
}

PyObject *ep_send_buffer_reuse(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return send_entry(e, args, nargs, kwnames, 1, s_send_buffer_reuse_py, send_buffer_c);
}

/* Up to `max` send buffers for zero-copy sends (host; RpmsgDevice.get_buffers's C branch): rpc_try_take until
 * none is free or max are taken; NULL with no exception: the Python method's turn (not even one free: it waits
 * for the first; anything else get_buffer_c would not do). */
static PyObject *get_buffers_c(EndpointBase *e, Py_ssize_t max, int *handled)
{
	Gate *g = e->gate;
	*handled = 0;
	if (!g || e->closed || g->path.remote || !g->txbuf_type || !g->tx_view || !gate_send_usable(g))
		return NULL;
	PyObject *release = NULL;
	if (!send_enter(g, &release, handled))
		return NULL;
	if (!g->txbuf_type) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	uint64_t addr = 0;
	int rc = rpc_try_take(&g->path, &addr);
	if (rc < 0)
		return failed(g->send_failed, rc, release);
	if (rc == 0) { /* none free: the Python method waits for the first */
		unlock(release);
		*handled = 0;
		return NULL;
	}
	PyObject *out = PyList_New(0);
	while (out) {
		TxBufferBase *b = (TxBufferBase *)g->txbuf_type->tp_alloc(g->txbuf_type, 0);
		if (b)
			txb_arm(g, b, addr);
		if (!b || PyList_Append(out, (PyObject *)b) < 0) {
			Py_XDECREF(b);
			rpc_untake(&g->path, addr);
			break;
		}
		Py_DECREF(b);
		if (PyList_GET_SIZE(out) >= max)
			break;
		rc = rpc_try_take(&g->path, &addr);
		if (rc < 0) { /* the device fails (PeerLost, as the Python method raises); nothing was sent */
			Py_DECREF(out);
			return failed(g->send_failed, rc, release);
		}
		if (rc == 0)
			break;
	}
	if (!out)
		rpc_untake(&g->path, addr);
	else if (PyErr_Occurred()) { /* out of memory: what was taken goes back to the pool, nothing half made */
		for (Py_ssize_t i = PyList_GET_SIZE(out); i-- > 0;) {
			TxBufferBase *b = (TxBufferBase *)PyList_GET_ITEM(out, i);
			b->done = 1;
			rpc_untake(&g->path, b->addr);
		}
		Py_CLEAR(out);
	}
	unlock(release);
	return out;
}

PyObject *ep_get_buffers(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	if (nargs <= 1 && !kwnames) {
		Py_ssize_t max = 64;
		uint32_t m;
		if (nargs == 0 || (u32_of(args[0], &m) && m >= 1 && (max = m))) {
			int handled;
			PyObject *r = get_buffers_c(e, max, &handled);
			if (r || handled)
				return r;
		}
	}
	return slow(e, s_get_buffers_py, args, nargs, kwnames);
}

#define BATCH_ON_STACK 64

/* Send filled TxBuffers in C with one publish (RpmsgDevice.send_buffers's C branch; `reuse`: then
 * RpmsgDevice.rearm_many's): every buffer checked first (this device's, not sent, not twice, its length
 * fits), then each marked sent, then headers, adds, one publish and at most one kick. NULL with no exception:
 * the Python method's turn (it raises what is wrong), nothing done. */
static PyObject *send_buffers_c(EndpointBase *e, PyObject *bufs, PyObject *lengths, PyObject *dst_obj, int reuse,
				int *handled)
{
	Gate *g = e->gate;
	uint32_t src, dst, one = 0;
	*handled = 0;
	if (!g || e->closed || g->path.remote || !g->txbuf_type || !gate_send_usable(g) || !u32_of(e->addr, &src) ||
	    !u32_of(dst_obj, &dst) || !(PyList_CheckExact(bufs) || PyTuple_CheckExact(bufs)))
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(bufs);
	PyObject **lens_items = NULL;
	if (PyList_CheckExact(lengths) || PyTuple_CheckExact(lengths)) {
		if (PySequence_Fast_GET_SIZE(lengths) != n)
			return NULL;
		lens_items = PySequence_Fast_ITEMS(lengths);
	} else if (!u32_of(lengths, &one)) {
		return NULL;
	}
	if (n > (Py_ssize_t)g->path.tx->num || n > 0xffff)
		return NULL; /* more than the ring holds: the Python method says so */
	uint64_t addrs_stack[BATCH_ON_STACK];
	uint32_t lens_stack[BATCH_ON_STACK];
	uint64_t *addrs = addrs_stack;
	uint32_t *lens = lens_stack;
	if (n > BATCH_ON_STACK) {
		addrs = PyMem_Malloc((size_t)n * sizeof *addrs);
		lens = PyMem_Malloc((size_t)n * sizeof *lens);
		if (!addrs || !lens) {
			PyMem_Free(addrs);
			PyMem_Free(lens);
			*handled = 1;
			PyErr_NoMemory();
			return NULL;
		}
	}
	/* The buffers as they are now, held: the guard's getattr and the kick may run Python code (another thread
	 * could change a list meanwhile); the lengths are read before any of it. */
	PyObject *result = NULL;
	PyObject *held = PyList_CheckExact(bufs) ? PyList_AsTuple(bufs) : Py_NewRef(bufs);
	if (!held) {
		*handled = 1; /* out of memory */
		goto done;
	}
	PyObject **items = PySequence_Fast_ITEMS(held);
	Py_ssize_t marked = 0;
	/* checked, and marked so that one twice is seen; unmarked again before anything else happens */
	for (; marked < n; marked++) {
		PyObject *item = items[marked];
		if (!PyObject_TypeCheck(item, g->txbuf_type))
			break;
		TxBufferBase *b = (TxBufferBase *)item;
		uint32_t len = one;
		if (lens_items && !u32_of(lens_items[marked], &len))
			break;
		if (b->done || len > b->capacity || b->token != g->tx_owner)
			break;
		b->done = 1;
		addrs[marked] = b->addr;
		lens[marked] = len;
	}
	for (Py_ssize_t i = 0; i < marked; i++)
		((TxBufferBase *)items[i])->done = 0;
	if (marked < n)
		goto python;
	PyObject *release = NULL;
	int taken = lock_try(g, &release);
	if (taken <= 0) {
		*handled = taken < 0;
		goto done;
	}
	*handled = 1;
	/* re-arming takes from the pool: it must be the one attached (as get_buffer); the ring must have a
	 * descriptor for each (else the Python method reclaims, or names the limit) */
	if (!g->send_open || (reuse && !(g->tx_view && gate_guard_holds(g))) || (uint32_t)n > g->path.tx->num_free) {
		unlock(release);
		goto python;
	}
	for (Py_ssize_t i = 0; i < n; i++) { /* as send_buffer: marked sent (its view released) before it goes */
		if (txb_finish((TxBufferBase *)items[i]) < 0) {
			/* a view still exported: the ones before it go (they are marked sent), it and the rest not */
			PyObject *type, *value, *tb;
			PyErr_Fetch(&type, &value, &tb);
			int rc = i ? rpc_send_buffers(&g->path, addrs, lens, (uint32_t)i, src, dst) : 0;
			if (rc < 0 || ((rc & RPF_NOTIFY) && kick_python(g, rpc_send_queue(&g->path)) < 0)) {
				Py_XDECREF(type); /* the device failed: its PeerLost is what is raised */
				Py_XDECREF(value);
				Py_XDECREF(tb);
				if (rc < 0)
					result = failed(g->send_failed, rc, release);
				else
					unlock(release);
				goto done;
			}
			PyErr_Restore(type, value, tb);
			unlock(release);
			goto done;
		}
	}
	int rc = n ? rpc_send_buffers(&g->path, addrs, lens, (uint32_t)n, src, dst) : 0;
	if (rc < 0) {
		result = failed(g->send_failed, rc, release);
		goto done;
	}
	if ((rc & RPF_NOTIFY) && kick_python(g, rpc_send_queue(&g->path)) < 0) {
		unlock(release);
		goto done;
	}
	if (!reuse) {
		unlock(release);
		result = Py_NewRef(Py_None);
		goto done;
	}
	/* send_buffers_reuse: the same objects, in order, re-armed with buffers free now (never waits) */
	Py_ssize_t k = 0;
	for (; k < n && g->attached && g->tx_view; k++) {
		uint64_t addr = 0;
		rc = rpc_try_take(&g->path, &addr);
		if (rc < 0) {
			result = failed(g->send_failed, rc, release);
			goto done;
		}
		if (!rc)
			break;
		txb_arm(g, (TxBufferBase *)items[k], addr);
	}
	unlock(release);
	result = PyLong_FromSsize_t(k);
	goto done;
python:
	*handled = 0;
done:
	Py_XDECREF(held);
	if (addrs != addrs_stack) {
		PyMem_Free(addrs);
		PyMem_Free(lens);
	}
	return result;
}

PyObject *ep_send_buffers(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return send_entry(e, args, nargs, kwnames, 0, s_send_buffers_py, send_buffers_c);
}

PyObject *ep_send_buffers_reuse(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return send_entry(e, args, nargs, kwnames, 1, s_send_buffers_reuse_py, send_buffers_c);
}
