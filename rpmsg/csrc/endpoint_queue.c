/* The endpoint's queue as the C receive uses it (endpoint_recv.c): (payload, src) copies it queued, popped or
 * taken all at once, and a batch all for one endpoint queued within the queue's bounds; and the turn of a receive
 * that takes from the ring in place, which needs the queue empty. */
#include "endpoint.h"

static int turn_open(const Gate *g, int peek_only)
{
	return peek_only ? g->peek_open : g->open || g->peek_open;
}

int own_turn(EndpointBase *e, int peek_only, uint32_t *addr, PyObject **release)
{
	Gate *g = e->gate;
	if (!g || e->closed || !turn_open(g, peek_only) || !trace_off(&g->trace) || !u32_of(e->addr, addr) ||
	    !e->queue)
		return 0;
	if (lock_try(g, release) <= 0) {
		PyErr_Clear(); /* held elsewhere, or an error of the lock: the Python method meets it again */
		return 0;
	}
	Py_ssize_t queued = PyObject_Length(e->queue); /* under the lock: what another thread queued meanwhile */
	if (queued != 0 || !turn_open(g, peek_only)) {
		PyErr_Clear();
		unlock(*release);
		return 0;
	}
	return 1;
}

/* The queue's head, when the C receive put it there (a (payload, src) tuple): popped, its bytes taken off
 * _queued_bytes (Endpoint._take). NULL with no exception: the head is a Message, or the last item goes while a
 * pollable descriptor (`_fd`, just made by fileno: its pump closes the gate) must be read: the Python method's.
 * The lock held; `queued`: the queue's length. */
PyObject *pop_queued(EndpointBase *e, Py_ssize_t queued)
{
	if (queued == 1) {
		PyObject *fd = PyObject_GetAttr((PyObject *)e, s_fd);
		int none = fd == Py_None;
		Py_XDECREF(fd);
		if (!none) {
			PyErr_Clear();
			return NULL;
		}
	}
	PyObject *head = PySequence_GetItem(e->queue, 0);
	if (!head || !PyTuple_CheckExact(head) || PyTuple_GET_SIZE(head) != 2 ||
	    !PyBytes_CheckExact(PyTuple_GET_ITEM(head, 0))) {
		Py_XDECREF(head);
		PyErr_Clear();
		return NULL;
	}
	PyObject *popped = PyObject_CallMethodNoArgs(e->queue, s_popleft);
	if (popped != head) { /* (a deque: cannot be) */
		Py_XDECREF(popped);
		Py_DECREF(head);
		PyErr_Clear();
		return NULL;
	}
	Py_DECREF(popped);
	e->queued_bytes -= PyBytes_GET_SIZE(PyTuple_GET_ITEM(head, 0));
	return head;
}

/* All of the queue (`queued` items) into `out` when every item is a copy the C receive queued, none longer than
 * bufsize, and no pollable descriptor is to be read (recvfrom_many after a wait took in a batch: one pass, not
 * one pop per message): 1; 0 when not, or on an error (nothing taken: one at a time then). The lock held. */
int take_all_queued(EndpointBase *e, PyObject *out, Py_ssize_t bufsize, Py_ssize_t queued)
{
	PyObject *fd = PyObject_GetAttr((PyObject *)e, s_fd);
	int none = fd == Py_None;
	Py_XDECREF(fd);
	if (!none) {
		PyErr_Clear();
		return 0;
	}
	Py_ssize_t start = PyList_GET_SIZE(out), bytes = 0;
	PyObject *it = PyObject_GetIter(e->queue), *item;
	if (!it) {
		PyErr_Clear();
		return 0;
	}
	while ((item = PyIter_Next(it))) {
		int plain = PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2 &&
			    PyBytes_CheckExact(PyTuple_GET_ITEM(item, 0)) &&
			    PyBytes_GET_SIZE(PyTuple_GET_ITEM(item, 0)) <= bufsize;
		if (plain) {
			bytes += PyBytes_GET_SIZE(PyTuple_GET_ITEM(item, 0));
			plain = PyList_Append(out, item) == 0 ? 1 : -1;
		}
		Py_DECREF(item);
		if (plain <= 0)
			break;
	}
	Py_DECREF(it);
	PyObject *r = NULL;
	if (!PyErr_Occurred() && PyList_GET_SIZE(out) - start == queued)
		r = PyObject_CallMethod(e->queue, "clear", NULL);
	if (!r) { /* not all plain, or an error: undone */
		PyErr_Clear();
		PyList_SetSlice(out, start, PyList_GET_SIZE(out), NULL);
		PyErr_Clear();
		return 0;
	}
	Py_DECREF(r);
	e->queued_bytes -= bytes;
	return 1;
}

/* What a queued (payload, src) gives the caller: payload cut to bufsize, with its source or not. */
PyObject *queued_result(PyObject *item, Py_ssize_t bufsize, int with_src)
{
	PyObject *data = PyTuple_GET_ITEM(item, 0);
	if (PyBytes_GET_SIZE(data) <= bufsize) {
		PyObject *r = Py_NewRef(with_src ? item : data);
		Py_DECREF(item);
		return r;
	}
	PyObject *cut = PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), bufsize);
	PyObject *r = cut && with_src ? PyTuple_Pack(2, cut, PyTuple_GET_ITEM(item, 1)) : Py_XNewRef(cut);
	Py_XDECREF(cut);
	Py_DECREF(item);
	return r;
}

/* An int attribute of `obj`, or of `fallback` (named `fname`) when it is None: Endpoint._enqueue's bounds. */
static int bound_of(PyObject *obj, PyObject *name, PyObject *fallback, PyObject *fname, Py_ssize_t *out)
{
	PyObject *v = PyObject_GetAttr(obj, name);
	if (v == Py_None) {
		Py_DECREF(v);
		v = PyObject_GetAttr(fallback, fname);
	}
	if (!v)
		return -1;
	*out = PyLong_AsSsize_t(v);
	Py_DECREF(v);
	return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* A batch of n (> 1) well-formed messages all for this endpoint, its queue empty: what RpmsgDevice._take_batch
 * then the Python method would do (all queued, each within the queue's bounds; the first taken), without a
 * Message each: the first returned (cut to bufsize), the others queued as (payload, src). `into` (recvfrom_many,
 * which then takes up to `max` from the queue): the first `max` appended there as (payload cut to bufsize, src)
 * instead, the rest queued, and Py_None returned (the same list and the same queue in the end). NULL with no
 * exception when the general delivery must do it (a bound would drop one, a pollable descriptor to signal);
 * NULL with an exception on an error (what was queued stays). The lock held. */
PyObject *queue_batch(EndpointBase *e, int n, Py_ssize_t bufsize, int with_src, PyObject *into, Py_ssize_t max)
{
	Gate *g = e->gate;
	uint32_t pos = 0, src, len, last_src = 0;
	Py_ssize_t total = 0, cap, cap_bytes;
	for (int i = 0; i < n; i++) {
		rpc_batch_next(&g->path, i, &pos, &src, &len);
		total += len;
	}
	PyObject *fd = PyObject_GetAttr((PyObject *)e, s_fd);
	int plain = fd == Py_None;
	Py_XDECREF(fd);
	PyObject *dev = plain ? PyObject_GetAttr((PyObject *)e, s_dev) : NULL;
	PyObject *limits = dev ? PyObject_GetAttr(dev, s_limits) : NULL;
	Py_XDECREF(dev);
	int ok = limits && bound_of((PyObject *)e, s_max_queued, limits, s_queued, &cap) == 0 &&
		 bound_of((PyObject *)e, s_max_queued_bytes, limits, s_queued_bytes, &cap_bytes) == 0;
	Py_XDECREF(limits);
	PyErr_Clear();
	if (!ok || n > cap || total > cap_bytes)
		return NULL; /* the general delivery: it drops (and says so) what the bounds do not take */
	PyObject *append = PyObject_GetAttr(e->queue, s_append);
	if (!append)
		return NULL;
	Py_ssize_t direct = into ? max - PyList_GET_SIZE(into) : 1; /* how many go to the caller */
	PyObject *first = into ? Py_NewRef(Py_None) : NULL, *from = NULL;
	pos = 0;
	for (int i = 0; i < n; i++) {
		const uint8_t *payload = rpc_batch_next(&g->path, i, &pos, &src, &len);
		if (!from || src != last_src) { /* one int for a run of messages from the same source */
			Py_XSETREF(from, PyLong_FromUnsignedLong(src));
			last_src = src;
		}
		int mine = i < direct;
		Py_ssize_t take = mine && (Py_ssize_t)len > bufsize ? bufsize : (Py_ssize_t)len;
		PyObject *data = from ? PyBytes_FromStringAndSize((const char *)payload, take) : NULL;
		PyObject *item = data && (!mine || with_src) ? PyTuple_New(2) : NULL;
		if (item) {
			PyTuple_SET_ITEM(item, 0, data);
			PyTuple_SET_ITEM(item, 1, Py_NewRef(from));
		} else if (data && mine && !with_src) {
			item = data; /* recv: the payload alone */
		} else {
			Py_XDECREF(data);
			break;
		}
		if (mine && !into) {
			first = item;
			continue;
		}
		PyObject *r = mine ? (PyList_Append(into, item) < 0 ? NULL : Py_NewRef(Py_None))
				   : PyObject_CallOneArg(append, item);
		Py_DECREF(item);
		if (!r)
			break;
		Py_DECREF(r);
		if (!mine)
			e->queued_bytes += len;
	}
	Py_XDECREF(from);
	Py_DECREF(append);
	if (PyErr_Occurred()) {
		Py_XDECREF(first);
		return NULL;
	}
	return first;
}
