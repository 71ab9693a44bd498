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
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

POLL_SECONDS = 0.1
LEFTOVER_SECONDS = 2.0


@dataclass
class Child:
    name: str
    argv: list[str]
    ready_when: str = ""  # a regex: the child is ready once a line of its output matches (empty: once started)
    ready_check: Callable[[], bool] | None = None  # and, when given, once this answers True (the web server answers)
    process: subprocess.Popen | None = None
    killed: bool = False  # did not stop within the grace period
    ready: threading.Event = field(default_factory=threading.Event)

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
    output_lock: threading.Lock = field(default_factory=threading.Lock)
    last_output_at: float = 0.0
    # Where the children's output goes: the console (None), or a log file, so that the console keeps only what the
    # local run itself says (the progress, the login box) and is not scrolled away by the servers' logs.
    children_log: object = None

    def start(self) -> None:
        """Start every child; their output is passed through line by line (so a message of ours is never cut into
        one of theirs), and watched for each child's readiness line."""
        env = {**(self.env if self.env is not None else os.environ), "PYTHONUNBUFFERED": "1"}
        for child in self.children:
            child.process = subprocess.Popen(  # noqa: S603 - our own argv
                child.argv,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            if not child.ready_when:
                child.ready.set()
            threading.Thread(target=self._pass_through, args=(child,), name=f"{child.name}-output", daemon=True).start()

    def _pass_through(self, child: Child) -> None:
        pattern = re.compile(child.ready_when) if child.ready_when else None
        for line in child.process.stdout:
            with self.output_lock:
                out = self.children_log or sys.stdout
                out.write(line)
                out.flush()
                self.last_output_at = time.monotonic()
            if pattern is not None and not child.ready.is_set() and pattern.search(line):
                child.ready.set()

    def say(self, text: str) -> None:
        with self.output_lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def wait_until_ready(self, *, timeout: float, quiet: float = 1.0, quiet_max: float = 5.0) -> bool:
        """Until every child is ready and their output has been quiet for `quiet` seconds (at most `quiet_max`
        more), so that what is printed next comes last. False when a child exited or a stop was asked for."""
        deadline = time.monotonic() + timeout
        while not all(
            child.ready.is_set() and (child.ready_check is None or child.ready_check()) for child in self.children
        ):
            if self.stop_requested.wait(POLL_SECONDS) or time.monotonic() > deadline or self.exited():
                return False
        settle_until = time.monotonic() + quiet_max
        while time.monotonic() - self.last_output_at < quiet and time.monotonic() < settle_until:
            if self.stop_requested.wait(POLL_SECONDS):
                return False
        return not self.exited()

    def exited(self) -> Child | None:
        return next((c for c in self.children if c.process and c.process.poll() is not None), None)

    def install_signal_handlers(self) -> None:
        """SIGINT (Ctrl-C) and SIGTERM ask for a stop; a second one while stopping changes nothing."""

        def handler(signum, frame):
            self.stop_requested.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def wait(self) -> Child | None:
        """Until a stop is asked for (None) or a child exits on its own (that child)."""
        while not self.stop_requested.wait(POLL_SECONDS):
            exited = self.exited()
            if exited is not None:
                return exited
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
        leftovers = [child.pid for child in self.children if child.process and _group_alive(child.pid)]
        for pgid in leftovers:
            _signal(pgid, signal.SIGKILL, group=True)
        settle = time.monotonic() + LEFTOVER_SECONDS
        while any(_group_alive(pgid) for pgid in leftovers) and time.monotonic() < settle:
            time.sleep(POLL_SECONDS)  # (a zombie counts as alive until init collects it: bounded, not forever)
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
