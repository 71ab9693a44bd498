"""`manage.py run_local`: what bin/run starts after migrating: the web server, the django-q2 cluster and (without Stripe
keys) the Stripe stand-in, together until one Ctrl-C or SIGTERM stops them all (devtools/processes.py)."""

import sys
import time

import requests
from django.conf import settings
from django.core.management.base import BaseCommand

from devtools.processes import Child, Supervisor

READY_TIMEOUT = 120


class Command(BaseCommand):
    help = "Run the web server, the task cluster and the Stripe stand-in together (bin/run); Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.PORT if hasattr(settings, "PORT") else 8000)
        parser.add_argument("--login", default="", help="The admin login to print once the web server answers.")

    def handle(self, *args, port: int, login: str, **options):
        manage = [sys.executable, "manage.py"]
        supervisor = Supervisor(
            children=[
                Child("task cluster", [*manage, "qcluster"]),
                Child("web server", [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"]),
            ],
            cwd=str(settings.BASE_DIR),
            log=self.stderr.write,
        )
        supervisor.install_signal_handlers()
        standin = self._standin_start()
        supervisor.start()
        try:
            if self._wait_until_answering(port, supervisor):
                self._print_login(port, login, standin)
            exited = supervisor.wait()
            if exited is not None:
                self.stderr.write(f"The {exited.name} stopped (exit code {exited.process.returncode}); stopping all.")
        finally:
            self.stdout.write("Stopping the web server and the task cluster ...")
            started = time.monotonic()
            codes = supervisor.stop()
            if standin is not None:
                standin.stop()
            self.stdout.write(f"Stopped in {time.monotonic() - started:.1f} s ({_describe(codes)}).")

    def _standin_start(self):
        if not getattr(settings, "STRIPE_STANDIN", False):
            return None
        from devtools.standins.service import StripeStandIn

        standin = StripeStandIn(port=settings.STRIPE_STANDIN_PORT, state_path=settings.VAR_DIR / "stripe-standin.json")
        return standin.start()

    def _wait_until_answering(self, port: int, supervisor: Supervisor) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not supervisor.stop_requested.is_set():
            if any(child.process.poll() is not None for child in supervisor.children):
                return False
            try:
                requests.get(f"http://127.0.0.1:{port}/admin/login/", timeout=2)
                return True
            except requests.RequestException:
                supervisor.stop_requested.wait(0.2)
        return False

    def _print_login(self, port: int, login: str, standin) -> None:
        base = f"http://127.0.0.1:{port}"
        lines = [
            "ModReady back-office is running.",
            "",
            f"  Admin:   {base}/admin/",
            f"  Login:   {login or '(see seed_demo above)'}",
            f"  Emails:  {base}/admin/devtools/outboxemail/  (the local outbox)",
        ]
        if standin is not None:
            lines.append(f"  Stripe:  stand-in on {standin.url}  (try: .venv/bin/python manage.py demo_journey)")
        lines += ["", "Ctrl-C stops the web server and the task cluster."]
        width = max(len(line) for line in lines) + 2
        box = ["", "+" + "-" * width + "+", *[f"| {line.ljust(width - 1)}|" for line in lines], "+" + "-" * width + "+"]
        self.stdout.write("\n".join([*box, ""]))
        self.stdout.flush()


def _describe(codes: dict[str, int]) -> str:
    return ", ".join(f"{name}: exit {code}" for name, code in codes.items())
