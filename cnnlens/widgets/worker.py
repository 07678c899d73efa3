"""One background thread that runs the newest request: the shape of every job of a view.

The Lens's top-image ranking (``detail_job.py``), its feature visualisations
(``featvis_job.py``) and Compare's canonical maps (``maps_job.py``) each compute on
request, off the kernel's main thread, and only the newest request matters.
:class:`Worker` holds that choreography once:

* :meth:`Worker.submit` replaces a request still waiting and starts the thread if idle
  (one daemon thread, alive only while there is work);
* :meth:`Worker.stale` says, on the worker's thread, whether a newer :meth:`~Worker.submit`
  or a :meth:`~Worker.cancel` came after the running request: a job drops a stale
  result, and may pass ``stale`` as a long computation's cancel check;
* an exception of the running request goes to ``on_error(request, exc)`` (the job shows
  it in place, or drops it when stale); :meth:`Worker.wait` never hangs, even after a
  crash of ``on_error`` itself.

Trait updates from the thread are safe with ipykernel >= 6 / ipywidgets 8 (comm messages
go through the kernel's IOPub thread; ``tests/test_compare_widget.py`` checks it against a
real kernel).

>>> done = []
>>> w = Worker(done.append, on_error=print, name="example")
>>> w.submit(1); w.wait(5), done
(True, [1])
"""

from __future__ import annotations

import threading

__all__ = ["Worker"]


class Worker:
    """Run ``run(request)`` on one daemon thread, newest request first, older ones dropped.

    Parameters
    ----------
    run : callable
        ``run(request)``, called on the worker's thread.
    on_error : callable
        ``on_error(request, exc)`` when ``run`` raised (on the worker's thread).
    name : str
        The thread's name.

    Attributes
    ----------
    lock : threading.RLock
        Held while the worker's state changes; a job holds it too around a check of
        :meth:`stale` and what it then writes, so a newer request cannot slip between.
    """

    def __init__(self, run, on_error, name: str):
        self._run, self._on_error, self._name = run, on_error, name
        self.lock = threading.RLock()
        self._idle = threading.Condition(self.lock)
        self._serial = 0  # of the newest submit or cancel
        self._running = 0  # serial of the request on the thread
        self._pending = None  # the request waiting for the thread
        self._thread = None  # the thread, while it has work
        self._closed = False

    @property
    def busy(self) -> bool:
        """True while a request waits or runs."""
        with self.lock:
            return self._thread is not None

    @property
    def pending(self):
        """The request waiting for the thread (None: none)."""
        return self._pending

    def submit(self, request) -> None:
        """Run ``request`` next; a request still waiting is dropped, the running one is stale."""
        with self.lock:
            if self._closed:
                return
            self._serial += 1
            self._pending = request
            if self._thread is None:
                self._start()

    def cancel(self) -> None:
        """Drop a waiting request and make the running one stale."""
        with self.lock:
            self._serial += 1
            self._pending = None

    def close(self) -> None:
        """:meth:`cancel`, and take no request from now on."""
        with self.lock:
            self._closed = True
            self.cancel()

    def stale(self) -> bool:
        """Whether a submit or cancel came after the request now running."""
        return self._running != self._serial

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no request waits or runs; False if ``timeout`` (seconds) passed first."""
        with self.lock:
            return self._idle.wait_for(lambda: self._thread is None, timeout)

    def _start(self):
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def _loop(self):
        try:
            while True:
                with self.lock:
                    if self._pending is None:
                        return
                    request, self._pending, self._running = self._pending, None, self._serial
                try:
                    self._run(request)
                except Exception as exc:  # noqa: BLE001 - the job shows it in place
                    self._on_error(request, exc)
        finally:  # also after a crash (a user's observer raised): never leave wait() hanging
            with self.lock:
                self._thread = None
                if self._pending is not None:  # queued while this thread was on its way out
                    self._start()
                self._idle.notify_all()
