"""How many of Numba's threads a parallel kernel call runs on, and how those threads wait.

Numba's thread count (``numba.set_num_threads``, :func:`fastnn.set_num_threads`; at most
``NUMBA_NUM_THREADS``, which joblib's worker processes set to their share of the cores) is what
a call *may* use. Whether using them pays depends on the call (a few microseconds of work gain
nothing from a second thread) and on the machine at that moment: a thread that another process
has descheduled holds up the others at every barrier of the ``prange`` loops (OpenMP hands each
thread a fixed share of the iterations), so on a busy machine one thread is often faster than
two. Neither is known in advance, so each kind of call is timed: :class:`ThreadChoice` runs it
on all the threads or on the calling thread alone, whichever its recent calls of that kind
took less time with, and now and then tries the other again. Results do not depend on the
choice: the kernels' chunks and task groups are fixed by the data's shape, never by the
number of threads.

Waiting: Numba's ``omp`` threading layer uses libgomp, whose idle threads spin for
``GOMP_SPINCOUNT`` iterations (300,000 unless set, milliseconds on this machine class) before
they sleep. A spinning thread keeps its core from the thread it is waiting for when another
process wants the other core. :func:`bounded_spin` sets a short spin, long enough to bridge the
serial stretches of a call and the Python between calls (shorter, the threads fall asleep
and the next parallel loop waits for them to wake), before Numba first loads libgomp, unless
the environment already says how OpenMP threads wait. A busy machine is the per-call choice's
to handle: it keeps the threads idle there. ``docs/threads.md`` has the measurements.
"""

import os
import statistics
from collections import deque
from time import perf_counter

import numba

SPIN_COUNT = "10000"
"""libgomp's ``GOMP_SPINCOUNT`` that :func:`bounded_spin` sets: about 0.2 ms of spinning here."""


def bounded_spin():
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` unless ``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT`` is set. libgomp reads it once, when it is loaded: by Numba, at the first
    parallel call (or by a library imported before fastnn that links it, such as PyTorch, in
    which case its own setting stays). Child processes inherit it."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT


ALL, ONE = 0, 1
"""The two choices: every thread Numba may use, or the calling thread alone."""


class _Kind:
    """The recent times of one kind of call, on all threads and on one, and the choice."""

    __slots__ = ("choice", "countdown", "interval", "probing", "times", "warm")

    def __init__(self, choice):
        self.times = (deque(maxlen=ThreadChoice.SAMPLES), deque(maxlen=ThreadChoice.SAMPLES))
        self.choice = choice
        self.interval = ThreadChoice.FIRST_INTERVAL
        self.countdown = self.interval + ThreadChoice.WARM_CALLS
        self.probing = 0
        self.warm = ThreadChoice.WARM_CALLS

    def pick(self):
        """The choice for the next call: the current one, or the other during a re-try."""
        if self.countdown > 0:
            self.countdown -= 1
            return self.choice
        self.probing += 1
        return ONE - self.choice

    def record(self, choice, seconds):
        """Keep the time of a call; True when it was a re-try, which has now decided."""
        if self.warm:
            self.warm -= 1
            return False
        times = self.times[choice]
        if not self.probing:
            times.append(seconds)
            return False
        if choice == ALL and self.probing < ThreadChoice.PROBE_CALLS:  # threads asleep
            return False
        # A re-try stands for the other choice alone: its older times may be from another
        # state of the machine.
        self.probing = 0
        times.clear()
        times.append(seconds)
        if seconds < statistics.median(self.times[self.choice]):
            self.choice = choice
            self.interval = self.countdown = ThreadChoice.FIRST_INTERVAL
        else:
            self.interval = min(2 * self.interval, ThreadChoice.LONGEST_INTERVAL)
            self.countdown = self.interval
        return True


class ThreadChoice:
    """Runs each call of a parallel kernel on all of Numba's threads or on the calling thread,
    by the times measured for its kind of call (a key: the kernel, the network, the rows'
    :func:`size_class`, the dtype).

    A new kind starts on the choice the last decision of any kind made (the state of the
    machine is the same for all; all threads at first); after ``WARM_CALLS`` untimed calls
    and ``FIRST_INTERVAL`` timed ones it
    tries the other choice (on all threads ``PROBE_CALLS`` calls, the last timed) and keeps
    whichever was faster: the other choice if its call beat the median of the last
    ``SAMPLES`` calls of the current choice, else the current choice, which then goes twice as
    many calls (up to ``LONGEST_INTERVAL``) before the next try. A machine that becomes busy
    slows the calls on all threads and the median follows within two calls; one that becomes
    idle again is found at the next try. The calls that decide are the calls themselves: no
    call is made only to measure.
    """

    SAMPLES = 3
    WARM_CALLS = 3
    """The first calls of a kind, not timed: the first loads (or compiles) the kernel, and the
    next few still fault in the memory of its buffers and wake cores that were idle; on a
    call of a few milliseconds they took 2–3 times as long as the calls after them, which
    would decide the first re-try."""
    FIRST_INTERVAL = 4
    LONGEST_INTERVAL = 256
    PROBE_CALLS = 2
    """Calls of a re-try on all threads; only the last is timed, as the first also wakes the
    threads (and, on a virtual machine, the cores they were idle on), which a choice kept for
    many calls does not pay. A re-try on one thread is one call."""

    def __init__(self):
        self._kinds = {}
        self._last = ALL

    def call(self, key, kernel, *args):
        """``kernel(*args)`` on the threads chosen for calls of kind ``key``."""
        most = numba.get_num_threads()
        if most == 1:
            return kernel(*args)
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = _Kind(self._last)
        choice = kind.pick()
        if choice == ONE:
            numba.set_num_threads(1)
        start = perf_counter()
        try:
            result = kernel(*args)
        finally:
            if choice == ONE:
                numba.set_num_threads(most)
        if kind.record(choice, perf_counter() - start):
            self._last = kind.choice
        return result

    def choices(self):
        """Key → ``"all"`` or ``"one"``: the current choice of every kind of call seen."""
        return {key: ("all", "one")[kind.choice] for key, kind in self._kinds.items()}

    def forget(self):
        """Drop every measurement (each kind starts again on all threads)."""
        self._kinds.clear()
        self._last = ALL


def size_class(n):
    """The power of two at or above n: the rows of calls that share a kind (a mini-batch of
    200 rows and an epoch's last batch of 197 are timed as one kind)."""
    return 1 << max(n - 1, 0).bit_length()


THREADS = ThreadChoice()
"""The choice every parallel kernel call of this process goes through."""
