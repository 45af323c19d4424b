/*
 * rpmsg._endpoint_c: the endpoint's send, sendto, recv and recvfrom as C methods (CPython API), host and remote.
 *
 * Why this exists: on one CPU a blocking round trip costs two context switches and a few syscalls (~2 us here);
 * every Python call and `with lock:` on the way costs 0.1-0.2 us more, and the endpoint API made of them cost
 * 2.5 us on top. These methods do the common case of rpmsg/device.py's C path (rpmsg/fastpath.py) without
 * entering the interpreter: the message fits, a send buffer (host) or a posted host buffer (remote) is there,
 * the message waiting is one well-formed message for this endpoint; and, in wait mode "block" with no timeout,
 * the sleep until one comes (the Python path's wait, in C). Anything else (a timeout to keep, another wait mode,
 * a batch, a message for someone else, a full ring, an error, tracing, a closed endpoint, keyword arguments)
 * calls the Python method `_<name>_py` with the same arguments, which is the whole endpoint implementation;
 * these methods only ever skip it, they never decide anything it would decide differently.
 *
 * Who may use the rings is decided by the device's Python lock (an RLock): it is taken here without blocking
 * (`acquire(False)`); if another thread holds it, the Python method waits for it instead. Whether the C path
 * applies at all is the Gate's `open` flag, kept by the device (rpmsg.device.RpmsgDevice._update_gate) whenever
 * what it depends on changes; the rest is checked per call (tracing through the logger's own level cache, the
 * endpoint's queue, the send pool not replaced).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <unistd.h>

#include "fastpath.h"

#define HDR 16u
#define TRACE_LEVEL 5 /* rpmsg.device.TRACE */

/* --- Gate: the device's C path, shared by its endpoints ------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	int open;     /* the device says: the host C path is in use and nothing needs the general path */
	int block;    /* wait mode "block": a receive turns the peer's kicks off, as the Python path does */
	int kicks_on; /* whether the peer was asked to kick us for new messages (the device's bookkeeping) */
	int attached;
	int remote;   /* the remote role (virtio device): rpf_dev_*; else the host's rpf_send/rpf_recv */
	struct rp_vq *rx, *tx; /* the rings we receive from and send to */
	uint64_t *pool;
	uint32_t *npool;
	uint32_t pool_cap, tx_size, rx_size, rx_count, max_payload, out_cap;
	uint8_t *out;
	uint32_t *lens;
	int kick_fd;
	PyObject *acquire, *release; /* the device lock's bound methods */
	PyObject *trace_cache;       /* the rpmsg.device logger's level cache (a dict: level -> enabled) */
	PyObject *pool_ring;         /* host: the send queue's CVring (its pool_array is replaced when the host
				      * restarts); remote: the RemoteCore (its _spare buffer goes first) */
	PyObject *pool_obj;          /* host: the array the pool pointers came from */
	PyObject *device;            /* for what only Python does: kicks that failed, batches, errors */
	/* the blocking receive's sleep (set_wait): the doorbell's descriptor, its kick eventfd, the device's wake
	 * eventfd, threading.current_thread and the device's condition */
	int poll_fd, wait_kick_fd, wake_fd;
	PyObject *current_thread, *changed;
	/* zero-copy sends (host, set_zero_copy): one view of the send buffers, the device address it starts at,
	 * and the TxBuffer class get_buffer makes (rpmsg.core.TxBuffer, a subclass of TxBufferBase) */
	PyObject *tx_view;
	uint64_t tx_lo;
	PyTypeObject *txbuf_type;
} Gate;

static PyObject *s_doorbell_owner, *s_notify_all, *s_timeout;
static PyObject *s_pool_array, *s_spare, *s_kick, *s_take_batch, *s_send_failed, *s_recv_failed, *trace_key;
static PyObject *s_send_py, *s_sendto_py, *s_recv_py, *s_recvfrom_py;
static PyObject *s_recvfrom_many_py, *s_take_waiting, *s_device;
static PyObject *s_send_many_py, *s_get_buffer_py, *s_send_buffer_py, *s_send_buffer_reuse_py, *s_release;

/* What attach sets (a re-attach after the host's pool was replaced keeps set_wait's). */
static void gate_drop_rings(Gate *g)
{
	g->attached = 0;
	g->open = 0;
	Py_CLEAR(g->acquire);
	Py_CLEAR(g->release);
	Py_CLEAR(g->trace_cache);
	Py_CLEAR(g->pool_ring);
	Py_CLEAR(g->pool_obj);
	Py_CLEAR(g->device);
}

static void gate_drop(Gate *g)
{
	gate_drop_rings(g);
	Py_CLEAR(g->current_thread);
	Py_CLEAR(g->changed);
	Py_CLEAR(g->tx_view);
	Py_CLEAR(g->txbuf_type);
	g->poll_fd = -1;
}

static int gate_traverse(Gate *g, visitproc visit, void *arg)
{
	Py_VISIT(g->acquire);
	Py_VISIT(g->release);
	Py_VISIT(g->trace_cache);
	Py_VISIT(g->pool_ring);
	Py_VISIT(g->pool_obj);
	Py_VISIT(g->device);
	Py_VISIT(g->current_thread);
	Py_VISIT(g->changed);
	Py_VISIT(g->tx_view);
	Py_VISIT(g->txbuf_type);
	return 0;
}

static int gate_clear(Gate *g)
{
	gate_drop(g);
	return 0;
}

static void gate_dealloc(Gate *g)
{
	PyObject_GC_UnTrack(g);
	gate_drop(g);
	Py_TYPE(g)->tp_free((PyObject *)g);
}

static void *as_ptr(PyObject *v)
{
	return (void *)(uintptr_t)PyLong_AsUnsignedLongLong(v);
}

PyDoc_STRVAR(gate_attach_doc,
	     "attach(rx, tx, pool, npool, pool_cap, tx_size, rx_size, rx_count, max_payload, out, lens, out_cap, "
	     "kick_fd, lock, trace_cache, pool_ring, pool_obj, device, remote)\n\n"
	     "Point the C methods at a C path: the addresses of its rings (struct rp_vq: receive, send), send pool "
	     "(host; 0 for the remote), batch buffer and lengths, the eventfd to kick the peer with, and the Python "
	     "objects named in endpoint.c. remote: the remote role (pool_ring is then its RemoteCore). Leaves `open` "
	     "as it was.");

static PyObject *gate_attach(Gate *g, PyObject *args)
{
	PyObject *rx, *tx, *pool, *npool, *out, *lens, *lock, *cache, *ring, *pool_obj, *device;
	unsigned int pool_cap, tx_size, rx_size, rx_count, max_payload, out_cap;
	int kick_fd, remote;
	if (!PyArg_ParseTuple(args, "O!O!O!O!IIIIIO!O!IiOO!OOOp:attach", &PyLong_Type, &rx, &PyLong_Type, &tx,
			      &PyLong_Type, &pool, &PyLong_Type, &npool, &pool_cap, &tx_size, &rx_size, &rx_count,
			      &max_payload, &PyLong_Type, &out, &PyLong_Type, &lens, &out_cap, &kick_fd, &lock,
			      &PyDict_Type, &cache, &ring, &pool_obj, &device, &remote))
		return NULL;
	if (kick_fd < 0 || rx_count == 0 || out_cap < HDR ||
	    (!remote && (tx_size < HDR || rx_size < HDR || out_cap < rx_size)) ||
	    (remote && max_payload > RPF_DEV_MAX)) {
		PyErr_SetString(PyExc_ValueError, "attach: a kick eventfd, buffers of at least 16 bytes and a batch "
						  "buffer holding one are needed");
		return NULL;
	}
	PyObject *acquire = PyObject_GetAttrString(lock, "acquire");
	PyObject *release = acquire ? PyObject_GetAttrString(lock, "release") : NULL;
	if (!release) {
		Py_XDECREF(acquire);
		return NULL;
	}
	int open = g->open;
	gate_drop_rings(g);
	g->rx = as_ptr(rx);
	g->tx = as_ptr(tx);
	g->pool = as_ptr(pool);
	g->npool = as_ptr(npool);
	g->out = as_ptr(out);
	g->lens = as_ptr(lens);
	if (PyErr_Occurred()) {
		Py_DECREF(acquire);
		Py_DECREF(release);
		return NULL;
	}
	g->pool_cap = pool_cap;
	g->tx_size = tx_size;
	g->rx_size = rx_size;
	g->rx_count = rx_count;
	g->max_payload = max_payload;
	g->out_cap = out_cap;
	g->kick_fd = kick_fd;
	g->acquire = acquire;
	g->release = release;
	Py_INCREF(cache);
	g->trace_cache = cache;
	Py_INCREF(ring);
	g->pool_ring = ring;
	Py_INCREF(pool_obj);
	g->pool_obj = pool_obj;
	Py_INCREF(device);
	g->device = device;
	g->remote = remote;
	g->attached = 1;
	g->open = open;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(gate_set_wait_doc,
	     "set_wait(poll_fd, kick_fd, wake_fd, current_thread, changed)\n\n"
	     "Let a blocking receive (wait mode block, no timeout) sleep in C, as the Python path's wait does: on "
	     "poll_fd (the doorbell's descriptor) and wake_fd, the kick read from kick_fd; it owns the doorbell "
	     "meanwhile (device._doorbell_owner = current_thread()) and notifies `changed` when it leaves. After "
	     "attach.");

static PyObject *gate_set_wait(Gate *g, PyObject *args)
{
	int poll_fd, kick_fd, wake_fd;
	PyObject *current_thread, *changed;
	if (!PyArg_ParseTuple(args, "iiiOO:set_wait", &poll_fd, &kick_fd, &wake_fd, &current_thread, &changed))
		return NULL;
	if (!g->attached || poll_fd < 0 || wake_fd < 0) {
		PyErr_SetString(PyExc_ValueError, "set_wait: attach first, with the doorbell's and the wake descriptors");
		return NULL;
	}
	Py_INCREF(current_thread);
	Py_XSETREF(g->current_thread, current_thread);
	Py_INCREF(changed);
	Py_XSETREF(g->changed, changed);
	g->poll_fd = poll_fd;
	g->wait_kick_fd = kick_fd;
	g->wake_fd = wake_fd;
	Py_RETURN_NONE;
}

static PyTypeObject TxBufferBaseType;

PyDoc_STRVAR(gate_set_zero_copy_doc,
	     "set_zero_copy(tx_view, tx_lo, txbuf_type)\n\n"
	     "Let get_buffer/send_buffer run in C (host, after attach): tx_view is a writable memoryview of the send "
	     "buffers starting at device address tx_lo; get_buffer returns txbuf_type instances (a subclass of "
	     "TxBufferBase), their view a slice of tx_view.");

static PyObject *gate_set_zero_copy(Gate *g, PyObject *args)
{
	PyObject *view;
	unsigned long long lo;
	PyTypeObject *type;
	if (!PyArg_ParseTuple(args, "O!KO!:set_zero_copy", &PyMemoryView_Type, &view, &lo, &PyType_Type, &type))
		return NULL;
	if (!g->attached || g->remote || !PyType_IsSubtype(type, &TxBufferBaseType)) {
		PyErr_SetString(PyExc_ValueError, "set_zero_copy: attach the host's C path first, with a TxBufferBase "
						  "subclass");
		return NULL;
	}
	Py_INCREF(view);
	Py_XSETREF(g->tx_view, view);
	Py_INCREF(type);
	Py_XSETREF(g->txbuf_type, type);
	g->tx_lo = lo;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(gate_detach_doc, "detach()\n\nForget the C path (closes the gate): nothing it pointed at is used again.");

static PyObject *gate_detach(Gate *g, PyObject *unused)
{
	(void)unused;
	gate_drop(g);
	Py_RETURN_NONE;
}

static int gate_set_open(Gate *g, PyObject *value, void *closure)
{
	(void)closure;
	if (!value) {
		PyErr_SetString(PyExc_AttributeError, "open cannot be deleted");
		return -1;
	}
	int v = PyObject_IsTrue(value);
	if (v < 0)
		return -1;
	g->open = v && g->attached; /* never open without rings to use */
	return 0;
}

static PyObject *gate_get_open(Gate *g, void *closure)
{
	(void)closure;
	return PyBool_FromLong(g->open);
}

static PyMethodDef gate_methods[] = {
	{ "attach", (PyCFunction)gate_attach, METH_VARARGS, gate_attach_doc },
	{ "detach", (PyCFunction)gate_detach, METH_NOARGS, gate_detach_doc },
	{ "set_wait", (PyCFunction)gate_set_wait, METH_VARARGS, gate_set_wait_doc },
	{ "set_zero_copy", (PyCFunction)gate_set_zero_copy, METH_VARARGS, gate_set_zero_copy_doc },
	{ NULL, NULL, 0, NULL },
};

/* The int fields as T_INT: T_BOOL is a char, one byte of the int (the right one on little-endian hosts only). */
static PyMemberDef gate_members[] = {
	{ "block", T_INT, offsetof(Gate, block), 0, "wait mode is block" },
	{ "kicks_on", T_INT, offsetof(Gate, kicks_on), 0, "the peer was asked to kick us for new messages" },
	{ "attached", T_INT, offsetof(Gate, attached), READONLY, "a C path is attached" },
	{ "remote", T_INT, offsetof(Gate, remote), READONLY, "the attached C path is the remote role's" },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef gate_getset[] = {
	{ "open", (getter)gate_get_open, (setter)gate_set_open, "the C methods may be used (only once attached)",
	  NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyObject *gate_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	if (PyTuple_GET_SIZE(args) || (kw && PyDict_GET_SIZE(kw))) {
		PyErr_SetString(PyExc_TypeError, "Gate() takes no arguments");
		return NULL;
	}
	Gate *g = (Gate *)type->tp_alloc(type, 0);
	if (g) {
		g->kicks_on = 1;
		g->poll_fd = -1;
	}
	return (PyObject *)g;
}

static PyTypeObject GateType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rpmsg._endpoint_c.Gate",
	.tp_doc = PyDoc_STR("What the C endpoint methods of one device use: its rings and whether they may."),
	.tp_basicsize = sizeof(Gate),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_new = gate_new,
	.tp_dealloc = (destructor)gate_dealloc,
	.tp_traverse = (traverseproc)gate_traverse,
	.tp_clear = (inquiry)gate_clear,
	.tp_methods = gate_methods,
	.tp_members = gate_members,
	.tp_getset = gate_getset,
};

/* The device lock without waiting: 1 taken (*release: a reference to its release method, for unlock: Python
 * code run meanwhile, a user's channel callback or a signal handler, may detach the gate), 0 held by another
 * thread (or no lock attached), -1 error. */
static int lock_try(Gate *g, PyObject **release)
{
	if (!g->acquire || !g->release)
		return 0;
	PyObject *args[1] = { Py_False };
	PyObject *r = PyObject_Vectorcall(g->acquire, args, 1, NULL);
	if (!r)
		return -1;
	int taken = r == Py_True;
	Py_DECREF(r);
	if (taken)
		*release = Py_NewRef(g->release);
	return taken;
}

/* Release the lock (and the reference lock_try took); an exception already set survives it. */
static void unlock(PyObject *release)
{
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	PyObject *r = PyObject_Vectorcall(release, NULL, 0, NULL);
	if (r)
		Py_DECREF(r);
	else if (type)
		PyErr_Clear();
	if (type)
		PyErr_Restore(type, value, tb);
	Py_DECREF(release);
}

/* Usable before taking the lock: open, and no tracing (the logger's cache holds False for TRACE only when the
 * level was looked up and is off; anything else, the Python path asks the logger itself). */
static int gate_usable(Gate *g)
{
	if (!g->open)
		return 0;
	PyObject *v = PyDict_GetItemWithError(g->trace_cache, trace_key);
	if (v == Py_False)
		return 1;
	PyErr_Clear();
	return 0;
}

/* The kick the ring asked for when the C write could not be done: the device's own (which reports a peer that
 * left). 0, or -1 with an exception. */
static int kick_python(Gate *g, int queue)
{
	if (!g->device) {
		PyErr_SetString(PyExc_RuntimeError, "the rpmsg device let go of its C path during the call");
		return -1;
	}
	PyObject *q = PyLong_FromLong(queue);
	if (!q)
		return -1;
	PyObject *r = PyObject_CallMethodOneArg(g->device, s_kick, q);
	Py_DECREF(q);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

/* A failure code from the C path: the device reports it (always raises); the lock is released. */
static PyObject *failed(Gate *g, PyObject *method, int rc, PyObject *release)
{
	PyObject *code = g->device ? PyLong_FromLong(rc) : NULL;
	if (!g->device)
		PyErr_Format(PyExc_RuntimeError, "the C path failed with code %d", rc);
	if (code) {
		PyObject *r = PyObject_CallMethodOneArg(g->device, method, code);
		Py_DECREF(code);
		Py_XDECREF(r);
		if (r && !PyErr_Occurred())
			PyErr_Format(PyExc_RuntimeError, "the C path failed with code %d", rc);
	}
	unlock(release);
	return NULL;
}

/* --- EndpointBase: the C methods of rpmsg.device.Endpoint --------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	Gate *gate;       /* _gate */
	PyObject *addr;   /* addr: our address */
	PyObject *peer;   /* peer: where send goes (None: not connected) */
	PyObject *queue;  /* _queue: messages the Python path delivered here */
	char closed;      /* closed */
} EndpointBase;

static int ep_traverse(EndpointBase *e, visitproc visit, void *arg)
{
	Py_VISIT(e->gate);
	Py_VISIT(e->addr);
	Py_VISIT(e->peer);
	Py_VISIT(e->queue);
	return 0;
}

static int ep_clear(EndpointBase *e)
{
	Py_CLEAR(e->gate);
	Py_CLEAR(e->addr);
	Py_CLEAR(e->peer);
	Py_CLEAR(e->queue);
	return 0;
}

static void ep_dealloc(EndpointBase *e)
{
	PyObject_GC_UnTrack(e);
	ep_clear(e);
	Py_TYPE(e)->tp_free((PyObject *)e);
}

/* The Python method `name` of this endpoint with the arguments as given (keywords included). */
static PyObject *slow(EndpointBase *e, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	PyObject *stack[8];
	if (nargs + nkw + 1 > 8) {
		PyErr_SetString(PyExc_TypeError, "too many arguments");
		return NULL;
	}
	stack[0] = (PyObject *)e;
	for (Py_ssize_t i = 0; i < nargs + nkw; i++)
		stack[i + 1] = args[i];
	return PyObject_VectorcallMethod(name, stack, (size_t)(nargs + 1), kwnames);
}

static int u32_of(PyObject *v, uint32_t *out)
{
	if (!v || !PyLong_CheckExact(v))
		return 0;
	unsigned long x = PyLong_AsUnsignedLong(v);
	if (x == (unsigned long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	if (x > 0xffffffffUL)
		return 0;
	*out = (uint32_t)x;
	return 1;
}

/* Send `data` to `dst` in C; NULL with no exception set: the Python method's turn. */
static PyObject *send_c(EndpointBase *e, PyObject *data, PyObject *dst_obj, int *handled)
{
	Gate *g = e->gate;
	uint32_t src, dst;
	*handled = 0;
	if (!g || e->closed || !gate_usable(g) || !u32_of(e->addr, &src) || !u32_of(dst_obj, &dst))
		return NULL;
	Py_buffer b;
	if (PyObject_GetBuffer(data, &b, PyBUF_SIMPLE) < 0) {
		PyErr_Clear(); /* not a contiguous buffer: the Python path says what is wrong */
		return NULL;
	}
	if (b.len > (Py_ssize_t)g->max_payload) {
		PyBuffer_Release(&b);
		return NULL;
	}
	PyObject *release = NULL;
	int taken = lock_try(g, &release);
	if (taken <= 0) {
		PyBuffer_Release(&b);
		*handled = taken < 0;
		return NULL;
	}
	*handled = 1;
	/* host: the pool must be the one attached (a restart replaces it: the Python path rebinds); remote: a host
	 * buffer the Python path popped and kept (too small for its last send) goes first */
	PyObject *check = g->open ? PyObject_GetAttr(g->pool_ring, g->remote ? s_spare : s_pool_array) : NULL;
	int go = check && check == (g->remote ? Py_None : g->pool_obj);
	Py_XDECREF(check);
	PyErr_Clear();
	if (!go) {
		PyBuffer_Release(&b);
		unlock(release);
		*handled = 0;
		return NULL;
	}
	int rc = g->remote ? rpf_dev_send(g->tx, src, dst, b.buf, (uint32_t)b.len, g->kick_fd)
			   : rpf_send(g->tx, g->pool, g->npool, g->pool_cap, g->tx_size, src, dst, b.buf,
				      (uint32_t)b.len, g->kick_fd);
	Py_ssize_t len = b.len;
	PyBuffer_Release(&b);
	if (rc < 0 && rc != RPF_GENERAL)
		return failed(g, s_send_failed, rc, release);
	if (rc <= 0) { /* no buffer (the Python path waits for one), or a host buffer too small (it names it) */
		unlock(release);
		*handled = 0;
		return NULL;
	}
	/* the queue we sent on: vring 1 for the host, vring 0 for the remote */
	if ((rc & RPF_NOTIFY) && kick_python(g, g->remote ? 0 : 1) < 0) {
		unlock(release);
		return NULL;
	}
	unlock(release);
	return PyLong_FromSsize_t(len);
}

/* 1 if a receive with nothing waiting may sleep in C: block mode with the wait set, no timeout on the endpoint
 * and no other thread owning the doorbell (it then waits on the condition: the Python path); 0 if not; -1 error. */
static int may_sleep(Gate *g, EndpointBase *e)
{
	if (!g->block || g->poll_fd < 0 || !g->changed)
		return 0;
	PyObject *timeout = PyObject_GetAttr((PyObject *)e, s_timeout);
	if (!timeout)
		return -1;
	int none = timeout == Py_None;
	Py_DECREF(timeout);
	if (!none)
		return 0;
	PyObject *owner = PyObject_GetAttr(g->device, s_doorbell_owner);
	if (!owner)
		return -1;
	none = owner == Py_None;
	Py_DECREF(owner);
	return none;
}

/* Whether another thread owns the doorbell: it sleeps there with the peer's kicks asked for, so they must stay
 * on (docs/rpmsg.md, "Waking up"). An error counts as owned: leaving the kicks on is always safe. */
static int doorbell_owned(Gate *g)
{
	PyObject *owner = g->device ? PyObject_GetAttr(g->device, s_doorbell_owner) : NULL;
	if (!owner) {
		PyErr_Clear();
		return 1;
	}
	int owned = owner != Py_None;
	Py_DECREF(owner);
	return owned;
}

#define SLEEP_UNLOCKED -2 /* an error, and the lock is not held (interrupted while taking it back) */

/* Sleep on the doorbell without the lock and the GIL, as RpmsgDevice._doorbell_owned + _block do: own the
 * doorbell, release the lock, wait, take the lock back, disown, notify the condition. The wait's result
 * (RPF_KICKED, RPF_WOKEN, RPF_DOORBELL, RPF_EINTR after the signal handlers ran), -1 on an error with the lock
 * held, SLEEP_UNLOCKED on an error without it. */
static int sleep_c(Gate *g, PyObject *release)
{
	/* Our own references: a signal handler or another thread may detach the gate while we sleep. */
	if (!g->acquire || !g->device || !g->changed || !g->current_thread)
		return RPF_DOORBELL; /* nothing to sleep with: the Python path */
	PyObject *acquire = Py_NewRef(g->acquire), *device = Py_NewRef(g->device);
	PyObject *changed = Py_NewRef(g->changed), *current_thread = Py_NewRef(g->current_thread);
	int poll_fd = g->poll_fd, kick_fd = g->wait_kick_fd, wake_fd = g->wake_fd;
	struct rp_vq *rx = g->rx;
	int woke = -1;
	PyObject *me = PyObject_CallNoArgs(current_thread);
	if (!me)
		goto out;
	int rc = PyObject_SetAttr(device, s_doorbell_owner, me);
	Py_DECREF(me);
	if (rc < 0)
		goto out;
	PyObject *r = PyObject_Vectorcall(release, NULL, 0, NULL);
	if (!r) {
		if (PyObject_SetAttr(device, s_doorbell_owner, Py_None) < 0)
			PyErr_Clear();
		goto out;
	}
	Py_DECREF(r);
	int waited;
	Py_BEGIN_ALLOW_THREADS
	waited = rpf_wait(rx, 0, poll_fd, kick_fd, wake_fd, -1);
	Py_END_ALLOW_THREADS
	r = PyObject_Vectorcall(acquire, NULL, 0, NULL);
	if (!r) { /* a signal handler raised while we waited for the lock: give the doorbell up without it */
		PyObject *type, *value, *tb;
		PyErr_Fetch(&type, &value, &tb);
		if (PyObject_SetAttr(device, s_doorbell_owner, Py_None) < 0)
			PyErr_Clear();
		PyErr_Restore(type, value, tb);
		woke = SLEEP_UNLOCKED;
		goto out;
	}
	Py_DECREF(r);
	if (PyObject_SetAttr(device, s_doorbell_owner, Py_None) < 0)
		goto out;
	r = PyObject_CallMethodNoArgs(changed, s_notify_all);
	if (!r)
		goto out;
	Py_DECREF(r);
	if (waited == RPF_EINTR && PyErr_CheckSignals() < 0)
		goto out;
	woke = waited;
out:
	Py_DECREF(acquire);
	Py_DECREF(device);
	Py_DECREF(changed);
	Py_DECREF(current_thread);
	return woke;
}

/* Take one message for this endpoint in C: bytes (or (bytes, src)); NULL with no exception: the Python
 * method's turn (what was taken in meanwhile is delivered to the queues first). */
static PyObject *recv_c(EndpointBase *e, Py_ssize_t bufsize, int with_src, int *handled)
{
	Gate *g = e->gate;
	uint32_t addr;
	*handled = 0;
	if (!g || e->closed || bufsize < 0 || !gate_usable(g) || !u32_of(e->addr, &addr) || !e->queue)
		return NULL;
	Py_ssize_t queued = PyObject_Length(e->queue);
	if (queued != 0) {
		if (queued < 0)
			PyErr_Clear();
		return NULL;
	}
	PyObject *release = NULL;
	int taken = lock_try(g, &release);
	if (taken <= 0) {
		*handled = taken < 0;
		return NULL;
	}
	*handled = 1;
	if (!g->open) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	/* As the Python path: block mode turns the peer's kicks off while we look, and on (looking once more)
	 * before sleeping; but never while another thread sleeps on the doorbell (it would sleep through every
	 * message: issue 17's lost wake-up). Only checked when the kicks are on: not in a lone receiver's loop. */
	int arm = g->block && g->kicks_on && !doorbell_owned(g) ? -1 : 0;
	int rc;
	for (;;) {
		rc = g->remote ? rpf_dev_recv(g->rx, g->out, g->out_cap, g->lens, g->rx_count, arm, g->kick_fd)
			       : rpf_recv(g->rx, g->out, g->out_cap, g->lens, g->rx_count, g->rx_size, arm);
		if (rc < 0 && rc != RPF_GENERAL)
			return failed(g, s_recv_failed, rc, release);
		if (arm) /* what the ring says: asking (arm > 0) that found messages first left the kicks off */
			g->kicks_on = !g->rx->suppressed;
		if (rc > 0)
			break;
		int may = rc == 0 ? may_sleep(g, e) : 0;
		if (may <= 0) { /* the Python path: it waits (with a timeout, spinning, or on the condition), or
				 * takes a message larger than the batch buffer (remote) */
			unlock(release);
			*handled = may < 0;
			return NULL;
		}
		if (arm <= 0) {
			arm = 1;
			continue;
		}
		int woke = sleep_c(g, release);
		if (woke == SLEEP_UNLOCKED) {
			Py_DECREF(release);
			return NULL;
		}
		if (woke < 0) {
			unlock(release);
			return NULL;
		}
		queued = PyObject_Length(e->queue);
		if (queued != 0 || woke == RPF_DOORBELL || !g->open || e->closed) {
			/* another thread delivered ours, the doorbell needs its own look (the peer's end?), or the device
			 * changed: the Python path */
			if (queued < 0)
				PyErr_Clear();
			unlock(release);
			*handled = 0;
			return NULL;
		}
		arm = -1; /* we held the doorbell and hold the lock again: nobody else sleeps on it */
	}
	if (rc & RPF_NOTIFY) { /* the peer wants to hear of the buffers re-posted (host) or given back (remote) */
		uint64_t one = 1;
		/* rpf_dev_recv already tried the eventfd: NOTIFY left means the device's own kick */
		if ((g->remote || write(g->kick_fd, &one, 8) != 8) && kick_python(g, g->remote ? 1 : 0) < 0) {
			unlock(release);
			return NULL;
		}
	}
	int n = rc & 0xffff;
	if (n == 1 && g->lens[0] >= HDR) {
		const uint8_t *p = g->out;
		uint32_t src = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		uint32_t dst = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		uint32_t len = (uint32_t)p[12] | (uint32_t)p[13] << 8;
		/* the same checks as HostFastPath.single; anything else the general parser delivers or drops */
		if (dst == addr && len <= g->lens[0] - HDR) {
			Py_ssize_t take = (Py_ssize_t)len < bufsize ? (Py_ssize_t)len : bufsize;
			PyObject *data = PyBytes_FromStringAndSize((const char *)p + HDR, take);
			unlock(release);
			if (!data || !with_src)
				return data;
			return Py_BuildValue("(NI)", data, (unsigned int)src);
		}
	}
	if (!g->device) {
		PyErr_SetString(PyExc_RuntimeError, "the rpmsg device let go of its C path during the call");
		unlock(release);
		return NULL;
	}
	PyObject *count = PyLong_FromLong(n);
	PyObject *r = count ? PyObject_CallMethodOneArg(g->device, s_take_batch, count) : NULL;
	Py_XDECREF(count);
	unlock(release);
	if (!r)
		return NULL;
	Py_DECREF(r);
	*handled = 0;
	return NULL;
}

static PyObject *ep_send(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	if (nargs == 1 && !kwnames) {
		int handled;
		PyObject *r = send_c(e, args[0], e->peer, &handled);
		if (r || handled)
			return r;
	}
	return slow(e, s_send_py, args, nargs, kwnames);
}

static PyObject *ep_sendto(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	if (nargs == 2 && !kwnames) {
		int handled;
		PyObject *r = send_c(e, args[0], args[1], &handled);
		if (r || handled)
			return r;
	}
	return slow(e, s_sendto_py, args, nargs, kwnames);
}

static PyObject *recv_entry(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
			    int with_src, PyObject *name)
{
	if (nargs <= 1 && !kwnames) {
		Py_ssize_t bufsize = 1 << 16;
		if (nargs == 1) {
			bufsize = PyLong_CheckExact(args[0]) ? PyLong_AsSsize_t(args[0]) : -1;
			if (bufsize == -1)
				PyErr_Clear(); /* not a plain int: the Python path's conversion decides */
		}
		int handled;
		PyObject *r = recv_c(e, bufsize, with_src, &handled);
		if (r || handled)
			return r;
	}
	return slow(e, name, args, nargs, kwnames);
}

static PyObject *ep_recv(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return recv_entry(e, args, nargs, kwnames, 0, s_recv_py);
}

static PyObject *ep_recvfrom(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return recv_entry(e, args, nargs, kwnames, 1, s_recvfrom_py);
}

/* --- TxBufferBase: the fields of rpmsg.core.TxBuffer, so that get_buffer can make one without Python ------- */

typedef struct {
	PyObject_HEAD
	unsigned long long addr; /* the buffer's device address (its header; the payload follows) */
	PyObject *view;          /* writable view of the payload, released once sent; made on first use when
				  * `region` is set (C-made buffers: no view per message unless asked for) */
	unsigned int capacity;   /* payload bytes it holds */
	PyObject *token;
	char done;               /* sent or given back */
	PyObject *region;        /* C-made: the gate's view of the send buffers, the payload at `offset` in it */
	Py_ssize_t offset;
} TxBufferBase;

static int txb_traverse(TxBufferBase *b, visitproc visit, void *arg)
{
	Py_VISIT(b->view);
	Py_VISIT(b->token);
	Py_VISIT(b->region);
	return 0;
}

static int txb_clear(TxBufferBase *b)
{
	Py_CLEAR(b->view);
	Py_CLEAR(b->token);
	Py_CLEAR(b->region);
	return 0;
}

static void txb_dealloc(TxBufferBase *b)
{
	PyObject_GC_UnTrack(b);
	txb_clear(b);
	Py_TYPE(b)->tp_free((PyObject *)b);
}

/* Mark sent and release the view if one was made (a late write through it then raises instead of changing a
 * buffer the peer reads; a write through the buffer itself checks `done`). */
static int txb_finish(TxBufferBase *b)
{
	b->done = 1;
	if (!b->view || b->view == Py_None)
		return 0;
	PyObject *r = PyObject_CallMethodNoArgs(b->view, s_release);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

static PyObject *txb_finish_method(TxBufferBase *b, PyObject *unused)
{
	(void)unused;
	if (txb_finish(b) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *txb_get_view(TxBufferBase *b, void *closure)
{
	(void)closure;
	if (!b->view && b->region) {
		PyObject *lo = PyLong_FromSsize_t(b->offset);
		PyObject *hi = PyLong_FromSsize_t(b->offset + (Py_ssize_t)b->capacity);
		PyObject *slice = lo && hi ? PySlice_New(lo, hi, NULL) : NULL;
		Py_XDECREF(lo);
		Py_XDECREF(hi);
		if (!slice)
			return NULL;
		b->view = PyObject_GetItem(b->region, slice);
		Py_DECREF(slice);
		if (!b->view)
			return NULL;
		if (b->done && txb_finish(b) < 0) /* asked for after it was sent: released, as the old one was */
			return NULL;
	}
	return Py_NewRef(b->view ? b->view : Py_None);
}

static int txb_set_view(TxBufferBase *b, PyObject *value, void *closure)
{
	(void)closure;
	Py_XINCREF(value);
	Py_XSETREF(b->view, value);
	Py_CLEAR(b->region); /* a view set from Python is where the payload is written */
	return 0;
}

/* buf[i] = v, buf[a:b] = data: straight into shared memory (C-made buffers), else through the view; refused
 * once sent. */
static int txb_ass_subscript(TxBufferBase *b, PyObject *key, PyObject *value)
{
	if (!value) {
		PyErr_SetString(PyExc_TypeError, "a TX buffer's bytes cannot be deleted");
		return -1;
	}
	if (b->done) {
		PyErr_SetString(PyExc_ValueError, "this TX buffer was sent or given back: take another (get_buffer)");
		return -1;
	}
	Py_ssize_t start, stop, step, len;
	int index = PyIndex_Check(key);
	if (!b->region || !(index || PySlice_Check(key))) {
		PyObject *view = txb_get_view(b, NULL);
		int r = view && view != Py_None ? PyObject_SetItem(view, key, value) : -1;
		if (view == Py_None)
			PyErr_SetString(PyExc_ValueError, "this TX buffer has no view");
		Py_XDECREF(view);
		return r;
	}
	if (index) {
		start = PyNumber_AsSsize_t(key, PyExc_IndexError);
		if (start == -1 && PyErr_Occurred())
			return -1;
		if (start < 0)
			start += b->capacity;
		if (start < 0 || start >= (Py_ssize_t)b->capacity) {
			PyErr_Format(PyExc_IndexError, "index out of this TX buffer's %u bytes", b->capacity);
			return -1;
		}
		stop = start + 1;
		step = 1;
	} else {
		if (PySlice_Unpack(key, &start, &stop, &step) < 0)
			return -1;
		PySlice_AdjustIndices(b->capacity, &start, &stop, step);
		if (step != 1) { /* strided: the view does it */
			PyObject *view = txb_get_view(b, NULL);
			int r = view ? PyObject_SetItem(view, key, value) : -1;
			Py_XDECREF(view);
			return r;
		}
	}
	len = stop > start ? stop - start : 0;
	Py_buffer src = { 0 };
	uint8_t byte;
	const void *from;
	if (index) {
		if (!PyLong_Check(value)) { /* as a memoryview of bytes says */
			PyErr_SetString(PyExc_TypeError, "a TX buffer's byte must be an int");
			return -1;
		}
		long v = PyLong_AsLong(value);
		if ((v == -1 && PyErr_Occurred()) || v < 0 || v > 255) {
			PyErr_Clear();
			PyErr_SetString(PyExc_ValueError, "a TX buffer's byte must be an int in range(256)");
			return -1;
		}
		byte = (uint8_t)v;
		from = &byte;
	} else {
		if (PyObject_GetBuffer(value, &src, PyBUF_SIMPLE) < 0)
			return -1;
		if (src.len != len) {
			PyErr_Format(PyExc_ValueError, "%zd bytes do not fill the %zd-byte slice of this TX buffer", src.len,
				     len);
			PyBuffer_Release(&src);
			return -1;
		}
		from = src.buf;
	}
	Py_buffer region;
	if (PyObject_GetBuffer(b->region, &region, PyBUF_WRITABLE) < 0) { /* the device let go of the memory */
		if (!index)
			PyBuffer_Release(&src);
		return -1;
	}
	int r = 0;
	if (b->offset < 0 || b->offset + (Py_ssize_t)b->capacity > region.len) {
		PyErr_SetString(PyExc_ValueError, "this TX buffer lies outside the send buffers");
		r = -1;
	} else if (len) {
		memcpy((uint8_t *)region.buf + b->offset + start, from, (size_t)len);
	}
	PyBuffer_Release(&region);
	if (!index)
		PyBuffer_Release(&src);
	return r;
}

static Py_ssize_t txb_length(TxBufferBase *b)
{
	return (Py_ssize_t)b->capacity;
}

static PyMappingMethods txb_as_mapping = {
	.mp_length = (lenfunc)txb_length,
	.mp_ass_subscript = (objobjargproc)txb_ass_subscript,
};

static PyMethodDef txb_methods[] = {
	{ "_finish", (PyCFunction)txb_finish_method, METH_NOARGS,
	  PyDoc_STR("_finish()\n\nMark the buffer sent (or given back) and release its view.") },
	{ NULL, NULL, 0, NULL },
};

static PyMemberDef txb_members[] = {
	{ "addr", T_ULONGLONG, offsetof(TxBufferBase, addr), 0, "the buffer's device address" },
	{ "capacity", T_UINT, offsetof(TxBufferBase, capacity), 0, "payload bytes it holds" },
	{ "token", T_OBJECT, offsetof(TxBufferBase, token), 0, "the core's cookie" },
	{ "done", T_BOOL, offsetof(TxBufferBase, done), 0, "sent or given back" },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef txb_getset[] = {
	{ "view", (getter)txb_get_view, (setter)txb_set_view,
	  "writable view of the payload (released once sent; made on first use)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject TxBufferBaseType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rpmsg._endpoint_c.TxBufferBase",
	.tp_doc = PyDoc_STR("The fields of rpmsg.core.TxBuffer (its base class)."),
	.tp_basicsize = sizeof(TxBufferBase),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_new = PyType_GenericNew,
	.tp_dealloc = (destructor)txb_dealloc,
	.tp_traverse = (traverseproc)txb_traverse,
	.tp_clear = (inquiry)txb_clear,
	.tp_methods = txb_methods,
	.tp_members = txb_members,
	.tp_getset = txb_getset,
	.tp_as_mapping = &txb_as_mapping,
};

/* Point `b` at the free send buffer `addr` (a C-made buffer: writes go straight to shared memory). */
static void txb_arm(Gate *g, TxBufferBase *b, uint64_t addr)
{
	b->addr = addr;
	b->offset = (Py_ssize_t)(addr - g->tx_lo + HDR);
	b->capacity = g->max_payload;
	b->done = 0;
	Py_CLEAR(b->view);
	Py_INCREF(g->tx_view);
	Py_XSETREF(b->region, g->tx_view);
}

/* A send buffer for a zero-copy send (host): rpf_take, then a TxBuffer over it; NULL with no exception: the
 * Python method's turn (no buffer free: it waits; the pool replaced; anything the gate does not allow). */
static PyObject *get_buffer_c(EndpointBase *e, int *handled)
{
	Gate *g = e->gate;
	*handled = 0;
	if (!g || e->closed || g->remote || !g->txbuf_type || !g->tx_view || !gate_usable(g))
		return NULL;
	PyObject *release = NULL;
	int taken = lock_try(g, &release);
	if (taken <= 0) {
		*handled = taken < 0;
		return NULL;
	}
	*handled = 1;
	PyObject *check = g->open && g->txbuf_type ? PyObject_GetAttr(g->pool_ring, s_pool_array) : NULL;
	int go = check && check == g->pool_obj;
	Py_XDECREF(check);
	PyErr_Clear();
	if (!go) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	uint64_t addr = 0;
	int rc = rpf_take(g->tx, g->pool, g->npool, g->pool_cap, &addr);
	if (rc < 0)
		return failed(g, s_send_failed, rc, release);
	if (rc == 0) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	TxBufferBase *b = (TxBufferBase *)g->txbuf_type->tp_alloc(g->txbuf_type, 0);
	if (!b) {
		g->pool[(*g->npool)++] = addr; /* back to the pool: the pop above is undone */
		unlock(release);
		return NULL;
	}
	txb_arm(g, b, addr);
	b->token = Py_NewRef(Py_None);
	unlock(release);
	return (PyObject *)b;
}

/* Send a filled TxBuffer in C; NULL with no exception: the Python method's turn (it raises what is wrong). */
static PyObject *send_buffer_c(EndpointBase *e, PyObject *buf, PyObject *length, PyObject *dst_obj, int reuse,
			       int *handled)
{
	Gate *g = e->gate;
	uint32_t src, dst, len;
	*handled = 0;
	if (!g || e->closed || g->remote || !g->txbuf_type || !gate_usable(g) || !u32_of(e->addr, &src) ||
	    !u32_of(dst_obj, &dst) || !u32_of(length, &len) || !PyObject_TypeCheck(buf, &TxBufferBaseType))
		return NULL;
	TxBufferBase *b = (TxBufferBase *)buf;
	if (b->done || len > b->capacity)
		return NULL;
	PyObject *release = NULL;
	int taken = lock_try(g, &release);
	if (taken <= 0) {
		*handled = taken < 0;
		return NULL;
	}
	*handled = 1;
	int go = g->open && !b->done;
	if (go && reuse) { /* re-arming takes from the pool: it must be the one attached (as get_buffer) */
		PyObject *pool = g->tx_view ? PyObject_GetAttr(g->pool_ring, s_pool_array) : NULL;
		go = pool && pool == g->pool_obj;
		Py_XDECREF(pool);
		PyErr_Clear();
	}
	if (!go) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	if (txb_finish(b) < 0) {
		unlock(release);
		return NULL;
	}
	int rc = rpf_send_buffer(g->tx, b->addr, g->tx_size, src, dst, len, 0, g->kick_fd);
	if (rc < 0)
		return failed(g, s_send_failed, rc, release);
	if ((rc & RPF_NOTIFY) && kick_python(g, 1) < 0) {
		unlock(release);
		return NULL;
	}
	if (!reuse) {
		unlock(release);
		Py_RETURN_NONE;
	}
	/* send_buffer_reuse: the same object, re-armed with a buffer free now (never waits for one) */
	uint64_t addr = 0;
	rc = g->attached && g->tx_view ? rpf_take(g->tx, g->pool, g->npool, g->pool_cap, &addr) : 0;
	if (rc < 0)
		return failed(g, s_send_failed, rc, release);
	if (rc)
		txb_arm(g, b, addr);
	unlock(release);
	return PyBool_FromLong(rc);
}

/* Send a list or tuple of bytes to `dst` in C: rpf_put (or rpf_dev_put) each while buffers are free, then one
 * flush (publish, at most one kick). Returns how many went (k); the rest, if any, is the Python method's:
 * `_send_many_py(rest, dst, k)`, which waits for buffers as the endpoint's timeout says. NULL with no exception:
 * the Python method's turn for all of it (not a list/tuple of bytes, one too long, the gate closed). */
static PyObject *send_many_c(EndpointBase *e, PyObject *msgs, PyObject *dst_obj, Py_ssize_t *sent, int *handled)
{
	Gate *g = e->gate;
	uint32_t src, dst;
	*handled = 0;
	*sent = 0;
	if (!g || e->closed || !gate_usable(g) || !u32_of(e->addr, &src) || !u32_of(dst_obj, &dst) ||
	    !(PyList_CheckExact(msgs) || PyTuple_CheckExact(msgs)))
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(msgs);
	PyObject **items = PySequence_Fast_ITEMS(msgs);
	for (Py_ssize_t i = 0; i < n; i++) /* checked before anything is sent: all or nothing for bad input */
		if (!PyBytes_CheckExact(items[i]) || PyBytes_GET_SIZE(items[i]) > (Py_ssize_t)g->max_payload)
			return NULL;
	PyObject *release = NULL;
	int taken = lock_try(g, &release);
	if (taken <= 0) {
		*handled = taken < 0;
		return NULL;
	}
	*handled = 1;
	PyObject *check = g->open ? PyObject_GetAttr(g->pool_ring, g->remote ? s_spare : s_pool_array) : NULL;
	int go = check && check == (g->remote ? Py_None : g->pool_obj);
	Py_XDECREF(check);
	PyErr_Clear();
	if (!go) {
		unlock(release);
		*handled = 0;
		return NULL;
	}
	/* the list cannot change meanwhile: no Python code runs until the flush */
	Py_ssize_t k = 0;
	int rc = 0;
	for (; k < n; k++) {
		PyObject *m = items[k];
		const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(m);
		uint32_t len = (uint32_t)PyBytes_GET_SIZE(m);
		rc = g->remote ? rpf_dev_put(g->tx, src, dst, p, len)
			       : rpf_put(g->tx, g->pool, g->npool, g->pool_cap, g->tx_size, src, dst, p, len);
		if (rc <= 0 || rc == RPF_GENERAL)
			break;
	}
	if (rc < 0 && rc != RPF_GENERAL)
		return failed(g, s_send_failed, rc, release);
	if (k > 0) {
		rc = g->remote ? rpf_dev_flush(g->tx, g->kick_fd) : rpf_flush(g->tx, g->kick_fd);
		if (rc < 0)
			return failed(g, s_send_failed, rc, release);
		if ((rc & RPF_NOTIFY) && kick_python(g, g->remote ? 0 : 1) < 0) {
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

static PyObject *ep_send_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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

static PyObject *ep_get_buffer(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	if (nargs == 0 && !kwnames) {
		int handled;
		PyObject *r = get_buffer_c(e, &handled);
		if (r || handled)
			return r;
	}
	return slow(e, s_get_buffer_py, args, nargs, kwnames);
}

static PyObject *send_buffer_entry(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
				   int reuse, PyObject *name)
{
	if ((nargs == 2 || nargs == 3) && !kwnames) {
		int handled;
		PyObject *dst = nargs == 3 && args[2] != Py_None ? args[2] : e->peer;
		PyObject *r = send_buffer_c(e, args[0], args[1], dst ? dst : Py_None, reuse, &handled);
		if (r || handled)
			return r;
	}
	return slow(e, name, args, nargs, kwnames);
}

static PyObject *ep_send_buffer(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return send_buffer_entry(e, args, nargs, kwnames, 0, s_send_buffer_py);
}

static PyObject *ep_send_buffer_reuse(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return send_buffer_entry(e, args, nargs, kwnames, 1, s_send_buffer_reuse_py);
}

/* After recvfrom_many's first message: take more for this endpoint in C while what rpf_recv (rpf_dev_recv)
 * brings in is only well-formed messages for it; 1 when done, 0 when the Python method's _take_waiting must go
 * on (a message queued, a batch with others' messages (delivered to the queues here, as recv_c does), the lock
 * held elsewhere, the gate closed), -1 on an error (the list keeps what it holds: the caller returns it). A
 * broken ring ends the batch quietly: the next receive reports it, nothing taken is lost. */
static int take_more_c(EndpointBase *e, PyObject *out, Py_ssize_t max, Py_ssize_t bufsize)
{
	Gate *g = e->gate;
	uint32_t addr;
	while (PyList_GET_SIZE(out) < max) {
		if (!g || e->closed || !gate_usable(g) || !u32_of(e->addr, &addr) || !e->queue)
			return 0;
		Py_ssize_t queued = PyObject_Length(e->queue);
		if (queued != 0) {
			PyErr_Clear();
			return 0;
		}
		PyObject *release = NULL;
		int taken = lock_try(g, &release);
		if (taken <= 0)
			return taken;
		if (!g->open) {
			unlock(release);
			return 0;
		}
		Py_ssize_t want = max - PyList_GET_SIZE(out);
		uint32_t count = want < (Py_ssize_t)g->rx_count ? (uint32_t)want : g->rx_count;
		int rc = g->remote ? rpf_dev_recv(g->rx, g->out, g->out_cap, g->lens, count, 0, g->kick_fd)
				   : rpf_recv(g->rx, g->out, g->out_cap, g->lens, count, g->rx_size, 0);
		if (rc == RPF_GENERAL) {
			unlock(release);
			return 0;
		}
		if (rc <= 0) { /* nothing more, or a broken ring: reported by the next receive */
			unlock(release);
			return 1;
		}
		if (rc & RPF_NOTIFY) {
			uint64_t one = 1;
			if ((g->remote || write(g->kick_fd, &one, 8) != 8) && kick_python(g, g->remote ? 1 : 0) < 0)
				PyErr_Clear(); /* the device failed: the next call says so */
		}
		int n = rc & 0xffff, mine = 1;
		uint32_t pos = 0;
		for (int i = 0; i < n && mine; pos += g->lens[i], i++) {
			const uint8_t *p = g->out + pos;
			if (g->lens[i] < HDR) { /* not even a header: the parser drops it */
				mine = 0;
				break;
			}
			uint32_t dst = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
			uint32_t len = (uint32_t)p[12] | (uint32_t)p[13] << 8;
			mine = dst == addr && len <= g->lens[i] - HDR; /* the checks of recv_c */
		}
		if (!mine) { /* the device's parser delivers the batch (ours to our queue); _take_waiting goes on */
			PyObject *cnt = PyLong_FromLong(n);
			PyObject *r = cnt && g->device ? PyObject_CallMethodOneArg(g->device, s_take_batch, cnt) : NULL;
			Py_XDECREF(cnt);
			unlock(release);
			if (!r)
				return -1;
			Py_DECREF(r);
			return 0;
		}
		pos = 0;
		for (int i = 0; i < n; pos += g->lens[i], i++) {
			const uint8_t *p = g->out + pos;
			uint32_t src = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
			uint32_t len = (uint32_t)p[12] | (uint32_t)p[13] << 8;
			Py_ssize_t take = (Py_ssize_t)len < bufsize ? (Py_ssize_t)len : bufsize;
			PyObject *item = Py_BuildValue("(y#I)", (const char *)p + HDR, take, (unsigned int)src);
			if (!item || PyList_Append(out, item) < 0) {
				Py_XDECREF(item);
				unlock(release);
				return -1; /* (memory) what was appended is returned */
			}
			Py_DECREF(item);
		}
		unlock(release);
	}
	return 1;
}

static PyObject *ep_recvfrom_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	Py_ssize_t max = 64, bufsize = 1 << 16;
	int plain = nargs <= 2 && !kwnames;
	if (plain && nargs >= 1)
		plain = PyLong_CheckExact(args[0]) && (max = PyLong_AsSsize_t(args[0])) >= 1;
	if (plain && nargs == 2)
		plain = PyLong_CheckExact(args[1]) && (bufsize = PyLong_AsSsize_t(args[1])) >= 0;
	PyErr_Clear();
	if (!plain)
		return slow(e, s_recvfrom_many_py, args, nargs, kwnames);
	PyObject *out = PyList_New(0);
	if (!out)
		return NULL;
	/* What is there already, in C (a batch of ours at once); nothing: wait for one as recvfrom does, then more */
	int done = take_more_c(e, out, max, bufsize);
	if (done >= 0 && PyList_GET_SIZE(out) == 0) {
		int handled = 0;
		PyObject *first = done ? recv_c(e, bufsize, 1, &handled) : NULL;
		if (!first) {
			Py_DECREF(out);
			if (handled)
				return NULL;
			return slow(e, s_recvfrom_many_py, args, nargs, kwnames);
		}
		if (PyList_Append(out, first) < 0) {
			Py_DECREF(first);
			Py_DECREF(out);
			return NULL;
		}
		Py_DECREF(first);
		done = take_more_c(e, out, max, bufsize);
	}
	if (done < 0 && PyList_GET_SIZE(out) == 0) {
		Py_DECREF(out);
		return NULL;
	}
	if (!done && PyList_GET_SIZE(out) < max) {
		PyObject *dev = PyObject_GetAttr((PyObject *)e, s_device);
		PyObject *lim = PyLong_FromSsize_t(max), *bs = PyLong_FromSsize_t(bufsize);
		PyObject *r = dev && lim && bs ? PyObject_CallMethodObjArgs(dev, s_take_waiting, (PyObject *)e, out, lim, bs, NULL)
					      : NULL;
		Py_XDECREF(dev);
		Py_XDECREF(lim);
		Py_XDECREF(bs);
		if (!r) {
			Py_DECREF(out);
			return NULL;
		}
		Py_DECREF(r);
	}
	return out;
}

static PyMethodDef ep_methods[] = {
	{ "send", (PyCFunction)(void (*)(void))ep_send, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send(data) -> int\n\nSend to the connected peer (see connect); returns len(data).") },
	{ "sendto", (PyCFunction)(void (*)(void))ep_sendto, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("sendto(data, dst) -> int\n\nSend to address dst; returns len(data).") },
	{ "recv", (PyCFunction)(void (*)(void))ep_recv, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recv(bufsize=65536) -> bytes\n\nThe next message (at most bufsize bytes of it).") },
	{ "recvfrom", (PyCFunction)(void (*)(void))ep_recvfrom, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recvfrom(bufsize=65536) -> (bytes, src)\n\nThe next message and its source address.") },
	{ "send_many", (PyCFunction)(void (*)(void))ep_send_many, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send_many(messages, dst=None) -> int\n\nSend each message in order, one publish and at most "
		    "one kick per batch; returns how many were sent (see docs/rpmsg.md, Batches).") },
	{ "recvfrom_many", (PyCFunction)(void (*)(void))ep_recvfrom_many, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recvfrom_many(max=64, bufsize=65536) -> [(bytes, src)]\n\nWait for one message, then take "
		    "those already there, up to max.") },
	{ "get_buffer", (PyCFunction)(void (*)(void))ep_get_buffer, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("get_buffer() -> TxBuffer\n\nZero-copy send (host): a send buffer to write into.") },
	{ "send_buffer", (PyCFunction)(void (*)(void))ep_send_buffer, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send_buffer(buf, length, dst=None)\n\nSend a buffer from get_buffer with length bytes.") },
	{ "send_buffer_reuse", (PyCFunction)(void (*)(void))ep_send_buffer_reuse, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send_buffer_reuse(buf, length, dst=None) -> bool\n\nsend_buffer, then point the same buf at "
		    "a send buffer free now (True), or leave it sent (False: none free; get_buffer waits for one).") },
	{ NULL, NULL, 0, NULL },
};

static PyMemberDef ep_members[] = {
	{ "addr", T_OBJECT_EX, offsetof(EndpointBase, addr), 0, "this endpoint's address" },
	{ "peer", T_OBJECT, offsetof(EndpointBase, peer), 0, "the address send() goes to (None: not connected)" },
	{ "_queue", T_OBJECT_EX, offsetof(EndpointBase, queue), 0, "messages delivered here by the Python path" },
	{ "closed", T_BOOL, offsetof(EndpointBase, closed), 0, "closed by close()" },
	{ NULL, 0, 0, 0, NULL },
};

/* _gate is checked when set: the C methods trust it to be a Gate. */
static int ep_set_gate(EndpointBase *e, PyObject *value, void *closure)
{
	(void)closure;
	if (value && value != Py_None && !PyObject_TypeCheck(value, &GateType)) {
		PyErr_SetString(PyExc_TypeError, "_gate must be a rpmsg._endpoint_c.Gate or None");
		return -1;
	}
	PyObject *old = (PyObject *)e->gate;
	e->gate = value && value != Py_None ? (Gate *)Py_NewRef(value) : NULL;
	Py_XDECREF(old);
	return 0;
}

static PyObject *ep_get_gate(EndpointBase *e, void *closure)
{
	(void)closure;
	return Py_NewRef(e->gate ? (PyObject *)e->gate : Py_None);
}

static PyGetSetDef ep_getset[] = {
	{ "_gate", (getter)ep_get_gate, (setter)ep_set_gate, "the device's Gate (None: Python only)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject EndpointBaseType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rpmsg._endpoint_c.EndpointBase",
	.tp_doc = PyDoc_STR("The C methods of rpmsg.device.Endpoint (its base class)."),
	.tp_basicsize = sizeof(EndpointBase),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_new = PyType_GenericNew,
	.tp_dealloc = (destructor)ep_dealloc,
	.tp_traverse = (traverseproc)ep_traverse,
	.tp_clear = (inquiry)ep_clear,
	.tp_getset = ep_getset,
	.tp_methods = ep_methods,
	.tp_members = ep_members,
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "rpmsg._endpoint_c",
	.m_doc = PyDoc_STR("The endpoint's send/recv entry points in C; see rpmsg/csrc/endpoint.c."),
	.m_size = -1,
};

PyMODINIT_FUNC PyInit__endpoint_c(void)
{
	if (PyType_Ready(&GateType) < 0 || PyType_Ready(&EndpointBaseType) < 0 || PyType_Ready(&TxBufferBaseType) < 0)
		return NULL;
	static const char *names[] = { "_doorbell_owner", "notify_all", "_timeout", "pool_array", "_spare", "_kick", "_take_batch", "_c_send_failed", "_c_recv_failed",
				       "_send_py", "_sendto_py", "_recv_py", "_recvfrom_py", "_send_many_py", "_get_buffer_py",
				       "_send_buffer_py", "_send_buffer_reuse_py", "release", "_recvfrom_many_py",
				       "_take_waiting", "device" };
	PyObject **slots[] = { &s_doorbell_owner, &s_notify_all, &s_timeout, &s_pool_array, &s_spare, &s_kick, &s_take_batch, &s_send_failed, &s_recv_failed,
			       &s_send_py, &s_sendto_py, &s_recv_py, &s_recvfrom_py, &s_send_many_py, &s_get_buffer_py,
			       &s_send_buffer_py, &s_send_buffer_reuse_py, &s_release, &s_recvfrom_many_py,
			       &s_take_waiting, &s_device };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!(*slots[i] = PyUnicode_InternFromString(names[i])))
			return NULL;
	if (!(trace_key = PyLong_FromLong(TRACE_LEVEL)))
		return NULL;
	PyObject *m = PyModule_Create(&module);
	if (!m)
		return NULL;
	Py_INCREF(&GateType);
	Py_INCREF(&EndpointBaseType);
	Py_INCREF(&TxBufferBaseType);
	if (PyModule_AddObject(m, "TxBufferBase", (PyObject *)&TxBufferBaseType) < 0 ||
	    PyModule_AddObject(m, "Gate", (PyObject *)&GateType) < 0 ||
	    PyModule_AddObject(m, "EndpointBase", (PyObject *)&EndpointBaseType) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
