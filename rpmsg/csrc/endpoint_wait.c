/* The C receive's waiting (endpoint_recv.c): whether it may sleep, the sleep on the doorbell (or the spin on the
 * ring) without the lock and the GIL, and the kick a receive asked for. */
#include "endpoint.h"

/* Whether a thread sleeps on the doorbell (the gate's owner, Waiter.owner). */
int doorbell_owned(Gate *g)
{
	return g->owner && g->owner != Py_None;
}

/* 1 if a receive with nothing waiting may wait in C: the wait set (set_wait), no timeout on the endpoint and no
 * other thread owning the doorbell (it then waits on the condition: the Python path); 0 if not; -1 error. */
int may_sleep(Gate *g, EndpointBase *e)
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

/* Sleep on the doorbell without the lock and the GIL, as Waiter.owned + Waiter.block (rpmsg/waiting.py) do: own the
 * doorbell, release the lock, wait, take the lock back, disown, notify the condition. The wait's result
 * (RPF_KICKED, RPF_WOKEN, RPF_DOORBELL, RPF_EINTR after the signal handlers ran), -1 on an error with the lock
 * held, SLEEP_UNLOCKED on an error without it. spin_ns > 0: spin on the receive ring that long instead (the
 * spin of Waiter.wait in modes "spin", owning the doorbell, and "busy", `own` 0: not owning it): RPF_READY or
 * RPF_TIMEOUT, the signal handlers run after it. */
int sleep_c(Gate *g, PyObject *release, long long spin_ns, int own)
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
int recv_kick(Gate *g)
{
	return rpc_recv_kicked(&g->path) ? 0 : kick_python(g, rpc_recv_queue(&g->path));
}
