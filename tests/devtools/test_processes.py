"""Stopping the local run (devtools/processes.py): one SIGTERM per child, stragglers and their groups killed, and a
Ctrl-C at the terminal (or a second one) never reaching the children directly."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from devtools.processes import Child, Supervisor

ROOT = Path(__file__).resolve().parents[2]

# A child like django-q2's cluster: it counts the signals it gets, and leaves behind a process of its own group.
POLITE = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    log = open(sys.argv[1], "a", buffering=1)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    log.write(f"worker {worker.pid}\\n")
    def on(signum, frame):
        log.write(f"signal {signum}\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on)
    signal.signal(signal.SIGINT, on)
    log.write("started\\n")
    time.sleep(600)
    """
)
# A child that ignores SIGTERM, as a deadlocked cluster would.
STUBBORN = textwrap.dedent(
    """
    import signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(sys.argv[1], "a").write("started\\n")
    time.sleep(600)
    """
)


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has stopped; only its parent has not collected it yet


def test_stop_sends_one_sigterm_then_kills_stragglers_and_orphans(tmp_path):
    polite_log, stubborn_log = tmp_path / "polite", tmp_path / "stubborn"
    supervisor = Supervisor(
        children=[
            Child("polite", [sys.executable, "-c", POLITE, str(polite_log)]),
            Child("stubborn", [sys.executable, "-c", STUBBORN, str(stubborn_log)]),
        ],
        grace=1.0,
        log=lambda text: None,
    )
    supervisor.start()
    wait_for(lambda: "started" in polite_log.read_text() if polite_log.exists() else False)
    wait_for(lambda: stubborn_log.exists())
    worker = int(next(line.split()[1] for line in polite_log.read_text().splitlines() if line.startswith("worker")))

    codes = supervisor.stop()

    assert codes == {"polite": 0, "stubborn": -signal.SIGKILL}
    assert [line for line in polite_log.read_text().splitlines() if line.startswith("signal")] == [
        f"signal {int(signal.SIGTERM)}"
    ]
    assert not running(worker), "the polite child's leftover process was not stopped"


SUPERVISED = textwrap.dedent(
    """
    import sys
    from devtools.processes import Child, Supervisor
    supervisor = Supervisor(
        children=[Child(name, [sys.executable, "-c", sys.argv[1], f"{sys.argv[2]}/{name}"]) for name in ("a", "b")],
        grace=30,
    )
    supervisor.install_signal_handlers()
    supervisor.start()
    print("supervising", flush=True)
    supervisor.wait()
    print(supervisor.stop(), flush=True)
    """
)


def test_ctrl_c_twice_at_the_terminal_gives_each_child_exactly_one_sigterm(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED, POLITE, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, like bin/run in a terminal's foreground
    )
    try:
        wait_for(lambda: all((tmp_path / n).exists() and "started" in (tmp_path / n).read_text() for n in "ab"))
        # The terminal sends Ctrl-C to the whole foreground group; an impatient user presses it twice.
        os.killpg(process.pid, signal.SIGINT)
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0
    assert "{'a': 0, 'b': 0}" in output
    for name in "ab":
        signals = [line for line in (tmp_path / name).read_text().splitlines() if line.startswith("signal")]
        assert signals == [f"signal {int(signal.SIGTERM)}"], f"child {name} got {signals}"


def test_the_servers_output_goes_to_the_log_file_and_the_console_keeps_only_the_run_s_own_lines(tmp_path, capsys):
    """bin/run: django-q's and runserver's logs pushed the login box out of view within minutes."""
    log_path = tmp_path / "run.log"
    script = "import time\nfor n in range(3): print(f'server line {n}', flush=True)\ntime.sleep(60)"
    chatty = [sys.executable, "-c", script]
    supervisor = Supervisor(children=[Child("chatty", chatty, ready_when="server line 2")], cwd=str(ROOT))
    with log_path.open("a", buffering=1) as log:
        supervisor.children_log = log
        supervisor.start()
        assert supervisor.wait_until_ready(timeout=30, quiet=0.1)
        supervisor.say("the login box\n")
        supervisor.stop()
    console = capsys.readouterr().out
    assert "the login box" in console and "server line" not in console
    assert log_path.read_text().splitlines() == ["server line 0", "server line 1", "server line 2"]


def test_setup_commands_lines_are_shown_as_they_come_and_the_login_is_kept_for_the_box():
    from devtools.management.commands.run_local import _LinesTo

    said: list[str] = []
    lines = _LinesTo(said.append)
    lines.write("Demo history: day 9 of 90 (3 s)\nDemo his")
    assert said == ["Demo history: day 9 of 90 (3 s)\n"]  # shown before the command ends
    lines.write("tory: day 18 of 90 (6 s)\nAdmin login: admin / secret\n")
    assert said[-1] == "Demo history: day 18 of 90 (6 s)\n" and lines.login == "admin / secret"
    assert not any("secret" in line for line in said)
