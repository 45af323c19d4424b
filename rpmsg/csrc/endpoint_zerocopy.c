/* The endpoint's zero-copy sends in C (both roles): get_buffer, send_buffer, send_buffer_reuse, get_buffers,
 * send_buffers, send_buffers_reuse. Each *_c function returns NULL with no exception set (and *handled 0) when the
 * Python method must take the call. */
#include "endpoint.h"

#define TAKE_RAISED (-2000) /* take_tx: a Python exception is set (the buffer stays held) */

/* One send buffer into `b`, made by the caller first (a buffer taken is never lost to an allocation that
 * failed): the host's from its pool (rpc_try_take, HostFastPath.take), the remote's the host's next posted
 * receive buffer (rpc_lend, RemoteCore.get_tx_buffer). 1 armed; 0 none free (or, remote, one the general path
 * takes: a chain, a buffer flagged readable or smaller than the header); < 0 a broken ring; TAKE_RAISED. */
static int take_tx(Gate *g, TxBufferBase *b)
{
	uint64_t addr = 0;
	if (!g->path.remote) {
		int rc = rpc_try_take(&g->path, &addr);
		if (rc > 0)
			txb_arm(g, b, addr); /* its token: the gate's owner */
		return rc;
	}
	uint16_t head;
	uint8_t *host;
	uint32_t len;
	int rc = rpc_lend(&g->path, &head, &addr, &host, &len);
	if (rc == RPF_GENERAL)
		return 0;
	if (rc <= 0)
		return rc;
	return txb_arm_lent(g, b, head, addr, host, len) < 0 ? TAKE_RAISED : 1;
}

/* A buffer take_tx armed, back where it came from (nothing sent): the host's to its pool, the remote's kept by
 * the general path for the next send (RemoteCore.give_back; the exception set, if any, kept). */
static void untake(Gate *g, TxBufferBase *b)
{
	if (!g->path.remote) {
		b->done = 1;
		rpc_untake(&g->path, b->addr);
		return;
	}
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	PyObject *r = PyObject_CallMethodOneArg(g->tx_owner, s_give_back, (PyObject *)b);
	Py_XDECREF(r);
	PyErr_Clear();
	PyErr_Restore(type, value, tb);
}

/* A send buffer for a zero-copy send (RpmsgDevice.get_buffer's C branch): take_tx into a new TxBuffer; NULL with
 * no exception: the Python method's turn (none free: it waits; the pool replaced, a buffer kept by the general
 * path: the guard; anything the gate does not allow). */
static PyObject *get_buffer_c(EndpointBase *e, int *handled)
{
	Gate *g = e->gate;
	*handled = 0;
	if (!g || e->closed || !g->txbuf_type || !g->tx_view || !gate_send_usable(g))
		return NULL;
	PyObject *release = NULL;
	if (!send_enter(g, &release, handled))
		return NULL;
	TxBufferBase *b = g->txbuf_type && g->tx_view ? (TxBufferBase *)g->txbuf_type->tp_alloc(g->txbuf_type, 0)
						       : NULL;
	if (!b) {
		unlock(release);
		*handled = PyErr_Occurred() != NULL;
		return NULL;
	}
	int rc = take_tx(g, b);
	if (rc <= 0) {
		Py_DECREF(b);
		if (rc == TAKE_RAISED) {
			unlock(release);
			return NULL;
		}
		if (rc < 0)
			return failed(g->send_failed, rc, release);
		unlock(release);
		*handled = 0;
		return NULL;
	}
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
	if (!g || e->closed || !g->txbuf_type || !gate_send_usable(g) || !u32_of(e->addr, &src) ||
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
	int rc = rpc_send_buffer(&g->path, b->addr, (uint16_t)b->slot, src, dst, len);
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
	rc = g->attached && g->tx_view ? take_tx(g, b) : 0;
	if (rc == TAKE_RAISED) {
		unlock(release);
		return NULL;
	}
	if (rc < 0)
		return failed(g->send_failed, rc, release);
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

/* Up to `max` send buffers for zero-copy sends (RpmsgDevice.get_buffers's C branch): take_tx until none is free
 * or max are taken; NULL with no exception: the Python method's turn (not even one free: it waits for the first;
 * anything else get_buffer_c would not do). */
static PyObject *get_buffers_c(EndpointBase *e, Py_ssize_t max, int *handled)
{
	Gate *g = e->gate;
	*handled = 0;
	if (!g || e->closed || !g->txbuf_type || !g->tx_view || !gate_send_usable(g))
		return NULL;
	PyObject *release = NULL;
	if (!send_enter(g, &release, handled))
		return NULL;
	PyObject *out = g->txbuf_type && g->tx_view ? PyList_New(0) : NULL;
	int rc = 0;
	while (out && PyList_GET_SIZE(out) < max) {
		TxBufferBase *b = (TxBufferBase *)g->txbuf_type->tp_alloc(g->txbuf_type, 0);
		rc = b ? take_tx(g, b) : TAKE_RAISED;
		if (rc > 0 && PyList_Append(out, (PyObject *)b) < 0) { /* out of memory with a buffer taken */
			untake(g, b);
			rc = TAKE_RAISED;
		}
		Py_XDECREF(b);
		if (rc <= 0)
			break;
	}
	if (!out) {
		unlock(release);
		*handled = PyErr_Occurred() != NULL;
		return NULL;
	}
	if (rc < 0 && rc != TAKE_RAISED) { /* the device fails (PeerLost, as the Python method raises); nothing sent */
		Py_DECREF(out);
		return failed(g->send_failed, rc, release);
	}
	if (rc == TAKE_RAISED) { /* what was taken goes back, nothing half made */
		for (Py_ssize_t i = PyList_GET_SIZE(out); i-- > 0;)
			untake(g, (TxBufferBase *)PyList_GET_ITEM(out, i));
		Py_CLEAR(out);
		unlock(release);
		return NULL;
	}
	if (PyList_GET_SIZE(out) == 0) { /* none free: the Python method waits for the first */
		Py_DECREF(out);
		unlock(release);
		*handled = 0;
		return NULL;
	}
	unlock(release);
	return out;
}

/* _take_buffers(max): get_buffers_c for the Python method after it waited for the first buffer: up to max free
 * now, taken in C (a list, possibly empty), or None when the Python method must take them (the device's
 * take_buffers: none free in C either, or a case C does not take). */
PyObject *ep_take_buffers(EndpointBase *e, PyObject *arg)
{
	Py_ssize_t max = PyLong_AsSsize_t(arg);
	if (max == -1 && PyErr_Occurred())
		return NULL;
	if (max < 1)
		return PyList_New(0);
	int handled;
	PyObject *r = get_buffers_c(e, max, &handled);
	if (r || handled)
		return r;
	Py_RETURN_NONE;
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
	if (!g || e->closed || !g->txbuf_type || !gate_send_usable(g) || !u32_of(e->addr, &src) ||
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
	uint16_t slots_stack[BATCH_ON_STACK];
	uint64_t *addrs = addrs_stack;
	uint32_t *lens = lens_stack;
	uint16_t *slots = slots_stack;
	if (n > BATCH_ON_STACK) {
		addrs = PyMem_Malloc((size_t)n * sizeof *addrs);
		lens = PyMem_Malloc((size_t)n * sizeof *lens);
		slots = PyMem_Malloc((size_t)n * sizeof *slots);
		if (!addrs || !lens || !slots) {
			PyMem_Free(addrs);
			PyMem_Free(lens);
			PyMem_Free(slots);
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
		slots[marked] = (uint16_t)b->slot;
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
	 * descriptor for each (host: else the Python method reclaims, or names the limit; the remote pushes the
	 * chains it holds) */
	if (!g->send_open || (reuse && !(g->tx_view && gate_guard_holds(g))) ||
	    (!g->path.remote && (uint32_t)n > g->path.tx->num_free)) {
		unlock(release);
		goto python;
	}
	for (Py_ssize_t i = 0; i < n; i++) { /* as send_buffer: marked sent (its view released) before it goes */
		if (txb_finish((TxBufferBase *)items[i]) < 0) {
			/* a view still exported: the ones before it go (they are marked sent), it and the rest not */
			PyObject *type, *value, *tb;
			PyErr_Fetch(&type, &value, &tb);
			int rc = i ? rpc_send_buffers(&g->path, addrs, slots, lens, (uint32_t)i, src, dst) : 0;
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
	int rc = n ? rpc_send_buffers(&g->path, addrs, slots, lens, (uint32_t)n, src, dst) : 0;
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
		rc = take_tx(g, (TxBufferBase *)items[k]);
		if (rc == TAKE_RAISED) {
			unlock(release);
			goto done;
		}
		if (rc < 0) {
			result = failed(g->send_failed, rc, release);
			goto done;
		}
		if (!rc)
			break;
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
		PyMem_Free(slots);
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
