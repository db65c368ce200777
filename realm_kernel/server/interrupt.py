"""One Ctrl-C stops the realm's JupyterLab (`make play`, `realm play`) in order: the
daemon at a step boundary with a checkpoint, then the Task Master, then JupyterLab.

Jupyter's own SIGINT handler asks "Shut down this Jupyter server (y/[n])?" and resumes
after 5 s, so a single Ctrl-C stopped nothing. Extensions load after Jupyter installs
its handlers, so this one replaces it. The stop runs on a thread (the daemon may take
up to [daemon] stop_timeout_s to finish its step and save), then asks the server's
IOLoop to stop; a Ctrl-C meanwhile says it is still stopping and changes nothing."""

from __future__ import annotations

import signal
import threading

STOPPING = ("Ctrl-C: stopping the daemon at a step boundary (with a checkpoint), then the "
            "Task Master, then JupyterLab")
STILL_STOPPING = ("still stopping: the daemon finishes its step and saves a checkpoint first "
                  "(at most [daemon] stop_timeout_s), then the Task Master, then JupyterLab")


def stop_in_order_on_ctrl_c(serverapp, weaver=None) -> bool:
    """Install the handler (`weaver` None: a server without the realm's services, such as
    `realm oracle serve`, just stops); False where signals cannot be set (not the main
    thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    stopping = threading.Event()

    def stop() -> None:
        try:
            if weaver is not None:
                weaver.stop()
        finally:
            serverapp.io_loop.add_callback(serverapp.stop)

    def on_sigint(_signum, _frame) -> None:
        if stopping.is_set():
            serverapp.log.warning(STILL_STOPPING)
            return
        stopping.set()
        serverapp.log.warning(STOPPING)
        threading.Thread(target=stop, name="realm-stop", daemon=True).start()

    signal.signal(signal.SIGINT, on_sigint)
    return True
