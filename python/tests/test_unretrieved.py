"""An exception nobody retrieves is logged once, when its future is collected."""
import gc
import logging
import time
import weakref

import pytest

from conftest import T


class Unseen(Exception):
    pass


def _raise(msg):
    raise Unseen(msg)


def _collect(ref, until=lambda: False):
    """Collects until the future is gone, or until `until()` holds (a logged record may keep
    the future alive: the record's args)."""
    deadline = time.monotonic() + T
    while ref() is not None and not until() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert ref() is None or until(), "the future was never collected"
    gc.collect()


def _records(caplog, msg):
    return [r for r in caplog.records
            if r.name == "background" and (msg in r.getMessage() or
                                           (r.exc_info and msg in str(r.exc_info[1])) or
                                           (r.exc_text and msg in r.exc_text))]


@pytest.mark.parametrize("how", ["run", "task", "executor"])
def test_unretrieved_exception_is_logged_once(bg, caplog, how):
    caplog.set_level(logging.ERROR, logger="background")
    bg.results.clear()
    msg = f"nobody-looked-{how}"
    if how == "executor":
        ex = bg.Executor(1)
        f = ex.submit(_raise, msg)
    elif how == "task":
        f = bg.task(_raise)(msg)
    else:
        f = bg.run(_raise, msg)
    import concurrent.futures as cf
    cf.wait([f], timeout=T)  # does not retrieve the exception
    assert f.done()
    if how == "executor":
        ex.shutdown(wait=True)
    else:
        assert bg.wait(timeout=T)
    bg.results.clear()
    assert _records(caplog, msg) == []  # not before collection
    ref = weakref.ref(f)
    del f
    _collect(ref, until=lambda: _records(caplog, msg))
    recs = _records(caplog, msg)
    assert len(recs) == 1, [r.getMessage() for r in caplog.records]
    rec = recs[0]
    assert rec.levelno == logging.ERROR
    assert rec.exc_info is not None and isinstance(rec.exc_info[1], Unseen)
    text = caplog.text
    assert "Traceback" in text and "Unseen" in text and msg in text
    gc.collect()
    assert len(_records(caplog, msg)) == 1  # once


@pytest.mark.parametrize("retrieve", ["result", "exception"])
def test_retrieved_exception_is_not_logged(bg, caplog, retrieve):
    caplog.set_level(logging.DEBUG, logger="background")
    bg.results.clear()
    msg = f"looked-at-{retrieve}"
    f = bg.run(_raise, msg)
    if retrieve == "result":
        with pytest.raises(Unseen):
            f.result(timeout=T)
    else:
        assert isinstance(f.exception(timeout=T), Unseen)
    assert bg.wait(timeout=T)
    bg.results.clear()
    ref = weakref.ref(f)
    del f
    _collect(ref)
    assert _records(caplog, msg) == []
    assert not [r for r in caplog.records if r.name == "background" and r.levelno >= logging.ERROR]


def test_successful_and_cancelled_futures_are_not_logged(bg, caplog):
    import threading
    caplog.set_level(logging.DEBUG, logger="background")
    bg.n = 1
    bg.results.clear()
    gate = threading.Event()
    started = threading.Event()
    blocker = bg.run(lambda: (started.set(), gate.wait(T))[1])
    assert started.wait(T)
    cancelled = bg.run(_raise, "never-ran")
    assert cancelled.cancel()
    gate.set()
    ok = bg.run(lambda: 1)
    assert bg.wait(timeout=T)
    bg.results.clear()
    refs = [weakref.ref(f) for f in (blocker, cancelled, ok)]
    del blocker, cancelled, ok
    for r in refs:
        _collect(r)
    assert not [r for r in caplog.records if r.name == "background" and r.levelno >= logging.ERROR]
