"""`manage.py run_local`: the local run (bin/run) in one process. It migrates, starts the web server and the
django-q2 cluster, sets up the Stripe webhook secret, the demo data and then the schedules while they start (the
schedules last: no scheduled job may run in the middle of the history the seed replays). It serves the Stripe and
Discord stand-ins (without Stripe keys, without a Discord bot token), prints the admin login last, and stops
everything on one Ctrl-C or SIGTERM (devtools/processes.py). One Python process for all setup steps saves the Django
start-up of each separate command.
"""

import logging
import os
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from devtools.processes import Child, Supervisor

READY_TIMEOUT = 180
LOGIN_PREFIX = "Admin login: "

# Run once the database is migrated, while the servers start (in this order; each is idempotent). The schedules come
# last: until they exist the task cluster has nothing to run, so no scheduled job (the email queue, support's jobs) runs
# in the middle of the history the seed replays, and the cluster still starts alongside the seed.
SETUP_COMMANDS = [
    ("stripe_webhook_endpoint", {"allow_missing": True}),  # STRIPE_WEBHOOK_SECRET, or the stand-in's secret
    ("seed_demo", {}),
    ("install_schedules", {}),
]


class Command(BaseCommand):
    help = "Migrate, then run the web server, the task cluster and the stand-ins together; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=getattr(settings, "PORT", 8000))
        parser.add_argument("--no-setup", action="store_true", help="Skip migrate, schedules and demo data.")

    def handle(self, *args, port: int, no_setup: bool, **options):
        failed = True
        manage = [sys.executable, "manage.py"]
        supervisor = Supervisor(
            children=[
                Child("task cluster", [*manage, "qcluster"], ready_when=r"Q Cluster \S+ \[.*\] running"),
                Child(
                    "web server",
                    [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
                    ready_when="Quit the server",
                    ready_check=lambda: _answering(port),
                ),
            ],
            cwd=str(settings.BASE_DIR),
            log=lambda text: supervisor.say(text + "\n"),
        )
        log_path = settings.VAR_DIR / "log" / "run.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        supervisor.children_log = log_file = log_path.open("a", encoding="utf-8", buffering=1)
        _log_to(log_file)
        supervisor.say(f"The servers' logs go to {_shown(log_path)}.\n")
        if not no_setup:
            began = time.monotonic()
            supervisor.say("Migrating the database ...\n")
            call_command("migrate", interactive=False, verbosity=0)  # Ctrl-C here simply interrupts it
            supervisor.say(f"Database ready ({time.monotonic() - began:.0f} s).\n")
        supervisor.install_signal_handlers()
        standin = self._standin_start()
        discord = self._discord_standin_start()
        supervisor.start()
        try:
            login = "" if no_setup else self._setup(supervisor)
            if supervisor.wait_until_ready(timeout=READY_TIMEOUT):
                supervisor.say(self._login_box(port, login, standin, discord, log_path))
            exited = supervisor.wait()
            failed = exited is not None
            if exited is not None:
                supervisor.say(
                    f"The {exited.name} stopped (exit code {exited.process.returncode}); stopping all. "
                    f"Its log: {_shown(log_path)}\n"
                )
        finally:
            supervisor.say("Stopping the web server and the task cluster ...\n")
            started = time.monotonic()
            codes = supervisor.stop()
            for server in (standin, discord):
                if server is not None:
                    server.stop()
            described = ", ".join(f"{name}: exit {code}" for name, code in codes.items())
            supervisor.say(f"Stopped in {time.monotonic() - started:.1f} s ({described}).\n")
        # Everything is stopped and said. Skip the interpreter's teardown of a fully loaded Django process, which
        # took 3-5 s on a busy machine, so that the terminal is back as soon as the servers are gone.
        connections.close_all()
        os._exit(1 if failed else 0)

    def _setup(self, supervisor: Supervisor) -> str:
        """Each setup command's lines are shown as they come (the seed's progress), but the login, which goes in
        the box at the end."""
        output = _LinesTo(supervisor.say)
        for name, options in SETUP_COMMANDS:
            call_command(name, stdout=output, **options)
        return output.login

    def _standin_start(self):
        if not getattr(settings, "STRIPE_STANDIN", False):
            return None
        from devtools.fakes.stripe.standin import StripeStandIn

        standin = StripeStandIn(port=settings.STRIPE_STANDIN_PORT, state_path=settings.VAR_DIR / "stripe-standin.json")
        return standin.start()

    def _discord_standin_start(self):
        if not getattr(settings, "DISCORD_STANDIN", False):
            return None
        from devtools.fakes.discord.standin import DiscordStandIn

        path = settings.VAR_DIR / "discord-standin.json"
        return DiscordStandIn(port=settings.DISCORD_STANDIN_PORT, state_path=path).start()

    def _login_box(self, port: int, login: str, standin, discord, log_path) -> str:
        base = f"http://127.0.0.1:{port}"
        lines = [
            "ModReady back-office is running.",
            "",
            f"  Admin:   {base}/admin/",
            f"  Login:   {login or '(no demo admin: see above)'}",
            f"  Emails:  {base}/admin/devtools/outboxemail/  (the local outbox)",
        ]
        if discord is not None:
            lines.append(f"  Discord: a stand-in on {discord.url} (the tickets' channels)")
        if standin is not None:
            lines.append(f"  Stripe:  a stand-in on {standin.url}")
            lines.append(f"  Watch a customer's journey:  PORT={port} .venv/bin/python manage.py demo_journey")
        lines += [
            f"  Logs:    {_shown(log_path)} (the web server, the task cluster)",
            "",
            "Ctrl-C stops the web server and the task cluster.",
        ]
        width = max(len(line) for line in lines) + 2
        rule = "+" + "-" * width + "+"
        return "\n".join(["", "", rule, *[f"| {line.ljust(width - 1)}|" for line in lines], rule, "", ""])


class _LinesTo:
    """A stdout for call_command that passes each complete line on at once, keeping the login line aside."""

    def __init__(self, say):
        self.say = say
        self.pending = ""
        self.login = ""

    def write(self, text: str) -> None:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.startswith(LOGIN_PREFIX):
                self.login = line[len(LOGIN_PREFIX) :]
            else:
                self.say(line + "\n")

    def flush(self) -> None:
        pass


def _log_to(stream) -> None:
    """This process's own log records (the stand-ins' servers, the setup commands) go to the run's log file too."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)


def _answering(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    except requests.RequestException:
        return False
    return True


def _shown(path: Path) -> Path:
    """A path under the checkout as the developer types it (var/log/run.log); one elsewhere (MODREADY_VAR_DIR) whole."""
    return path.relative_to(settings.BASE_DIR) if path.is_relative_to(settings.BASE_DIR) else path
