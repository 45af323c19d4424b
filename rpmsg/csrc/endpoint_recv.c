/* The endpoint's receives in C: recv, recvfrom, recvfrom_many (their waiting: endpoint_wait.c; the queue:
 * endpoint_queue.c). recv_c and take_more_c return NULL with no exception set (or 0) when the Python method must
 * take the call. */
#include "endpoint.h"

/* wait_turn's look for the copying receives: what rpc_try_recv takes in (a count, | RPF_NOTIFY, | RPF_MORE). */
static int look_recv(EndpointBase *e, int arm, void *ctx)
{
	(void)ctx;
	return rpc_try_recv(&e->gate->path, 0, arm);
}

/* Take one message for this endpoint in C (RpmsgDevice.try_recv_c, the loop there step by step): bytes (or
 * (bytes, src)); NULL with no exception: the Python method's turn (what was taken in meanwhile is delivered to
 * the queues first). */
static PyObject *recv_c(EndpointBase *e, Py_ssize_t bufsize, int with_src, int *handled, PyObject *into,
			Py_ssize_t max, long long *deadline)
{
	Gate *g = e->gate;
	uint32_t addr;
	*handled = 0;
	if (!g || e->closed || bufsize < 0 || !gate_usable(g) || !u32_of(e->addr, &addr) || !e->queue)
		return NULL;
	Py_ssize_t queued = PyObject_Length(e->queue);
	if (queued < 0) {
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
	queued = PyObject_Length(e->queue); /* again, under the lock */
	if (queued) { /* the rest of a batch the C receive queued: the next one; a Message: the Python method's */
		PyObject *item = queued > 0 ? pop_queued(e, queued) : NULL;
		PyErr_Clear();
		unlock(release);
		if (!item) {
			*handled = 0;
			return NULL;
		}
		return queued_result(item, bufsize, with_src);
	}
	/* It takes in all that waits, as the Python path does: one message for us is returned, a batch all ours is
	 * returned and queued here (queue_batch), anything else goes to the device's parser. */
	int rc = wait_turn(e, &release, deadline, handled, 0, look_recv, NULL);
	if (rc <= 0)
		return NULL;
	/* the peer wants to hear of the buffers re-posted (host) or given back (remote) */
	if ((rc & RPF_NOTIFY) && recv_kick(g) < 0) {
		unlock(release);
		return NULL;
	}
	int n = rc & 0xffff, more = rc & RPF_MORE;
	uint32_t src, len;
	const uint8_t *payload;
	if (n == 1 && !more && rpc_single(&g->path, addr, &src, &payload, &len)) {
		Py_ssize_t take = (Py_ssize_t)len < bufsize ? (Py_ssize_t)len : bufsize;
		PyObject *data = PyBytes_FromStringAndSize((const char *)payload, take);
		unlock(release);
		if (!data || !with_src)
			return data;
		return Py_BuildValue("(NI)", data, (unsigned int)src);
	}
	if (n > 1 && !more && rpc_batch_is_for(&g->path, n, addr)) { /* all ours: the first now, the rest queued */
		PyObject *first = queue_batch(e, n, bufsize, with_src, into, max);
		if (first || PyErr_Occurred()) {
			unlock(release);
			return first;
		}
	}
	/* a batch, or not ours, or more waiting: the device's parser delivers it and takes the rest
	 * (RpmsgDevice._take_batch) */
	PyObject *count = PyLong_FromLong(n | more);
	PyObject *r = count ? call_hook(g->take_batch, count) : NULL;
	Py_XDECREF(count);
	unlock(release);
	if (!r)
		return NULL;
	Py_DECREF(r);
	*handled = 0;
	return NULL;
}

static PyObject *item_of(const uint8_t *payload, Py_ssize_t take, uint32_t src, int with_src, PyObject **from,
			 uint32_t *last);

/* While only a receive of another kind keeps the gate shut (a zero-copy receiving endpoint:
 * Gate.peek_open): the next message waiting, if it is a well-formed one for this endpoint and nothing is queued
 * for it, taken straight out of the ring (rpc_peek_for, as take_direct); anything else is left where it is for
 * the Python method (a zero-copy endpoint's message must be lent, not copied). NULL with no exception: the Python
 * method's turn (it also waits). */
static PyObject *peek_take(EndpointBase *e, Py_ssize_t bufsize, int with_src)
{
	Gate *g = e->gate;
	uint32_t addr, src, len, size;
	const uint8_t *payload;
	PyObject *release = NULL;
	if (bufsize < 0 || !own_turn(e, 1, &addr, &release))
		return NULL;
	if (!rpc_peek_for(&g->path, addr, &src, &payload, &len, &size)) {
		unlock(release);
		return NULL;
	}
	PyObject *from = NULL;
	uint32_t last = 0;
	PyObject *item = item_of(payload, (Py_ssize_t)len < bufsize ? (Py_ssize_t)len : bufsize, src, with_src, &from,
				 &last);
	Py_XDECREF(from);
	if (!item || rpc_take_next(&g->path, size) < 0) { /* memory, or the ring broke: left for the Python path */
		Py_XDECREF(item);
		PyErr_Clear();
		unlock(release);
		return NULL;
	}
	int rc = rpc_taken(&g->path, 1);
	if ((rc & RPF_NOTIFY) && recv_kick(g) < 0)
		PyErr_Clear(); /* the device failed: the next call says so */
	unlock(release);
	return item;
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
		long long deadline = take_handed(e);
		PyObject *r = recv_c(e, bufsize, with_src, &handled, NULL, 0, &deadline);
		if (r || handled)
			return r;
		if ((r = peek_take(e, bufsize, with_src)))
			return r;
		return hand_over(e, name, args, nargs, kwnames, deadline);
	}
	return slow(e, name, args, nargs, kwnames);
}

PyObject *ep_recv(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return recv_entry(e, args, nargs, kwnames, 0, s_recv_py);
}

PyObject *ep_recvfrom(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return recv_entry(e, args, nargs, kwnames, 1, s_recvfrom_py);
}

/* One message as the caller's list holds it: (bytes, src), or the bytes alone (recv_many). `*from` is one int
 * for a run of messages from the same source (`*last` its value), released by the caller. */
static PyObject *item_of(const uint8_t *payload, Py_ssize_t take, uint32_t src, int with_src, PyObject **from,
			 uint32_t *last)
{
	if (with_src && (!*from || src != *last)) {
		Py_XSETREF(*from, PyLong_FromUnsignedLong(src));
		*last = src;
		if (!*from)
			return NULL;
	}
	PyObject *data = PyBytes_FromStringAndSize((const char *)payload, take);
	if (!data || !with_src)
		return data;
	PyObject *item = PyTuple_New(2);
	if (!item) {
		Py_DECREF(data);
		return NULL;
	}
	PyTuple_SET_ITEM(item, 0, data);
	PyTuple_SET_ITEM(item, 1, Py_NewRef(*from));
	return item;
}

#define PREFETCH_AHEAD 2 /* messages: fetched about two copies before their own */

/* The peer's messages for this endpoint copied straight out of the ring into `out` (one copy: no batch buffer),
 * while the next one is a well-formed one for `addr` (rpc_peek_for): how many, their buffers given back (remote)
 * or posted again (host) with one publish and at most one kick; -1 on an error (memory; what was taken is in
 * `out`, what was not stays in the ring). It stops at anything else, which the batch path (rpc_try_recv) or
 * the device's _take_waiting then takes and delivers. */
static int take_direct(Gate *g, PyObject *out, Py_ssize_t max, Py_ssize_t bufsize, uint32_t addr, int with_src)
{
	struct rpc_path *p = &g->path;
	int n = 0, err = 0;
	uint32_t src, len, size, last_src = 0;
	const uint8_t *payload;
	PyObject *from = NULL; /* one int for a run of messages from the same source */
	while (PyList_GET_SIZE(out) < max && rpc_peek_for(p, addr, &src, &payload, &len, &size)) {
		Py_ssize_t take = (Py_ssize_t)len < bufsize ? (Py_ssize_t)len : bufsize;
		rpc_prefetch(p, PREFETCH_AHEAD);
		PyObject *item = item_of(payload, take, src, with_src, &from, &last_src);
		if (!item || PyList_Append(out, item) < 0) {
			Py_XDECREF(item);
			err = 1; /* not taken: it stays in the ring */
			break;
		}
		Py_DECREF(item);
		n++;
		if (rpc_take_next(p, size) < 0)
			break; /* the ring broke under us (a hostile host): the next receive reports it */
	}
	Py_XDECREF(from);
	if (n) {
		int rc = rpc_taken(p, n);
		if ((rc & RPF_NOTIFY) && recv_kick(g) < 0)
			PyErr_Clear(); /* the device failed: the next call says so */
	}
	return err ? -1 : n;
}

/* After recvfrom_many's first message: take more for this endpoint in C while what rpc_try_recv brings in is
 * only well-formed messages for it (RpmsgDevice._take_waiting's C branch); 1 when done, 0 when the device's
 * _take_waiting must go on (a message queued, a batch with others' messages (delivered to the queues here, as
 * recv_c does), the lock held elsewhere, the gate closed), -1 on an error (the list keeps what it holds: the
 * caller returns it). A broken ring ends the batch quietly: the next receive reports it, nothing taken is lost. */
static int take_more_c(EndpointBase *e, PyObject *out, Py_ssize_t max, Py_ssize_t bufsize, int with_src)
{
	Gate *g = e->gate;
	uint32_t addr;
	while (PyList_GET_SIZE(out) < max) {
		if (!g || e->closed || !(g->open || g->peek_open) || !trace_off(&g->trace) || !u32_of(e->addr, &addr) ||
		    !e->queue)
			return 0;
		Py_ssize_t queued = PyObject_Length(e->queue);
		if (queued < 0) {
			PyErr_Clear();
			return 0;
		}
		PyObject *release = NULL;
		int taken = lock_try(g, &release);
		if (taken <= 0)
			return taken;
		/* shut for zero-copy receivers only (Gate.peek_open): what is ours at the head of the ring, in C; the
		 * rest (the queue, others' messages, lent ones) is the device's _take_waiting's */
		int peek_only = !g->open;
		queued = PyObject_Length(e->queue); /* again, under the lock */
		if (peek_only) {
			int got = g->peek_open && queued == 0 ? take_direct(g, out, max, bufsize, addr, with_src) : 0;
			/* nothing else waits either: done (the Python method's look would find nothing) */
			int done = got == 0 && queued == 0 && g->peek_open && !rpc_waiting(&g->path);
			unlock(release);
			if (queued < 0)
				PyErr_Clear();
			if (got <= 0)
				return done ? 1 : got;
			continue;
		}
		if (queued > 1 && queued <= max - PyList_GET_SIZE(out)) {
			if (take_all_queued(e, out, bufsize, queued)) {
				unlock(release);
				continue;
			}
		}
		if (queued) { /* what the C receive queued first (a Message: _take_waiting takes it) */
			PyObject *item = queued > 0 ? pop_queued(e, queued) : NULL;
			PyErr_Clear();
			unlock(release);
			if (!item)
				return 0;
			PyObject *got = queued_result(item, bufsize, with_src);
			if (!got || PyList_Append(out, got) < 0) {
				Py_XDECREF(got);
				return -1;
			}
			Py_DECREF(got);
			continue;
		}
		/* the remote copies each message once, straight out of the ring; the host's batch copy below is faster
		 * (one pass over the used ring, no second look at each entry: ~230 vs ~245 ns a message in one process) */
		int got = g->path.remote ? take_direct(g, out, max, bufsize, addr, with_src) : 0;
		if (got) {
			unlock(release);
			if (got < 0)
				return -1;
			continue;
		}
		Py_ssize_t want = max - PyList_GET_SIZE(out);
		int rc = rpc_try_recv(&g->path, want < (Py_ssize_t)g->path.rx_count ? (uint32_t)want : 0, 0);
		if (rc == RPF_GENERAL) {
			unlock(release);
			return 0;
		}
		if (rc <= 0) { /* nothing more, or a broken ring: reported by the next receive */
			unlock(release);
			return 1;
		}
		if ((rc & RPF_NOTIFY) && recv_kick(g) < 0)
			PyErr_Clear(); /* the device failed: the next call says so */
		int n = rc & 0xffff, more = rc & RPF_MORE;
		if (more || !rpc_batch_is_for(&g->path, n, addr)) { /* the device's parser delivers the batch (ours
								    * to our queue) and takes what waits beyond it;
								    * _take_waiting goes on */
			PyObject *cnt = PyLong_FromLong(n | more);
			PyObject *r = cnt ? call_hook(g->take_batch, cnt) : NULL;
			Py_XDECREF(cnt);
			unlock(release);
			if (!r)
				return -1;
			Py_DECREF(r);
			return 0;
		}
		uint32_t pos = 0, src, len, last_src = 0;
		PyObject *from = NULL; /* one int for a run of messages from the same source */
		for (int i = 0; i < n; i++) {
			const uint8_t *payload = rpc_batch_next(&g->path, i, &pos, &src, &len);
			Py_ssize_t take = (Py_ssize_t)len < bufsize ? (Py_ssize_t)len : bufsize;
			PyObject *item = item_of(payload, take, src, with_src, &from, &last_src);
			if (!item || PyList_Append(out, item) < 0) {
				Py_XDECREF(item);
				Py_XDECREF(from);
				unlock(release);
				return -1; /* (memory) what was appended is returned */
			}
			Py_DECREF(item);
		}
		Py_XDECREF(from);
		unlock(release);
	}
	return 1;
}

/* recvfrom_many's rest: RpmsgDevice._take_waiting(ep, out, max, bufsize), the hook attach handed over. */
static int take_waiting(EndpointBase *e, PyObject *hook, PyObject *out, Py_ssize_t max, Py_ssize_t bufsize)
{
	if (!hook) {
		PyErr_SetString(PyExc_RuntimeError, "the rpmsg device let go of its C path during the call");
		return -1;
	}
	PyObject *lim = PyLong_FromSsize_t(max), *bs = PyLong_FromSsize_t(bufsize);
	PyObject *r = lim && bs ? PyObject_CallFunctionObjArgs(hook, (PyObject *)e, out, lim, bs, NULL) : NULL;
	Py_XDECREF(lim);
	Py_XDECREF(bs);
	Py_XDECREF(r);
	return r ? 0 : -1;
}

/* recv_many's list holds the bytes alone: what the queue and the device's _take_waiting appended as (bytes, src)
 * (copies queued earlier, the general path) becomes its bytes. */
static int strip_sources(PyObject *out)
{
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(out); i++) {
		PyObject *item = PyList_GET_ITEM(out, i);
		if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2)
			PyList_SetItem(out, i, Py_NewRef(PyTuple_GET_ITEM(item, 0))); /* (drops the tuple) */
	}
	return 0;
}

/* recvfrom_many (with_src) and recv_many: wait for one message as recvfrom does, then take those already there. */
static PyObject *recv_many_entry(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
				 int with_src, PyObject *name)
{
	Py_ssize_t max = 64, bufsize = 1 << 16;
	int plain = nargs <= 2 && !kwnames;
	if (plain && nargs >= 1)
		plain = PyLong_CheckExact(args[0]) && (max = PyLong_AsSsize_t(args[0])) >= 1;
	if (plain && nargs == 2)
		plain = PyLong_CheckExact(args[1]) && (bufsize = PyLong_AsSsize_t(args[1])) >= 0;
	PyErr_Clear();
	if (!plain)
		return slow(e, name, args, nargs, kwnames);
	long long deadline = take_handed(e);
	PyObject *out = PyList_New(0);
	if (!out)
		return NULL;
	/* the device's hook, held from here: the gate may let go of it meanwhile */
	PyObject *hook = e->gate && e->gate->take_waiting ? Py_NewRef(e->gate->take_waiting) : NULL;
	/* What is there already, in C (a batch of ours at once); nothing: wait for one as recvfrom does, then more */
	int done = take_more_c(e, out, max, bufsize, with_src);
	if (done >= 0 && PyList_GET_SIZE(out) == 0) {
		int handled = 0;
		/* (a batch all ours that the wait took in: the first max straight into out, the rest queued) */
		PyObject *first = done ? recv_c(e, bufsize, with_src, &handled, out, max, &deadline) : NULL;
		if (!first) {
			Py_DECREF(out);
			Py_XDECREF(hook);
			if (handled)
				return NULL;
			return hand_over(e, name, args, nargs, kwnames, deadline);
		}
		if (first != Py_None && PyList_Append(out, first) < 0) {
			Py_DECREF(first);
			Py_DECREF(out);
			Py_XDECREF(hook);
			return NULL;
		}
		Py_DECREF(first);
		done = take_more_c(e, out, max, bufsize, with_src);
	}
	if (done < 0 && PyList_GET_SIZE(out) == 0) {
		Py_DECREF(out);
		Py_XDECREF(hook);
		return NULL;
	}
	if (!done && PyList_GET_SIZE(out) < max && take_waiting(e, hook, out, max, bufsize) < 0) {
		Py_DECREF(out);
		Py_XDECREF(hook);
		return NULL;
	}
	Py_XDECREF(hook);
	if (!with_src)
		strip_sources(out);
	return out;
}

PyObject *ep_recvfrom_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return recv_many_entry(e, args, nargs, kwnames, 1, s_recvfrom_many_py);
}

PyObject *ep_recv_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return recv_many_entry(e, args, nargs, kwnames, 0, s_recv_many_py);
}

/* _take_more(out, max, bufsize): take_more_c for the Python method (recvfrom_many's after its first message, when
 * the Python method waited for it): the messages for this endpoint already there appended to `out` as (bytes, src)
 * in C, up to max in all; True when that was all of it, False when the device's _take_waiting must go on (see
 * take_more_c). Without it the Python method parsed each of them in Python. */
PyObject *ep_take_more(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyLong_CheckExact(args[1]) || !PyLong_CheckExact(args[2])) {
		PyErr_SetString(PyExc_TypeError, "_take_more(out: list, max: int, bufsize: int)");
		return NULL;
	}
	Py_ssize_t max = PyLong_AsSsize_t(args[1]), bufsize = PyLong_AsSsize_t(args[2]);
	if ((max == -1 || bufsize == -1) && PyErr_Occurred())
		return NULL;
	if (bufsize < 0)
		Py_RETURN_FALSE;
	int done = take_more_c(e, args[0], max, bufsize, 1);
	if (done < 0)
		return PyErr_Occurred() ? NULL : Py_NewRef(Py_False);
	return PyBool_FromLong(done);
}

/* _queue_batch(n, bufsize): for the Python method's C-path receive (RpmsgDevice.try_recv_c, after a wait C did
 * not do: busy mode's, with a timeout): the batch of `n` messages it took into the batch buffer, when all are
 * well-formed ones for this endpoint (rpc_batch_is_for), delivered as recv_c delivers one: the first returned as
 * (bytes, src), the rest queued as copies (queue_batch) that the C methods pop; None when the device's parser
 * must deliver it (others' messages, a malformed one, RPF_MORE, the queue's bounds). The caller holds the lock. */
PyObject *ep_queue_batch(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs)
{
	Gate *g = e->gate;
	uint32_t addr;
	if (nargs != 2 || !PyLong_CheckExact(args[0]) || !PyLong_CheckExact(args[1])) {
		PyErr_SetString(PyExc_TypeError, "_queue_batch(n: int, bufsize: int)");
		return NULL;
	}
	long n = PyLong_AsLong(args[0]);
	Py_ssize_t bufsize = PyLong_AsSsize_t(args[1]);
	if (PyErr_Occurred())
		return NULL;
	if (!g || !g->attached || e->closed || n < 2 || n > 0xffff || bufsize < 0 || !u32_of(e->addr, &addr) ||
	    !e->queue || !rpc_batch_is_for(&g->path, (int)n, addr))
		Py_RETURN_NONE;
	PyObject *first = queue_batch(e, (int)n, bufsize, 1, NULL, 0);
	if (first || PyErr_Occurred())
		return first;
	Py_RETURN_NONE;
}
