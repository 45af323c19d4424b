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
} Gate;

static PyObject *s_doorbell_owner, *s_notify_all, *s_timeout;
static PyObject *s_pool_array, *s_spare, *s_kick, *s_take_batch, *s_send_failed, *s_recv_failed, *trace_key;
static PyObject *s_send_py, *s_sendto_py, *s_recv_py, *s_recvfrom_py;

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

static PyMethodDef ep_methods[] = {
	{ "send", (PyCFunction)(void (*)(void))ep_send, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send(data) -> int\n\nSend to the connected peer (see connect); returns len(data).") },
	{ "sendto", (PyCFunction)(void (*)(void))ep_sendto, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("sendto(data, dst) -> int\n\nSend to address dst; returns len(data).") },
	{ "recv", (PyCFunction)(void (*)(void))ep_recv, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recv(bufsize=65536) -> bytes\n\nThe next message (at most bufsize bytes of it).") },
	{ "recvfrom", (PyCFunction)(void (*)(void))ep_recvfrom, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recvfrom(bufsize=65536) -> (bytes, src)\n\nThe next message and its source address.") },
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
	if (PyType_Ready(&GateType) < 0 || PyType_Ready(&EndpointBaseType) < 0)
		return NULL;
	static const char *names[] = { "_doorbell_owner", "notify_all", "_timeout", "pool_array", "_spare", "_kick", "_take_batch", "_c_send_failed", "_c_recv_failed",
				       "_send_py", "_sendto_py", "_recv_py", "_recvfrom_py" };
	PyObject **slots[] = { &s_doorbell_owner, &s_notify_all, &s_timeout, &s_pool_array, &s_spare, &s_kick, &s_take_batch, &s_send_failed, &s_recv_failed,
			       &s_send_py, &s_sendto_py, &s_recv_py, &s_recvfrom_py };
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
	if (PyModule_AddObject(m, "Gate", (PyObject *)&GateType) < 0 ||
	    PyModule_AddObject(m, "EndpointBase", (PyObject *)&EndpointBaseType) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
