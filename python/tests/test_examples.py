"""examples/python/*.py: they run against the emulator and mosquitto, and pass mypy --strict."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, Broker, Peer, Sim

EXAMPLES = REPO / "examples" / "python"


def run_example(name: str, *args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} >= {"publish.py", "subscribe.py", "supervised.py"}


def test_publish_and_subscribe_examples(sim_factory: object, broker: Broker, tmp_path: Path,
                                        topic_prefix: str) -> None:
    sub_sim: Sim = sim_factory("sim7672x")  # type: ignore[operator]
    pub_sim: Sim = sim_factory("a7600")  # type: ignore[operator]
    ready = tmp_path / "ready"
    env = dict(os.environ, CMQTT_SERVER=broker.url)
    sub = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "subscribe.py"), "--port", sub_sim.port, "--count", "1",
         "--idle", "30", "--ready-file", str(ready), f"{topic_prefix}/#"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert sub.poll() is None, sub.communicate()
            assert time.monotonic() < deadline, "subscribe.py did not subscribe"
            time.sleep(0.05)
        pub = run_example("publish.py", f"{topic_prefix}/greeting", "hello from python",
                          env=dict(env, CMQTT_PORT=pub_sim.port))
        assert pub.returncode == 0, pub.stderr
        assert "published 17 bytes" in pub.stdout
        out, err = sub.communicate(timeout=30)
        assert sub.returncode == 0, err
        assert out.strip() == f"{topic_prefix}/greeting hello from python"
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


def test_supervised_example(sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str,
                            tmp_path: Path) -> None:
    peer.subscribe(f"{topic_prefix}/#")
    r = run_example("supervised.py", "--count", "3", "--outbox", str(tmp_path / "outbox.bin"),
                    f"{topic_prefix}/s", "supervised",
                    env=dict(os.environ, CMQTT_PORT=sim_a7600.port, CMQTT_SERVER=broker.url))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "delivered 3 message(s)" in r.stdout
    assert "event: SupervisorEvent(kind='state', state='connected')" in r.stdout
    assert [peer.get()[1] for _ in range(3)] == [f"supervised #{i}".encode() for i in (1, 2, 3)]


def test_examples_report_errors(sim_a7600: Sim, broker: Broker) -> None:
    r = run_example("publish.py", "--port", sim_a7600.port, "--server", broker.auth_url,
                    "--username", "nobody", "--password", "wrong", "t", "m", env=dict(os.environ))
    assert r.returncode == 1
    assert "the modem refused" in r.stderr and "code 3" in r.stderr
    r = run_example("publish.py", "t", "m", env={k: v for k, v in os.environ.items() if not k.startswith("CMQTT_")})
    assert r.returncode == 2 and "CMQTT_PORT" in r.stderr


def test_mypy_strict_examples(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    files = sorted(str(p) for p in EXAMPLES.glob("*.py"))
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                        "--cache-dir", str(tmp_path / "mypy"), *files],
                       capture_output=True, text=True, cwd=str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
