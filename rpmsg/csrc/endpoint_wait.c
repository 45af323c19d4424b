/* The C receive's waiting (endpoint_recv.c): whether it may sleep, the sleep on the doorbell (or the spin on the
 * ring) without the lock and the GIL, and the kick a receive asked for. */
#include "endpoint.h"

#include <time.h>

/* Whether a thread sleeps on the doorbell (the gate's owner, Waiter.owner). */
int doorbell_owned(Gate *g)
{
	return g->owner && g->owner != Py_None;
}

/* 1 if a receive with nothing waiting may wait in C: the wait set (set_wait), the endpoint blocking (a timeout
 * of None, or a positive number of seconds: stored in *timeout, a new reference, when not None) and no other
 * thread owning the doorbell (it then waits on the condition: the Python path); 0 if not (timeout 0 too: no
 * wait, the Python path says WouldBlock); -1 error. */
int may_sleep(Gate *g, EndpointBase *e, PyObject **timeout)
{
	*timeout = NULL;
	if (!(g->path.block || g->spin_ns > 0 || g->busy_ns > 0) || g->poll_fd < 0 || !g->notify_all)
		return 0;
	PyObject *t = PyObject_GetAttr((PyObject *)e, s_timeout);
	if (!t)
		return -1;
	if (t != Py_None) {
		double s = PyFloat_Check(t) || PyLong_Check(t) ? PyFloat_AsDouble(t) : -1.0;
		if (s == -1.0 && PyErr_Occurred())
			PyErr_Clear(); /* not a plain number: the Python path's */
		if (!(s > 0 && s < 1e9)) { /* also NaN */
			Py_DECREF(t);
			return 0;
		}
		*timeout = t;
	} else {
		Py_DECREF(t);
	}
	if (doorbell_owned(g)) {
		Py_CLEAR(*timeout);
		return 0;
	}
	return 1;
}

/* The deadline a C receive of this thread handed over (ns; -1: none), taken: the first receive that asks has it. */
long long take_handed(EndpointBase *e)
{
	long long d = e->handed_deadline;
	if (d <= 0 || e->handed_thread != PyThread_get_thread_ident())
		return -1;
	e->handed_deadline = 0;
	return d;
}

/* slow(), with the deadline of a wait begun in C (>= 0) handed to what it calls (Endpoint._deadline, or the C
 * receive it calls in turn); left for nobody afterwards. */
PyObject *hand_over(EndpointBase *e, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		    long long deadline)
{
	if (deadline < 0)
		return slow(e, name, args, nargs, kwnames);
	unsigned long me = PyThread_get_thread_ident();
	e->handed_deadline = deadline;
	e->handed_thread = me;
	PyObject *r = slow(e, name, args, nargs, kwnames);
	if (e->handed_thread == me)
		e->handed_deadline = 0;
	return r;
}

/* Wait mode spin's budget adapts as KVM's halt polling does (virt/kvm/kvm_main.c: kvm_vcpu_halt,
 * grow_halt_poll_ns, shrink_halt_poll_ns): when the message that ended a sleep came so soon after the spin gave
 * up that a spin of at most SPIN_GROW_MAX x spin_ns would have caught it (a peer whose turnaround is just longer
 * than the spin, as User-Mode Linux's ~55 us against 50 us), the budget doubles, up to that; a sleep longer than
 * that (the traffic paused) sets it back to spin_ns. Only the C receive adapts it. */
#define SPIN_GROW_MAX 4

long long spin_budget(const Gate *g)
{
	long long cur = g->spin_cur, max = g->spin_ns * SPIN_GROW_MAX;
	return cur < g->spin_ns ? g->spin_ns : cur > max ? max : cur;
}

/* After a spin of spin_budget(g) that gave up and a sleep of slept_ns that a kick ended. */
void spin_adapt(Gate *g, long long slept_ns)
{
	long long cur = spin_budget(g), max = g->spin_ns * SPIN_GROW_MAX;
	if (cur + slept_ns <= max)
		g->spin_cur = 2 * cur < max ? 2 * cur : max;
	else if (slept_ns > max)
		g->spin_cur = g->spin_ns;
}

/* time.monotonic()'s clock, in ns */
long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleep on the doorbell without the lock and the GIL, as Waiter.owning + Waiter.block (rpmsg/waiting.py) do: own the
 * doorbell, release the lock, wait, take the lock back, disown, notify the condition. The wait's result
 * (RPF_KICKED, RPF_WOKEN, RPF_DOORBELL, RPF_EINTR after the signal handlers ran), -1 on an error with the lock
 * held, SLEEP_UNLOCKED on an error without it; RPF_TIMEOUT after timeout_ns (< 0: none). spin_ns > 0: spin on the receive ring that long instead (the
 * spin of Waiter.wait in modes "spin", owning the doorbell, and "busy", `own` 0: not owning it): RPF_READY or
 * RPF_TIMEOUT, the signal handlers run after it. */
int sleep_c(Gate *g, PyObject *release, long long spin_ns, int own, long long timeout_ns)
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
	int fast = Py_IS_TYPE(release, &DeviceLockType); /* lock_try's reference: the DeviceLock itself */
	PyObject *r = fast ? (dlock_release((DeviceLock *)release) < 0 ? NULL : Py_NewRef(Py_None))
			   : PyObject_Vectorcall(release, NULL, 0, NULL);
	if (!r) {
		if (own)
			Py_CLEAR(g->owner);
		goto out;
	}
	Py_DECREF(r);
	int waited;
	Py_BEGIN_ALLOW_THREADS
	waited = spin_ns > 0 ? rpc_spin(&path, spin_ns) : rpc_sleep(&path, poll_fd, kick_fd, wake_fd, timeout_ns);
	Py_END_ALLOW_THREADS
	r = fast ? (dlock_acquire((DeviceLock *)release, -1) == 1 ? Py_NewRef(Py_None) : NULL)
		 : PyObject_Vectorcall(acquire, NULL, 0, NULL);
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

/* --- owning the doorbell from Python (Waiter.owning, rpmsg/waiting.py) -----------------------------------------
 * A signal handler runs where Python code starts or a C call returns, and one that raises there ends what it
 * interrupts. Taking the doorbell and letting go of the lock, and then taking the lock back and giving the
 * doorbell up, were Python calls: a handler's exception at the entry of the one that takes the lock back left
 * the lock free and the doorbell owned (the receive then failed with "cannot release un-acquired lock", and every
 * later receive waited on a doorbell nobody sleeps on). Here each pair is one C call. */

const char gate_own_doc[] = "own(lock)\n\n"
			    "This thread owns the doorbell (the gate's `owner` = threading.get_ident()), then releases "
			    "`lock` once: one call, entered with the lock held. Always followed by disown (in a finally "
			    "block), also when this raises.";

PyObject *gate_own(Gate *g, PyObject *lock)
{
	PyObject *me = PyLong_FromUnsignedLong(PyThread_get_thread_ident()); /* as threading.get_ident() */
	if (!me)
		return NULL;
	Py_XSETREF(g->owner, me);
	if (Py_IS_TYPE(lock, &DeviceLockType)) {
		if (dlock_release((DeviceLock *)lock) < 0)
			return NULL;
		Py_RETURN_NONE;
	}
	return PyObject_CallMethod(lock, "release", NULL); /* another lock (tests): its own release */
}

/* The first exception raised while giving the doorbell up, raised at the end (PyErr_Fetch: Python 3.11 has no
 * PyErr_GetRaisedException). */
struct kept {
	PyObject *type, *value, *tb;
};

static void keep_first(struct kept *k)
{
	if (k->type)
		PyErr_Clear();
	else
		PyErr_Fetch(&k->type, &k->value, &k->tb);
}

/* Another lock than a DeviceLock (tests): unless owned, acquire it; a handler's exception meanwhile is kept and the
 * lock taken all the same (a lock whose calls keep failing: given up after 100 tries, its first error raised). */
static void retake_other(PyObject *lock, struct kept *saved)
{
	for (int tries = 0; tries < 100; tries++) {
		PyObject *r = PyObject_CallMethod(lock, "_is_owned", NULL);
		int owned = r ? PyObject_IsTrue(r) : -1;
		Py_XDECREF(r);
		if (owned > 0)
			return;
		if (owned == 0) {
			r = PyObject_CallMethod(lock, "acquire", NULL);
			if (r) {
				Py_DECREF(r);
				continue; /* taken, unless a handler raised as acquire returned: then looked at again */
			}
		}
		keep_first(saved);
	}
}

const char gate_disown_doc[] = "disown(lock, notify_all)\n\n"
			       "Take `lock` back unless this thread holds it (a signal handler's exception does not stop "
			       "that: it is raised once the lock is held), give the doorbell up (`owner` = None) and, if "
			       "threads wait on the device's condition (`waiters`), call notify_all; then raise the first "
			       "handler's exception, if one was raised meanwhile.";

PyObject *gate_disown(Gate *g, PyObject *args)
{
	PyObject *lock, *notify_all;
	struct kept saved = { NULL, NULL, NULL };
	if (!PyArg_ParseTuple(args, "OO:disown", &lock, &notify_all))
		return NULL;
	if (Py_IS_TYPE(lock, &DeviceLockType))
		dlock_retake((DeviceLock *)lock);
	else
		retake_other(lock, &saved);
	Py_CLEAR(g->owner);
	for (int tries = 0; g->waiters && tries < 2; tries++) { /* again if a pending handler raised at its start */
		PyObject *r = PyObject_CallNoArgs(notify_all);
		if (r) {
			Py_DECREF(r);
			break;
		}
		keep_first(&saved);
	}
	if (saved.type) {
		PyErr_Restore(saved.type, saved.value, saved.tb);
		return NULL;
	}
	Py_RETURN_NONE;
}

/* Whether the gate still lets this receive take its case: the copying receives go while it is open, a zero-copy
 * endpoint's lend while only zero-copy receivers shut it (peek_open). */
static int still_open(const Gate *g, int lend)
{
	return lend ? g->peek_open : g->open;
}

int wait_turn(EndpointBase *e, PyObject **release, long long *deadline, int *handled, int lend, recv_look look,
	      void *ctx)
{
	Gate *g = e->gate;
	/* As the Python path: block mode turns the peer's kicks off while we look, and on (looking once more)
	 * before sleeping; but never while another thread sleeps on the doorbell (it would sleep through every
	 * message: issue 17's lost wake-up). Only checked when the kicks are on: not in a lone receiver's loop. The
	 * lend looks with the kicks as they are, as its twin does (Endpoint._recv_message: the device's poll, then
	 * Waiter.wait, which turns them on to sleep). */
	int look_off = g->path.block && !lend; /* block mode's kicks off while looking */
	int arm = look_off && g->path.kicks_on && !doorbell_owned(g) ? -1 : 0;
	int spun = 0; /* modes spin and busy: spun since the last message or sleep */
	long long spin_end = 0; /* mode spin: when the last spin gave up (mono_ns; 0: it did not), for spin_adapt */
	/* *deadline: mono_ns() when the endpoint's timeout runs out (handed over by the caller, or set when the first
	 * wait begins: the caller hands it to the Python method if this one hands over); -1: none yet */
	for (;;) {
		int rc = look(e, arm, ctx);
		if (rc < 0 && rc != RPF_GENERAL) {
			failed(g->recv_failed, rc, *release);
			return 0;
		}
		if (rc > 0)
			return rc;
		PyObject *timeout = NULL;
		int may = rc == 0 ? may_sleep(g, e, &timeout) : 0;
		if (may > 0 && timeout && g->busy_ns > 0) /* busy hands over after each slice: the Python path keeps
							 * the time limit */
			may = 0;
		if (may <= 0) { /* the Python path: it waits (on the condition), says WouldBlock (timeout 0), or
				 * takes what the look left (a message larger than the batch buffer, another's first) */
			Py_XDECREF(timeout);
			unlock(*release);
			*handled = may < 0;
			return 0;
		}
		long long left = -1; /* ns the wait may take; -1: no limit */
		if (timeout) {
			long long now = mono_ns();
			if (*deadline < 0)
				*deadline = now + (long long)(PyFloat_AsDouble(timeout) * 1e9);
			left = *deadline - now;
			if (left <= 0) { /* as the Python path: it looked once more (this pass) and raises */
				unlock(*release);
				PyObject *r = PyObject_CallMethodOneArg((PyObject *)e, s_recv_timed_out, timeout);
				Py_DECREF(timeout);
				if (r) { /* it did not raise: the Python method decides */
					Py_DECREF(r);
					*handled = 0;
				}
				return 0;
			}
			Py_DECREF(timeout);
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
			long long ns = g->busy_ns > 0 ? g->busy_ns : spin_budget(g);
			if (left >= 0 && left < ns)
				ns = left;
			int own = g->busy_ns <= 0;
			int spin = sleep_c(g, *release, ns, own, -1);
			if (spin == SLEEP_UNLOCKED) {
				Py_DECREF(*release);
				return 0;
			}
			if (spin < 0) {
				unlock(*release);
				return 0;
			}
			Py_ssize_t queued = PyObject_Length(e->queue);
			if (queued != 0 || !still_open(g, lend) || e->closed || (spin != RPF_READY && !own)) {
				/* another thread delivered ours, the device changed, or a busy slice ended empty */
				if (queued < 0)
					PyErr_Clear();
				unlock(*release);
				*handled = 0;
				return 0;
			}
			spun = spin != RPF_READY;
			spin_end = spun && own ? mono_ns() : 0;
			continue;
		}
		if (arm <= 0) {
			arm = 1;
			continue;
		}
		int woke = sleep_c(g, *release, 0, 1, left);
		if (woke == RPF_KICKED && spin_end)
			spin_adapt(g, mono_ns() - spin_end);
		spin_end = 0;
		if (woke == SLEEP_UNLOCKED) {
			Py_DECREF(*release);
			return 0;
		}
		if (woke < 0) {
			unlock(*release);
			return 0;
		}
		Py_ssize_t queued = PyObject_Length(e->queue);
		if (queued != 0 || woke == RPF_DOORBELL || !still_open(g, lend) || e->closed) {
			/* another thread delivered ours, the doorbell needs its own look (the peer's end?), or the device
			 * changed: the Python path */
			if (queued < 0)
				PyErr_Clear();
			unlock(*release);
			*handled = 0;
			return 0;
		}
		/* block: we held the doorbell and hold the lock again, nobody else sleeps on it; spin: as the Python
		 * path, look with the kicks left on, and spin again if nothing is there */
		arm = look_off ? -1 : 0;
		spun = 0;
	}
}
