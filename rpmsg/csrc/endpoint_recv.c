/* The endpoint's receives in C: recv, recvfrom, recvfrom_many, and the blocking receive's sleep. recv_c and
 * take_more_c return NULL with no exception set (or 0) when the Python method must take the call. */
#include "endpoint.h"

/* Whether a thread sleeps on the doorbell (the gate's owner, Waiter.owner). */
static int doorbell_owned(Gate *g)
{
	return g->owner && g->owner != Py_None;
}

/* 1 if a receive with nothing waiting may wait in C: the wait set (set_wait), no timeout on the endpoint and no
 * other thread owning the doorbell (it then waits on the condition: the Python path); 0 if not; -1 error. */
static int may_sleep(Gate *g, EndpointBase *e)
{
	if (!(g->path.block || g->spin_ns > 0 || g->busy_ns > 0) || g->poll_fd < 0 || !g->notify_all)
		return 0;
	PyObject *timeout = PyObject_GetAttr((PyObject *)e, s_timeout);
	if (!timeout)
		return -1;
	int blocking = timeout == Py_None;
	Py_DECREF(timeout);
	return blocking && !doorbell_owned(g);
}

#define SLEEP_UNLOCKED -2 /* an error, and the lock is not held (interrupted while taking it back) */

/* Sleep on the doorbell without the lock and the GIL, as Waiter.owned + Waiter.block (rpmsg/waiting.py) do: own the
 * doorbell, release the lock, wait, take the lock back, disown, notify the condition. The wait's result
 * (RPF_KICKED, RPF_WOKEN, RPF_DOORBELL, RPF_EINTR after the signal handlers ran), -1 on an error with the lock
 * held, SLEEP_UNLOCKED on an error without it. spin_ns > 0: spin on the receive ring that long instead (the
 * spin of Waiter.wait in modes "spin", owning the doorbell, and "busy", `own` 0: not owning it): RPF_READY or
 * RPF_TIMEOUT, the signal handlers run after it. */
static int sleep_c(Gate *g, PyObject *release, long long spin_ns, int own)
{
	/* Our own references and a copy of the path: a signal handler or another thread may detach the gate while
	 * we sleep. The owner is set in the gate's struct: no Python runs (a pending signal handler could raise
	 * there). */
	if (!g->acquire || !g->notify_all)
		return RPF_DOORBELL; /* nothing to sleep with: the Python path */
	Py_INCREF(g);
	PyObject *acquire = Py_NewRef(g->acquire), *notify_all = Py_NewRef(g->notify_all);
	int poll_fd = g->poll_fd, kick_fd = g->wait_kick_fd, wake_fd = g->wake_fd;
	struct rpc_path path = g->path;
	int woke = -1;
	PyObject *me = PyLong_FromUnsignedLong(PyThread_get_thread_ident()); /* as threading.get_ident() */
	if (!me)
		goto out;
	if (own)
		Py_XSETREF(g->owner, me);
	else
		Py_DECREF(me);
	PyObject *r = PyObject_Vectorcall(release, NULL, 0, NULL);
	if (!r) {
		if (own)
			Py_CLEAR(g->owner);
		goto out;
	}
	Py_DECREF(r);
	int waited;
	Py_BEGIN_ALLOW_THREADS
	waited = spin_ns > 0 ? rpc_spin(&path, spin_ns) : rpc_sleep(&path, poll_fd, kick_fd, wake_fd);
	Py_END_ALLOW_THREADS
	r = PyObject_Vectorcall(acquire, NULL, 0, NULL);
	if (!r) { /* a signal handler raised while we waited for the lock: give the doorbell up without it */
		if (own)
			Py_CLEAR(g->owner);
		woke = SLEEP_UNLOCKED;
		goto out;
	}
	Py_DECREF(r);
	if (own)
		Py_CLEAR(g->owner);
	if (own && g->waiters) { /* the lock is held: nobody starts waiting on the condition meanwhile */
		r = PyObject_CallNoArgs(notify_all);
		if (!r)
			goto out;
		Py_DECREF(r);
	}
	if ((waited == RPF_EINTR || spin_ns > 0) && PyErr_CheckSignals() < 0)
		goto out;
	woke = waited;
out:
	Py_DECREF(acquire);
	Py_DECREF(notify_all);
	Py_DECREF(g);
	return woke;
}

/* The kick a receive asked for (RpmsgDevice._kick(fast.recv_queue)): in C when it can, else the device's.
 * 0, or -1 with an exception. */
static int recv_kick(Gate *g)
{
	return rpc_recv_kicked(&g->path) ? 0 : kick_python(g, rpc_recv_queue(&g->path));
}

/* The queue's head, when the C receive put it there (a (payload, src) tuple): popped, its bytes taken off
 * _queued_bytes (Endpoint._take). NULL with no exception: the head is a Message, or the last item goes while a
 * pollable descriptor (`_fd`, just made by fileno: its pump closes the gate) must be read: the Python method's.
 * The lock held; `queued`: the queue's length. */
static PyObject *pop_queued(EndpointBase *e, Py_ssize_t queued)
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
static int take_all_queued(EndpointBase *e, PyObject *out, Py_ssize_t bufsize, Py_ssize_t queued)
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
static PyObject *queued_result(PyObject *item, Py_ssize_t bufsize, int with_src)
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
static PyObject *queue_batch(EndpointBase *e, int n, Py_ssize_t bufsize, int with_src, PyObject *into,
			     Py_ssize_t max)
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
