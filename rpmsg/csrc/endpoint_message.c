/* The zero-copy receive in C: MessageBase (the fields of rpmsg.core.Message, its base class) and the endpoint's
 * recv_message, which lends the next message for a zero-copy endpoint in its buffer (rpc_peek_for, rpc_hold)
 * without running Python, waiting for it in C as the copying receives do (wait_turn); Message.release gives the
 * buffer back (rpc_give). Anything else (a message queued; another endpoint's first; a chain, a malformed message;
 * tracing; a wait C does not do: another thread on the doorbell, timeout 0) is the Python method's,
 * Endpoint._recv_message_py, which does the same through RemoteCore.poll / HostCore.poll and the device's
 * give-back (RpmsgDevice._give_back): the same rules, held to each other by tests/rpmsg/test_lend_c.py. */
#include "endpoint.h"

#include <structmember.h>

static int msg_traverse(MessageBase *m, visitproc visit, void *arg)
{
	Py_VISIT(m->src);
	Py_VISIT(m->dst);
	Py_VISIT(m->payload);
	Py_VISIT(m->give);
	Py_VISIT(m->lender);
	return 0;
}

static int msg_clear(MessageBase *m)
{
	Py_CLEAR(m->src);
	Py_CLEAR(m->dst);
	Py_CLEAR(m->payload);
	Py_CLEAR(m->give);
	Py_CLEAR(m->lender);
	return 0;
}

/* A message dropped unreleased keeps its buffer, as the Python path's does: its payload may still be read through
 * a view taken from it, so the buffer must not carry another message. */
static void msg_dealloc(MessageBase *m)
{
	PyObject_GC_UnTrack(m);
	msg_clear(m);
	Py_TYPE(m)->tp_free((PyObject *)m);
}

/* The payload's view released first: a view still exported (BufferError) leaves the message held, to be released
 * once the export is gone (as TxBuffer's _finish). 0, or -1 with the exception. */
static int release_view(MessageBase *m)
{
	if (!m->payload || !PyMemoryView_Check(m->payload))
		return 0;
	PyObject *r = PyObject_CallMethodNoArgs(m->payload, s_release);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

/* The device lock, waiting for it: a new reference for unlock(), or NULL (an exception: a signal handler's while
 * it waited; nothing given back yet). */
static PyObject *lock_wait(Gate *g)
{
	if (g->dlock) {
		PyObject *lock = Py_NewRef((PyObject *)g->dlock);
		if (dlock_acquire(g->dlock, -1) <= 0) {
			Py_DECREF(lock);
			return NULL;
		}
		return lock;
	}
	if (!g->acquire || !g->release) {
		PyErr_SetString(PyExc_RuntimeError, "the rpmsg device let go of its lock");
		return NULL;
	}
	PyObject *release = Py_NewRef(g->release), *r = PyObject_CallNoArgs(g->acquire);
	if (!r) {
		Py_DECREF(release);
		return NULL;
	}
	Py_DECREF(r);
	return release;
}

/* RpmsgDevice._give_back in C: with the device lock, while the device is usable (not failed, not closed: else no
 * ring takes buffers back), the buffer back to the ring, published, the peer kicked if it asked. */
static PyObject *give_back(MessageBase *m)
{
	if (!m->lender) /* given back meanwhile */
		Py_RETURN_NONE;
	Gate *g = (Gate *)Py_NewRef((PyObject *)m->lender);
	PyObject *release = NULL;
	if (g->send_open && !(release = lock_wait(g))) {
		Py_DECREF(g);
		return NULL; /* still lent: a later release gives it back */
	}
	int rc = 0;
	if (m->lender == g) { /* not given back by another thread while this one waited for the lock */
		Py_CLEAR(m->lender);
		if (release && g->send_open) {
			rc = rpc_give(&g->path, m->token, m->size);
			if (rc >= 0)
				rc = rpc_taken(&g->path, 1);
			rc = rc >= 0 && (rc & RPF_NOTIFY) ? recv_kick(g) : 0; /* a broken ring: the next receive says */
		}
	}
	if (release)
		unlock(release);
	Py_DECREF(g);
	if (rc < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *msg_release(MessageBase *m, PyObject *unused)
{
	(void)unused;
	if (m->lender) {
		if (release_view(m) < 0)
			return NULL;
		return give_back(m);
	}
	/* a message of the Python path: its give-back is `_release` (None: nothing to give back) */
	if (!m->give || m->give == Py_None)
		Py_RETURN_NONE;
	if (release_view(m) < 0)
		return NULL;
	PyObject *give = m->give;
	m->give = NULL; /* taken before the call: a release during it finds nothing to give */
	PyObject *r = PyObject_CallNoArgs(give);
	Py_DECREF(give);
	return r;
}

static PyObject *msg_get_held(MessageBase *m, void *closure)
{
	(void)closure;
	return PyBool_FromLong(m->lender || (m->give && m->give != Py_None));
}

static PyMethodDef msg_methods[] = {
	{ "release", (PyCFunction)msg_release, METH_NOARGS,
	  PyDoc_STR("release()\n\nHand the buffer back to the ring (a zero-copy message; nothing for a copy). The "
		    "payload's view is released first: a view still exported (BufferError) leaves the message held.") },
	{ NULL, NULL, 0, NULL },
};

static PyMemberDef msg_members[] = {
	{ "src", T_OBJECT, offsetof(MessageBase, src), 0, "the sender's address" },
	{ "dst", T_OBJECT, offsetof(MessageBase, dst), 0, "the address it was sent to (ours)" },
	{ "payload", T_OBJECT, offsetof(MessageBase, payload), 0,
	  "bytes, or a zero-copy message's read-only view of its buffer (until released)" },
	{ "_release", T_OBJECT, offsetof(MessageBase, give), 0,
	  "the Python path's give-back of a zero-copy message (None: none, or lent in C)" },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef msg_getset[] = {
	{ "held", (getter)msg_get_held, NULL, "whether it still holds a buffer of the ring (not released)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject MessageBaseType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rpmsg._endpoint_c.MessageBase",
	.tp_doc = PyDoc_STR("The fields of rpmsg.core.Message (its base class) and the buffer a lent one holds."),
	.tp_basicsize = sizeof(MessageBase),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_new = PyType_GenericNew,
	.tp_dealloc = (destructor)msg_dealloc,
	.tp_traverse = (traverseproc)msg_traverse,
	.tp_clear = (inquiry)msg_clear,
	.tp_methods = msg_methods,
	.tp_members = msg_members,
	.tp_getset = msg_getset,
};

/* A view of `len` bytes at `at`, a slice of the lend view holding them (read-only), or NULL (no exception: none
 * holds them, or one was released: the Python path's turn). */
static PyObject *view_of(Gate *g, const uint8_t *at, uint32_t len)
{
	Py_ssize_t off;
	Py_ssize_t i = view_holding(g->lend_views, at, len, &off);
	if (i < 0)
		return NULL;
	PyObject *start = PyLong_FromSsize_t(off), *stop = PyLong_FromSsize_t(off + (Py_ssize_t)len);
	PyObject *slice = start && stop ? PySlice_New(start, stop, NULL) : NULL;
	Py_XDECREF(start);
	Py_XDECREF(stop);
	PyObject *view = slice ? PyObject_GetItem(PyTuple_GET_ITEM(g->lend_views, i), slice) : NULL;
	Py_XDECREF(slice);
	if (!view)
		PyErr_Clear();
	return view;
}

/* The ring's head message for an endpoint, as rpc_peek_for found it (the lock held since: it is still there). */
struct head_msg {
	uint32_t addr; /* the endpoint's */
	uint32_t src, len, size;
	const uint8_t *payload;
};

static int peek_head(const struct rpc_path *p, struct head_msg *h)
{
	return rpc_peek_for(p, h->addr, &h->src, &h->payload, &h->len, &h->size);
}

/* The message `h` (at the ring's head, found under the lock held since), lent; the lock released here. NULL with
 * no exception: the Python method's turn (memory, the ring broke). */
static PyObject *lend_head(EndpointBase *e, const struct head_msg *h, PyObject *release)
{
	Gate *g = e->gate;
	/* the message object first: once held, the message must reach the caller */
	PyObject *view = g->lend_type ? view_of(g, h->payload, h->len) : NULL;
	MessageBase *m = view ? (MessageBase *)g->lend_type->tp_alloc(g->lend_type, 0) : NULL;
	uint64_t token = 0;
	if (m) {
		m->payload = view;
		m->dst = Py_NewRef(e->addr);
		m->src = PyLong_FromUnsignedLong(h->src);
	} else {
		Py_XDECREF(view);
	}
	if (!m || !m->src || rpc_hold(&g->path, &token) < 0) { /* memory, or the ring broke: the Python path's */
		Py_XDECREF(m);
		PyErr_Clear();
		unlock(release);
		return NULL;
	}
	m->lender = (Gate *)Py_NewRef((PyObject *)g);
	m->token = token;
	m->size = h->size;
	if (!g->path.remote) { /* HostCore.poll publishes after what it took (its used event) */
		int rc = rpc_taken(&g->path, 1);
		if ((rc & RPF_NOTIFY) && recv_kick(g) < 0)
			PyErr_Clear(); /* the device failed: the next call says so */
	}
	unlock(release);
	return (PyObject *)m;
}

/* The next message waiting, lent (see the top); NULL with no exception: the Python method's turn. */
static PyObject *lend_c(EndpointBase *e)
{
	struct head_msg h;
	PyObject *release = NULL;
	if (!e->zero_copy || !e->gate || !e->gate->lend_type || !own_turn(e, 1, &h.addr, &release))
		return NULL;
	if (!peek_head(&e->gate->path, &h)) {
		unlock(release);
		return NULL;
	}
	return lend_head(e, &h, release);
}

/* wait_turn's look for the lend: the kicks armed as asked (rpc_arm), then 1 when the ring's head is a message
 * this endpoint lends (rpc_peek_for's rule: kept in ctx, a struct head_msg), RPF_GENERAL when something else heads
 * it (another endpoint's, a chain, a malformed one, a broken ring: the Python method's poll takes it), 0 when
 * nothing waits. */
static int look_lend(EndpointBase *e, int arm, void *ctx)
{
	struct rpc_path *p = &e->gate->path;
	if (arm) {
		int r = rpc_arm(p, arm);
		if (r < 0)
			return r;
	}
	if (peek_head(p, ctx))
		return 1;
	return rpc_waiting(p) ? RPF_GENERAL : 0;
}

/* recv_message in C, its wait too (wait_turn, as the copying receives wait): the next message lent, or NULL with
 * *handled 1 and an exception (a broken ring, the timeout, a signal handler's), or with *handled 0: the Python
 * method's turn (timeout 0 with nothing there, another thread on the doorbell, something queued or not ours). */
static PyObject *lend_wait(EndpointBase *e, long long *deadline, int *handled)
{
	struct head_msg h;
	PyObject *release = NULL;
	*handled = 0;
	if (!e->zero_copy || !e->gate || !e->gate->lend_type || !own_turn(e, 1, &h.addr, &release))
		return NULL;
	*handled = 1;
	if (wait_turn(e, &release, deadline, handled, 1, look_lend, &h) <= 0)
		return NULL;
	PyObject *m = lend_head(e, &h, release);
	if (!m)
		*handled = 0;
	return m;
}

/* _lend(): the Python method's look in C, after each of its waits (what woke it is lent here, not taken in by the
 * Python path's poll, ~13 us a message): the next message lent, or None. */
PyObject *ep_lend(EndpointBase *e, PyObject *unused)
{
	(void)unused;
	PyObject *r = lend_c(e);
	return r ? r : Py_NewRef(Py_None);
}

PyObject *ep_recv_message(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	if (nargs || kwnames)
		return slow(e, s_recv_message_py, args, nargs, kwnames);
	long long deadline = take_handed(e);
	int handled;
	PyObject *r = lend_wait(e, &deadline, &handled);
	if (r || handled)
		return r;
	return hand_over(e, s_recv_message_py, args, nargs, kwnames, deadline);
}
