"""The seed's own code, run unchanged (shorter sleeps)."""
import threading
import time

from conftest import T


def test_notebook_loop(bg):
    import background as bg_mod  # the seed writes: import background as bg
    assert bg_mod is bg
    ran = []
    lock = threading.Lock()

    @bg_mod.task
    def bg_work():
        time.sleep(0.2)
        with lock:
            ran.append(1)

    bg_mod.n = 110
    f_list = [bg_work() for _ in range(100)]
    while not all([f.done() for f in f_list]):
        pass
    assert [f.result() for f in f_list] == [None] * 100
    assert len(ran) == 100


def test_notebook_loop_one_after_the_other(bg):
    bg.n = 1
    order = []

    @bg.task
    def bg_work(i):
        time.sleep(0.002)
        order.append(i)
        return i

    f_list = [bg_work(i) for i in range(30)]
    while not all([f.done() for f in f_list]):
        pass
    assert [f.result() for f in f_list] == list(range(30))
    assert order == list(range(30))  # one worker: FIFO


def test_readme_send_email(bg, capsys):
    import background

    @background.task
    def send_email(to, subject, body):
        time.sleep(0.05)  # Simulate sending.
        print(f"Sent '{subject}' to {to}")

    background.results.clear()
    futures = [
        send_email("alice@example.com", "Hello", "How are you?"),
        send_email("bob@example.com", "Update", "Project shipped."),
        send_email("charlie@example.com", "Reminder", "Meeting at 3."),
    ]
    print("All emails queued.")
    assert list(background.results) == futures
    assert [f.result(timeout=T) for f in background.results] == [None, None, None]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "All emails queued."
    assert sorted(out[1:]) == sorted([
        "Sent 'Hello' to alice@example.com",
        "Sent 'Update' to bob@example.com",
        "Sent 'Reminder' to charlie@example.com",
    ])


def test_readme_process_image(bg):
    import background

    seen = []

    def resize_and_compress(path):
        seen.append((path, threading.get_ident()))
        return path + ".small"

    @background.task
    def process_image(path):
        return resize_and_compress(path)

    background.n = 8
    assert background.n == 8
    future = process_image("/uploads/photo.jpg")
    assert future.result() == "/uploads/photo.jpg.small"
    assert [p for p, _ in seen] == ["/uploads/photo.jpg"]
    assert seen[0][1] != threading.get_ident()


def test_readme_advanced_usage_40_threads(bg):
    import background

    background.n = 40
    done = threading.Event()
    got = []
    lock = threading.Lock()

    @background.task
    def work():
        time.sleep(0.01)
        return "Done!"

    @background.callback
    def work_callback(future):
        with lock:
            got.append(future.result())
            if len(got) == 100:
                done.set()

    for _ in range(100):
        work()
    assert done.wait(T)
    assert got == ["Done!"] * 100
