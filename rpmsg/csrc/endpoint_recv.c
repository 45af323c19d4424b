/* The endpoint's receives in C: recv, recvfrom, recvfrom_many (their waiting: endpoint_wait.c; the queue:
 * endpoint_queue.c). recv_c and take_more_c return NULL with no exception set (or 0) when the Python method must
 * take the call. */
#include "endpoint.h"

/* Take one message for this endpoint in C (RpmsgDevice.try_recv_c, the loop there step by step): bytes (or
 * (bytes, src)); NULL with no exception: the Python method's turn (what was taken in meanwhile is delivered to
 * the queues first). */
static PyObject *recv_c(EndpointBase *e, Py_ssize_t bufsize, int with_src, int *handled, PyObject *into,
			Py_ssize_t max)
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
	/* As the Python path: block mode turns the peer's kicks off while we look, and on (looking once more)
	 * before sleeping; but never while another thread sleeps on the doorbell (it would sleep through every
	 * message: issue 17's lost wake-up). Only checked when the kicks are on: not in a lone receiver's loop.
	 * It takes in all that waits, as the Python path does: one message for us is returned, a batch all ours
	 * is returned and queued here (queue_batch), anything else goes to the device's parser. */
	int arm = g->path.block && g->path.kicks_on && !doorbell_owned(g) ? -1 : 0;
	int spun = 0; /* modes spin and busy: spun since the last message or sleep */
	int rc;
	for (;;) {
		rc = rpc_try_recv(&g->path, 0, arm);
		if (rc < 0 && rc != RPF_GENERAL)
			return failed(g, g->recv_failed, rc, release);
		if (rc > 0)
			break;
		int may = rc == 0 ? may_sleep(g, e) : 0;
		if (may <= 0) { /* the Python path: it waits (with a timeout, or on the condition), or takes a
				 * message larger than the batch buffer (remote) */
			unlock(release);
			*handled = may < 0;
			return NULL;
		}
		if (!g->path.block && !spun) {
			/* Waiter.wait in modes spin and busy: the peer's kicks off (we poll), then spin without the lock
			 * and the GIL; spin: then sleep as a blocking receive, busy: the Python method goes on (it looks at
			 * the doorbell now and then: the peer's end) */
			if (g->path.kicks_on && arm != -1) {
				arm = -1;
				continue;
			}
			arm = 0;
			long long ns = g->busy_ns > 0 ? g->busy_ns : g->spin_ns;
			int own = g->busy_ns <= 0;
			int spin = sleep_c(g, release, ns, own);
			if (spin == SLEEP_UNLOCKED) {
				Py_DECREF(release);
				return NULL;
			}
			if (spin < 0) {
				unlock(release);
				return NULL;
			}
			queued = PyObject_Length(e->queue);
			if (queued != 0 || !g->open || e->closed || (spin != RPF_READY && !own)) {
				/* another thread delivered ours, the device changed, or a busy slice ended empty */
				if (queued < 0)
					PyErr_Clear();
				unlock(release);
				*handled = 0;
				return NULL;
			}
			spun = spin != RPF_READY;
			continue;
		}
		if (arm <= 0) {
			arm = 1;
			continue;
		}
		int woke = sleep_c(g, release, 0, 1);
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
		/* block: we held the doorbell and hold the lock again, nobody else sleeps on it; spin: as the Python
		 * path, look with the kicks left on, and spin again if nothing is there */
		arm = g->path.block ? -1 : 0;
		spun = 0;
	}
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
		PyObject *r = recv_c(e, bufsize, with_src, &handled, NULL, 0);
		if (r || handled)
			return r;
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

/* After recvfrom_many's first message: take more for this endpoint in C while what rpc_try_recv brings in is
 * only well-formed messages for it (RpmsgDevice._take_waiting's C branch); 1 when done, 0 when the device's
 * _take_waiting must go on (a message queued, a batch with others' messages (delivered to the queues here, as
 * recv_c does), the lock held elsewhere, the gate closed), -1 on an error (the list keeps what it holds: the
 * caller returns it). A broken ring ends the batch quietly: the next receive reports it, nothing taken is lost. */
static int take_more_c(EndpointBase *e, PyObject *out, Py_ssize_t max, Py_ssize_t bufsize)
{
	Gate *g = e->gate;
	uint32_t addr;
	while (PyList_GET_SIZE(out) < max) {
		if (!g || e->closed || !gate_usable(g) || !u32_of(e->addr, &addr) || !e->queue)
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
		if (!g->open) {
			unlock(release);
			return 0;
		}
		queued = PyObject_Length(e->queue); /* again, under the lock */
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
			PyObject *got = queued_result(item, bufsize, 1);
			if (!got || PyList_Append(out, got) < 0) {
				Py_XDECREF(got);
				return -1;
			}
			Py_DECREF(got);
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
			if (!from || src != last_src) {
				Py_XSETREF(from, PyLong_FromUnsignedLong(src));
				last_src = src;
			}
			PyObject *data = from ? PyBytes_FromStringAndSize((const char *)payload, take) : NULL;
			PyObject *item = data ? PyTuple_New(2) : NULL;
			if (item) {
				PyTuple_SET_ITEM(item, 0, data);
				PyTuple_SET_ITEM(item, 1, Py_NewRef(from));
			} else {
				Py_XDECREF(data);
			}
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

PyObject *ep_recvfrom_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
	/* the device's hook, held from here: the gate may let go of it meanwhile */
	PyObject *hook = e->gate && e->gate->take_waiting ? Py_NewRef(e->gate->take_waiting) : NULL;
	/* What is there already, in C (a batch of ours at once); nothing: wait for one as recvfrom does, then more */
	int done = take_more_c(e, out, max, bufsize);
	if (done >= 0 && PyList_GET_SIZE(out) == 0) {
		int handled = 0;
		/* (a batch all ours that the wait took in: the first max straight into out, the rest queued) */
		PyObject *first = done ? recv_c(e, bufsize, 1, &handled, out, max) : NULL;
		if (!first) {
			Py_DECREF(out);
			Py_XDECREF(hook);
			if (handled)
				return NULL;
			return slow(e, s_recvfrom_many_py, args, nargs, kwnames);
		}
		if (first != Py_None && PyList_Append(out, first) < 0) {
			Py_DECREF(first);
			Py_DECREF(out);
			Py_XDECREF(hook);
			return NULL;
		}
		Py_DECREF(first);
		done = take_more_c(e, out, max, bufsize);
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
	return out;
}
