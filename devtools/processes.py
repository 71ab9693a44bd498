"""Running the local run's processes together, and stopping them with one Ctrl-C or SIGTERM.

Why not `cmd & cmd & trap 'kill 0'` (what bin/run did): every child shared bin/run's process group, so a Ctrl-C (the
terminal signals the whole foreground group) and then the trap's `kill 0` signalled each of django-q2's processes
(cluster, sentinel, pusher, monitor, workers) directly, twice, while the cluster was itself stopping them in order;
the cluster then waited forever for children that had already gone (two SIGTERMs out of two left it hanging). And
`runserver`'s autoreloader kept a second process.

Here each child starts in a session of its own (the terminal's Ctrl-C reaches only this supervisor), gets exactly one
SIGTERM at its main process (django-q2's cluster stops its own workers; runserver runs with --noreload, one process),
and whatever is still alive after the grace period is killed with its whole process group.
"""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

POLL_SECONDS = 0.1


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    killed: bool = False  # did not stop within the grace period

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0


@dataclass
class Supervisor:
    children: list[Child]
    env: dict[str, str] | None = None
    cwd: str | None = None
    grace: float = 20.0
    stop_requested: threading.Event = field(default_factory=threading.Event)
    log: Callable[[str], None] = print

    def start(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(child.argv, env=self.env, cwd=self.cwd, start_new_session=True)  # noqa: S603 - our own argv

    def install_signal_handlers(self) -> None:
        """SIGINT (Ctrl-C) and SIGTERM ask for a stop; a second one while stopping changes nothing."""

        def handler(signum, frame):
            self.stop_requested.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def wait(self) -> Child | None:
        """Until a stop is asked for (None) or a child exits on its own (that child)."""
        while not self.stop_requested.wait(POLL_SECONDS):
            for child in self.children:
                if child.process and child.process.poll() is not None:
                    return child
        return None

    def stop(self) -> dict[str, int]:
        """One SIGTERM to each child's main process, up to `grace` seconds for all to exit, then SIGKILL to the process
        group of any still running. Leftovers in a group whose main process exited (orphaned workers) go too.
        Returns each child's exit code."""
        for child in self.children:
            if child.process and child.process.poll() is None:
                _signal(child.pid, signal.SIGTERM, group=False)
        deadline = time.monotonic() + self.grace
        for child in self.children:
            if not child.process:
                continue
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.killed = True
                self.log(f"{child.name} did not stop within {self.grace:.0f} s: killed")
                _signal(child.pid, signal.SIGKILL, group=True)
                child.process.wait()
        for child in self.children:
            if child.process and _group_alive(child.pid):
                _signal(child.pid, signal.SIGKILL, group=True)
        return {child.name: child.process.returncode for child in self.children if child.process}


def _signal(pid: int, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signum)  # the child leads its own session, so its pid is its group id
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
