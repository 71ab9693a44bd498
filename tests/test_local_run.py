"""The embedded default, end to end, the way `bin/run` runs it: SQLite, django-q2's ORM broker, emails as files.

One signed Stripe event goes to the web server; the task cluster processes it (dj-stripe re-fetches from the fake
Stripe), billing records the subscription and announces `subscription.created`, automations enrolls the customer in
the welcome sequence, and the queue puts the welcome email in the local outbox. Everything but PostgreSQL is real here:
separate processes for web and cluster sharing one SQLite file, as on a developer's machine.
"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devtools.fakes.stripe.objects import signed_request, stripe_event
from devtools.fakes.stripe.server import FakeStripe

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_localrun_" + "b" * 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_env(tmp_path):
    with FakeStripe() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "RESEND_", "STRIPE_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.local",
            MODREADY_VAR_DIR=str(tmp_path),
            STRIPE_WEBHOOK_SECRET=SECRET,
            STRIPE_TEST_SECRET_KEY="sk_test_" + "1" * 24,
            STRIPE_API_HOST=fake.url,
            Q_WORKERS="1",
            LOG_LEVEL="WARNING",
        )
        yield fake, env, tmp_path


# Budgets for a loaded 2-core machine (eight test runs at once): a fresh migrate takes about 30 s there since
# dj-stripe's migrations come as one (billing/djstripe_migrations); before, 240-365 s.
COMMAND_BUDGET = 300


def outbox(var: Path) -> list[tuple[str, str]]:
    """The local outbox's rows (recipients as JSON, subject), read from the embedded database as it is."""
    with sqlite3.connect(var / "modready.sqlite3", timeout=20) as db:
        return db.execute('SELECT "to", subject FROM devtools_outboxemail').fetchall()


def manage(env, *args, timeout=COMMAND_BUDGET):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_stripe_event_becomes_a_welcome_email_on_the_embedded_default(local_env):
    fake, env, var = local_env
    for command in (["migrate", "--noinput"], ["install_schedules"], ["stripe_webhook_endpoint"]):
        result = manage(env, *command)
        assert result.returncode == 0, result.stderr[-3000:]

    world = fake.add_subscription(email="new.player@example.com", product=fake.add_product(name="Pro Server"))
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        body, signature = signed_request(
            stripe_event("customer.subscription.created", world.subscription), secret=SECRET
        )
        response = requests.post(
            f"http://127.0.0.1:{port}/api/webhooks/stripe",
            data=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200, response.text[:500]

        emails: list[tuple[str, str]] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not emails:
            manage(env, "process_email_queue")
            emails = outbox(var)
            if not emails:
                time.sleep(1)
    finally:
        for process in (web, cluster):
            process.terminate()
        for process in (web, cluster):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    assert emails, "no email in the outbox; cluster said: " + cluster.stderr.read().decode()[-3000:]
    assert any(json.loads(to) == ["new.player@example.com"] and "Welcome" in subject for to, subject in emails)


def test_the_embedded_database_takes_dj_stripes_migrations_as_one_that_matches_its_models(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "STRIPE_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", MODREADY_VAR_DIR=str(tmp_path), LOG_LEVEL="WARNING")

    plan = manage(env, "showmigrations", "djstripe")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "0001_squashed_0003_2_11" in plan.stdout
    # No change left between the one migration and dj-stripe's models: the tables are the ones upstream builds.
    check = manage(env, "makemigrations", "djstripe", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
