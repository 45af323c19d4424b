/* Gate: what one device hands its endpoints' C methods, and the helpers every method uses. See endpoint.h. */
#include "endpoint.h"

#include <structmember.h>

#include "vring_layout.h"

/* What attach sets (a re-attach after the host's pool was replaced keeps set_wait's). */
static void gate_drop_rings(Gate *g)
{
	g->attached = 0;
	g->open = 0;
	g->send_open = 0;
	g->peek_open = 0;
	g->path.rpf = NULL;
	Py_CLEAR(g->acquire);
	Py_CLEAR(g->release);
	Py_CLEAR(g->dlock);
	trace_clear(&g->trace);
	Py_CLEAR(g->guard);
	Py_CLEAR(g->guard_attr);
	Py_CLEAR(g->guard_value);
	Py_CLEAR(g->kick);
	Py_CLEAR(g->take_batch);
	Py_CLEAR(g->send_failed);
	Py_CLEAR(g->recv_failed);
	Py_CLEAR(g->take_waiting);
}

static void gate_drop(Gate *g)
{
	gate_drop_rings(g);
	Py_CLEAR(g->notify_all);
	Py_CLEAR(g->tx_view);
	Py_CLEAR(g->txbuf_type);
	Py_CLEAR(g->tx_owner);
	Py_CLEAR(g->lend_views);
	Py_CLEAR(g->lend_type);
	g->poll_fd = -1;
}

static int gate_traverse(Gate *g, visitproc visit, void *arg)
{
	Py_VISIT(g->acquire);
	Py_VISIT(g->release);
	Py_VISIT(g->dlock);
	int traced = trace_traverse(&g->trace, visit, arg);
	if (traced)
		return traced;
	Py_VISIT(g->guard);
	Py_VISIT(g->guard_attr);
	Py_VISIT(g->guard_value);
	Py_VISIT(g->kick);
	Py_VISIT(g->take_batch);
	Py_VISIT(g->send_failed);
	Py_VISIT(g->recv_failed);
	Py_VISIT(g->take_waiting);
	Py_VISIT(g->owner);
	Py_VISIT(g->notify_all);
	Py_VISIT(g->tx_view);
	Py_VISIT(g->txbuf_type);
	Py_VISIT(g->tx_owner);
	Py_VISIT(g->lend_views);
	Py_VISIT(g->lend_type);
	return 0;
}

static int gate_clear(Gate *g)
{
	gate_drop(g);
	Py_CLEAR(g->owner);
	return 0;
}

static void gate_dealloc(Gate *g)
{
	PyObject_GC_UnTrack(g);
	gate_drop(g);
	Py_CLEAR(g->owner);
	Py_TYPE(g)->tp_free((PyObject *)g);
}

PyDoc_STRVAR(gate_attach_doc,
	     "attach(*, api, rx, tx, pool, npool, pool_cap, tx_size, rx_size, rx_count, max_payload, out, lens, "
	     "out_cap, kick_fd, rx_kick_fd, remote, lock, trace_enabled, trace_level, guard, guard_attr, guard_value, hooks)\n\n"
	     "Point the C methods at a C path (rpmsg/fastpath.py): api is the address of rpmsg._fastpath_cffi's "
	     "struct rpf_api; rx, tx, pool, npool, out and lens addresses of its rings (struct rp_vq: receive, send), "
	     "send pool (host; 0 for the remote), batch buffer and lengths; kick_fd the kick word that kicks the peer for the send ring (fastpath.h), "
	     "rx_kick_fd for the receive ring (the same word but for a doorbell with a descriptor per queue); "
	     "remote the role. The C methods hand over to the Python ones while trace_enabled(trace_level) is not "
	     "False or getattr(guard, guard_attr) is not guard_value. hooks: the device's (kick, take_batch, "
	     "send_failed, recv_failed, take_waiting). Leaves `open` as it was.");

static PyObject *gate_attach(Gate *g, PyObject *args, PyObject *kw)
{
	static char *names[] = { "api", "rx", "tx", "pool", "npool", "pool_cap", "tx_size", "rx_size", "rx_count",
				 "max_payload", "out", "lens", "out_cap", "kick_fd", "rx_kick_fd", "remote", "lock", "trace_enabled",
				 "trace_level", "guard", "guard_attr", "guard_value", "hooks", NULL };
	unsigned long long api, rx, tx, pool, npool, out, lens;
	unsigned int pool_cap, tx_size, rx_size, rx_count, max_payload, out_cap;
	int kick_fd, rx_kick_fd, remote;
	PyObject *lock, *trace_enabled, *trace_level, *guard, *guard_attr, *guard_value;
	PyObject *kick, *take_batch, *send_failed, *recv_failed, *take_waiting;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "$KKKKKIIIIIKKIiipOOO!OUO(OOOOO):attach", names, &api, &rx, &tx,
					 &pool, &npool, &pool_cap, &tx_size, &rx_size, &rx_count, &max_payload, &out,
					 &lens, &out_cap, &kick_fd, &rx_kick_fd, &remote, &lock, &trace_enabled, &PyLong_Type,
					 &trace_level, &guard, &guard_attr, &guard_value, &kick, &take_batch,
					 &send_failed, &recv_failed, &take_waiting))
		return NULL;
	const struct rpf_api *rpf = (const struct rpf_api *)(uintptr_t)api;
	if (!rpf || rpf->size != sizeof(struct rpf_api) || rpf->vq_layout != RP_VQ_LAYOUT) {
		PyErr_SetString(PyExc_ImportError, "attach: rpmsg._fastpath_cffi and rpmsg._endpoint_c were built with "
						   "another struct rp_vq or rpf_api: rebuild both (pip install -e .)");
		return NULL;
	}
	if (kick_fd < 0 || rx_kick_fd < 0 || rx_count == 0 || out_cap < RPC_HDR ||
	    (!remote && (tx_size < RPC_HDR || rx_size < RPC_HDR || out_cap < rx_size)) ||
	    (remote && max_payload > RPF_DEV_MAX)) {
		PyErr_SetString(PyExc_ValueError, "attach: a kick descriptor, buffers of at least 16 bytes and a batch "
						  "buffer holding one are needed");
		return NULL;
	}
	PyObject *acquire = PyObject_GetAttrString(lock, "acquire");
	PyObject *release = acquire ? PyObject_GetAttrString(lock, "release") : NULL;
	if (!release) {
		Py_XDECREF(acquire);
		return NULL;
	}
	int open = g->open, send_open = g->send_open, peek_open = g->peek_open;
	gate_drop_rings(g);
	struct rpc_path *p = &g->path;
	p->rpf = rpf;
	p->remote = remote;
	p->rx = (struct rp_vq *)(uintptr_t)rx;
	p->tx = (struct rp_vq *)(uintptr_t)tx;
	p->pool = (uint64_t *)(uintptr_t)pool;
	p->npool = (uint32_t *)(uintptr_t)npool;
	p->out = (uint8_t *)(uintptr_t)out;
	p->lens = (uint32_t *)(uintptr_t)lens;
	p->pool_cap = pool_cap;
	p->tx_size = tx_size;
	p->rx_size = rx_size;
	p->rx_count = rx_count;
	p->max_payload = max_payload;
	p->out_cap = out_cap;
	p->kick_fd = kick_fd;
	p->rx_kick_fd = rx_kick_fd;
	g->acquire = acquire;
	g->release = release;
	g->dlock = Py_IS_TYPE(lock, &DeviceLockType) ? (DeviceLock *)Py_NewRef(lock) : NULL;
	trace_set(&g->trace, trace_enabled, trace_level);
	g->guard = Py_NewRef(guard);
	g->guard_attr = Py_NewRef(guard_attr);
	g->guard_value = Py_NewRef(guard_value);
	g->kick = Py_NewRef(kick);
	g->take_batch = Py_NewRef(take_batch);
	g->send_failed = Py_NewRef(send_failed);
	g->recv_failed = Py_NewRef(recv_failed);
	g->take_waiting = Py_NewRef(take_waiting);
	g->attached = 1;
	g->open = open;
	g->send_open = send_open;
	g->peek_open = peek_open;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(gate_set_wait_doc,
	     "set_wait(poll_fd, kick_fd, wake_fd, notify_all)\n\n"
	     "Let a blocking receive (wait mode block, no timeout) sleep in C, as the Python path's wait does: on "
	     "poll_fd (the doorbell's descriptor) and wake_fd, the kick read from kick_fd; it owns the doorbell "
	     "meanwhile (the gate's `owner` = threading.get_ident()) and, when it leaves, calls notify_all (the "
	     "device condition's) if the gate's `waiters` is not 0. After attach.");

static PyObject *gate_set_wait(Gate *g, PyObject *args)
{
	int poll_fd, kick_fd, wake_fd;
	PyObject *notify_all;
	if (!PyArg_ParseTuple(args, "iiiO:set_wait", &poll_fd, &kick_fd, &wake_fd, &notify_all))
		return NULL;
	if (!g->attached || poll_fd < 0 || wake_fd < 0) {
		PyErr_SetString(PyExc_ValueError, "set_wait: attach first, with the doorbell's and the wake descriptors");
		return NULL;
	}
	Py_XSETREF(g->notify_all, Py_NewRef(notify_all));
	g->poll_fd = poll_fd;
	g->wait_kick_fd = kick_fd;
	g->wake_fd = wake_fd;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(gate_set_zero_copy_doc,
	     "set_zero_copy(tx_view, tx_lo, txbuf_type, owner=None)\n\n"
	     "Let get_buffer/send_buffer run in C (after attach). Host: tx_view is a writable memoryview of the send "
	     "buffers starting at device address tx_lo. Remote: tx_view is a tuple of writable memoryviews of bytes, "
	     "the memory vring 0's buffers lie in (the ring's region views; tx_lo unused). get_buffer returns "
	     "txbuf_type instances (a subclass of TxBufferBase), their view a slice of one of those, their token "
	     "`owner`; send_buffer takes only those.");

static PyObject *gate_set_zero_copy(Gate *g, PyObject *args)
{
	PyObject *view;
	unsigned long long lo;
	PyTypeObject *type;
	PyObject *owner = Py_None;
	if (!PyArg_ParseTuple(args, "OKO!|O:set_zero_copy", &view, &lo, &PyType_Type, &type, &owner))
		return NULL;
	if (!g->attached || !PyType_IsSubtype(type, &TxBufferBaseType)) {
		PyErr_SetString(PyExc_ValueError, "set_zero_copy: attach the C path first, with a TxBufferBase subclass");
		return NULL;
	}
	if (!g->path.remote && !PyMemoryView_Check(view)) {
		PyErr_SetString(PyExc_TypeError, "set_zero_copy: the host's tx_view is a memoryview");
		return NULL;
	}
	if (g->path.remote) {
		if (!PyTuple_Check(view)) {
			PyErr_SetString(PyExc_TypeError, "set_zero_copy: the remote's tx_view is a tuple of memoryviews");
			return NULL;
		}
		for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(view); i++) {
			PyObject *v = PyTuple_GET_ITEM(view, i);
			Py_buffer *b = PyMemoryView_Check(v) ? PyMemoryView_GET_BUFFER(v) : NULL;
			if (!b || b->readonly || b->ndim != 1 || b->itemsize != 1) {
				PyErr_Format(PyExc_ValueError, "set_zero_copy: view %zd is not a writable memoryview of "
							       "bytes", i);
				return NULL;
			}
		}
	}
	Py_XSETREF(g->tx_view, Py_NewRef(view));
	Py_XSETREF(g->txbuf_type, (PyTypeObject *)Py_NewRef(type));
	Py_XSETREF(g->tx_owner, Py_NewRef(owner));
	g->tx_lo = lo;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(gate_set_lend_doc,
	     "set_lend(views, message_type)\n\n"
	     "Let a zero-copy endpoint's recv_message lend messages in C (after attach): views a tuple of read-only "
	     "memoryviews of bytes, the memory the receive ring's buffers lie in (a payload is a slice of one); "
	     "message_type the class it makes (rpmsg.core.Message, a subclass of MessageBase).");

static PyObject *gate_set_lend(Gate *g, PyObject *args)
{
	PyObject *views;
	PyTypeObject *type;
	if (!PyArg_ParseTuple(args, "O!O!:set_lend", &PyTuple_Type, &views, &PyType_Type, &type))
		return NULL;
	if (!g->attached || !PyType_IsSubtype(type, &MessageBaseType)) {
		PyErr_SetString(PyExc_ValueError, "set_lend: attach the C path first, with a MessageBase subclass");
		return NULL;
	}
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(views); i++) {
		PyObject *v = PyTuple_GET_ITEM(views, i);
		Py_buffer *b = PyMemoryView_Check(v) ? PyMemoryView_GET_BUFFER(v) : NULL;
		if (!b || !b->readonly || b->ndim != 1 || b->itemsize != 1) {
			PyErr_Format(PyExc_ValueError, "set_lend: view %zd is not a read-only memoryview of bytes", i);
			return NULL;
		}
	}
	Py_XSETREF(g->lend_views, Py_NewRef(views));
	Py_XSETREF(g->lend_type, (PyTypeObject *)Py_NewRef((PyObject *)type));
	Py_RETURN_NONE;
}

PyDoc_STRVAR(gate_detach_doc, "detach()\n\nForget the C path (closes the gate): nothing it pointed at is used again.");

static PyObject *gate_detach(Gate *g, PyObject *unused)
{
	(void)unused;
	gate_drop(g);
	Py_RETURN_NONE;
}

/* `open`, `send_open` and `peek_open` (closure: which), never set without rings to use */
static int gate_set_flag(Gate *g, PyObject *value, void *closure)
{
	int *flag = closure == (void *)2 ? &g->peek_open : closure ? &g->send_open : &g->open;
	if (!value) {
		PyErr_SetString(PyExc_AttributeError, "a gate's flag cannot be deleted");
		return -1;
	}
	int v = PyObject_IsTrue(value);
	if (v < 0)
		return -1;
	*flag = v && g->attached;
	return 0;
}

static PyObject *gate_get_flag(Gate *g, void *closure)
{
	return PyBool_FromLong(closure == (void *)2 ? g->peek_open : closure ? g->send_open : g->open);
}

static PyMethodDef gate_methods[] = {
	{ "attach", (PyCFunction)(void (*)(void))gate_attach, METH_VARARGS | METH_KEYWORDS, gate_attach_doc },
	{ "detach", (PyCFunction)gate_detach, METH_NOARGS, gate_detach_doc },
	{ "set_wait", (PyCFunction)gate_set_wait, METH_VARARGS, gate_set_wait_doc },
	{ "set_zero_copy", (PyCFunction)gate_set_zero_copy, METH_VARARGS, gate_set_zero_copy_doc },
	{ "set_lend", (PyCFunction)gate_set_lend, METH_VARARGS, gate_set_lend_doc },
	{ "own", (PyCFunction)gate_own, METH_O, gate_own_doc },
	{ "disown", (PyCFunction)gate_disown, METH_VARARGS, gate_disown_doc },
	{ NULL, NULL, 0, NULL },
};

/* The int fields as T_INT: T_BOOL is a char, one byte of the int (the right one on little-endian hosts only). */
static PyMemberDef gate_members[] = {
	{ "block", T_INT, offsetof(Gate, path.block), 0, "wait mode is block" },
	{ "kicks_on", T_INT, offsetof(Gate, path.kicks_on), 0, "the peer was asked to kick us for new messages" },
	{ "attached", T_INT, offsetof(Gate, attached), READONLY, "a C path is attached" },
	{ "remote", T_INT, offsetof(Gate, path.remote), READONLY, "the attached C path is the remote role's" },
	{ "owner", T_OBJECT, offsetof(Gate, owner), 0,
	  "the ident (threading.get_ident) of the thread sleeping on the doorbell, or None (Waiter.owner)" },
	{ "waiters", T_INT, offsetof(Gate, waiters), 0, "threads waiting on the device's condition (Waiter.wait_changed)" },
	{ "spin_ns", T_LONGLONG, offsetof(Gate, spin_ns), 0,
	  "wait mode spin: a receive spins this long in C (no lock, no GIL) before it sleeps (0: not spin)" },
	{ "spin_cur", T_LONGLONG, offsetof(Gate, spin_cur), 0,
	  "wait mode spin: the C receive's spin now (spin_ns up to 4x it, grown while messages come just after a "
	  "spin gave up; 0: spin_ns)" },
	{ "busy_ns", T_LONGLONG, offsetof(Gate, busy_ns), 0,
	  "wait mode busy: a receive spins in C in slices this long, then hands over to the Python method (0: not busy)" },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef gate_getset[] = {
	{ "open", (getter)gate_get_flag, (setter)gate_set_flag, "the C methods may be used (only once attached)",
	  NULL },
	{ "send_open", (getter)gate_get_flag, (setter)gate_set_flag,
	  "the C sends may be used (only once attached; open implies it: only a receive needs the general path)",
	  (void *)1 },
	{ "peek_open", (getter)gate_get_flag, (setter)gate_set_flag,
	  "remote: a receive may take its own endpoint's message straight from the ring while the gate is shut for "
	  "zero-copy receivers only", (void *)2 },
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
		g->path.kicks_on = 1;
		g->poll_fd = -1;
	}
	return (PyObject *)g;
}

PyTypeObject GateType = {
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

/* --- what every method uses ---------------------------------------------------------------------------------- */

/* The device lock without waiting: 1 taken (*release: a reference to the DeviceLock or to the lock's release
 * method, for unlock: Python code run meanwhile, a user's channel callback or a signal handler, may detach the
 * gate), 0 held by another thread (or no lock attached), -1 error. */
int lock_try(Gate *g, PyObject **release)
{
	if (g->dlock) {
		if (!dlock_try(g->dlock))
			return 0;
		*release = Py_NewRef((PyObject *)g->dlock);
		return 1;
	}
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
void unlock(PyObject *release)
{
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	if (Py_IS_TYPE(release, &DeviceLockType)) {
		if (dlock_release((DeviceLock *)release) < 0 && type)
			PyErr_Clear();
	} else {
		PyObject *r = PyObject_Vectorcall(release, NULL, 0, NULL);
		if (r)
			Py_DECREF(r);
		else if (type)
			PyErr_Clear();
	}
	if (type)
		PyErr_Restore(type, value, tb);
	Py_DECREF(release);
}

/* Usable before taking the lock: open, and no tracing (the logger's isEnabledFor(TRACE) says False, asked or
 * kept while unchanged: endpoint_trace.h; anything else, an error included, is the Python path's, which asks the
 * logger itself). */
int gate_usable(Gate *g)
{
	return g->open && trace_off(&g->trace);
}

/* The same for a send: send_open (open, or only receives need the general path) and no tracing. */
int gate_send_usable(Gate *g)
{
	return g->send_open && trace_off(&g->trace);
}

/* With the lock held: the guard fastpath.py named still holds (host: the send pool is the one attached, a
 * restart replaces it and the Python path rebinds; remote: no host buffer the Python path popped and kept, too
 * small for its last send, waits to go first). 0 also when the gate closed meanwhile. */
int gate_guard_holds(Gate *g)
{
	PyObject *v = g->send_open && g->guard ? PyObject_GetAttr(g->guard, g->guard_attr) : NULL;
	int holds = v && v == g->guard_value;
	Py_XDECREF(v);
	PyErr_Clear();
	return holds;
}

/* hook(arg), a device callback from attach's hooks; a new reference, or NULL with an exception (also when the
 * device let go of its C path during the call). */
PyObject *call_hook(PyObject *hook, PyObject *arg)
{
	if (!hook) {
		PyErr_SetString(PyExc_RuntimeError, "the rpmsg device let go of its C path during the call");
		return NULL;
	}
	hook = Py_NewRef(hook); /* the call may detach the gate */
	PyObject *r = PyObject_CallOneArg(hook, arg);
	Py_DECREF(hook);
	return r;
}

/* The kick the ring asked for when the C write could not be done: the device's own (which reports a peer that
 * left). 0, or -1 with an exception. */
int kick_python(Gate *g, int queue)
{
	PyObject *q = PyLong_FromLong(queue);
	PyObject *r = q ? call_hook(g->kick, q) : NULL;
	Py_XDECREF(q);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

/* A failure code from the C path: the device reports it (`report`: its send_failed or recv_failed hook, which
 * always raises); the lock is released. */
PyObject *failed(PyObject *report, int rc, PyObject *release)
{
	PyObject *code = report ? PyLong_FromLong(rc) : NULL;
	PyObject *r = code ? call_hook(report, code) : NULL;
	Py_XDECREF(code);
	Py_XDECREF(r);
	if (!report || (r && !PyErr_Occurred()))
		PyErr_Format(PyExc_RuntimeError, "the C path failed with code %d", rc);
	unlock(release);
	return NULL;
}

Py_ssize_t view_holding(PyObject *views, const uint8_t *at, Py_ssize_t len, Py_ssize_t *off)
{
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(views); i++) {
		Py_buffer b;
		if (PyObject_GetBuffer(PyTuple_GET_ITEM(views, i), &b, PyBUF_SIMPLE) < 0) {
			PyErr_Clear(); /* released: the device is letting go of its memory */
			continue;
		}
		const uint8_t *lo = b.buf;
		int inside = at >= lo && len <= b.len && at - lo <= b.len - len;
		*off = inside ? at - lo : 0;
		PyBuffer_Release(&b);
		if (inside)
			return i;
	}
	return -1;
}
