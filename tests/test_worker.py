"""Tier 1 for the one "newest request wins" thread under the views' jobs (widgets/worker.py)."""
import threading

import pytest

from cnnlens.widgets.worker import Worker

# a crash of on_error ends the thread with an exception (reported after its test ends)
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def test_a_waiting_request_is_replaced_and_the_running_one_goes_stale():
    started, gate, ran, stale = threading.Event(), threading.Event(), [], []

    def run(request):
        if request == "first":
            started.set()
            gate.wait(10)
        stale.append(w.stale())
        ran.append(request)

    w = Worker(run, on_error=None, name="test")
    w.submit("first")
    assert started.wait(10)
    w.submit("second")
    w.submit("third")  # replaces "second", still waiting
    gate.set()
    assert w.wait(10) and not w.busy
    assert ran == ["first", "third"] and stale == [True, False]


def test_errors_go_to_the_callback_and_wait_survives_a_crash_of_it():
    errors = []
    w = Worker(lambda r: 1 / 0, on_error=lambda r, e: errors.append((r, type(e))), name="test")
    w.submit(1)
    assert w.wait(10) and errors == [(1, ZeroDivisionError)]

    def crash(_request, exc):
        raise exc

    w = Worker(lambda r: 1 / 0, on_error=crash, name="test")
    w.submit(1)
    assert w.wait(10)  # the thread died; wait() does not hang
    w.submit(2)  # and the next request gets a new thread
    assert w.wait(10)


def test_cancel_and_close():
    started, gate, ran = threading.Event(), threading.Event(), []
    w = Worker(lambda r: (started.set(), gate.wait(10), ran.append(r)), on_error=None,
               name="test")
    w.submit(1)
    assert started.wait(10)
    w.submit(2)
    w.cancel()  # 2 dropped, 1 stale
    assert w.pending is None
    gate.set()
    assert w.wait(10) and ran == [1]
    w.close()
    w.submit(3)
    assert not w.busy and w.wait(1) and ran == [1]
