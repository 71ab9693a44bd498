"""API_THROTTLE_RATE holds for the whole site, not per web process: two gunicorn processes (the production server,
one worker each, as two workers or two machines would be) share one budget through the shared cache.

The requests alternate between the two processes, so with a per-process cache each would see only half of them and
none would be refused. The rate is per hour, so nothing depends on how fast the machine is."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from api.models import ServiceAccountKey
from config.roles import SERVICE_ACCOUNTS

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False


@pytest.fixture
def two_web_processes():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": test_database_url(),
        "API_THROTTLE_RATE": "4/hour",
    }
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--timeout", "120"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, process.stderr.read().decode()[-3000:]
                try:
                    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=60)
                    break
                except (requests.ConnectionError, requests.Timeout):
                    assert time.monotonic() < deadline, "gunicorn did not start"
                    time.sleep(0.5)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
            process.stderr.close()


def test_the_rate_limit_holds_across_two_web_processes(two_web_processes):
    user = get_user_model().objects.create_user(username="provisioning-panel")
    user.groups.add(Group.objects.get(name=SERVICE_ACCOUNTS))
    _, key = ServiceAccountKey.objects.create_key(name="panel", user=user)
    headers = {"Authorization": f"Api-Key {key}"}

    statuses = [
        requests.get(f"{two_web_processes[n % 2]}/api/v1/customers/", headers=headers, timeout=60).status_code
        for n in range(6)
    ]

    assert statuses == [200, 200, 200, 200, 429, 429]
