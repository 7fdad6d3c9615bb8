"""The Python client against a real fleetmock, started here on port 0.

FLEETMOCK_BIN names the binary (ctest sets it); without it these tests skip.
Every server is our own child, stopped by its handle; every wait is bounded.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fleetclient import (FleetClient, Policy, PRIORITY, STANDARD,  # noqa: E402
                         STATUS_NETWORK, STATUS_STREAM_ERROR)

KIMI = "accounts/fireworks/models/kimi-k2p6"
MSGS = [{"role": "user", "content": "hello fleet"}]
BIN = os.environ.get("FLEETMOCK_BIN")


class ManualClock:
    """A client clock (ms) the test moves by hand: a Priority window opens and
    ends when the test says, not when a busy machine gets round to the next
    call. The server's side (what is shed) does not depend on time here."""

    def __init__(self, ms=1_000_000):
        self.ms = ms

    def __call__(self):
        return self.ms

    def advance(self, ms):
        self.ms += ms


class Server:
    """A fleetmock child process on a free loopback port."""

    def __init__(self, args=(), config=None, timeout_s=20.0):
        self.dir = tempfile.mkdtemp(prefix="fleetmock-py-")
        port_file = os.path.join(self.dir, "port")
        argv = [BIN, "--host", "127.0.0.1", "--port", "0", "--port-file", port_file,
                "--log-level", "warn", *args]
        if config is not None:
            cfg = os.path.join(self.dir, "config.json")
            with open(cfg, "w") as f:
                json.dump(config, f)
            argv += ["--config", cfg]
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + timeout_s
        self.port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text.isdigit():
                    self.port = int(text)
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise RuntimeError("fleetmock did not start: " + self.log())
        self.url = "http://127.0.0.1:%d" % self.port

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, key="py-live", route="interactive", **policy_kw):
        return FleetClient(self.url, key, KIMI, route=route, policy=Policy(**policy_kw))


def account(client, key_id):
    status, body = client.admin("GET", "/admin/accounts/" + key_id)
    assert status == 200, (status, body)
    return body


@unittest.skipUnless(BIN, "FLEETMOCK_BIN is not set")
class SaturatedPool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # At --time-scale 3600 the 30-minute window lasts 500 real ms.
        cls.server = Server(["--timing", "instant", "--time-scale", "3600"])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        c = self.server.client()
        status, _ = c.admin("POST", "/admin/reset")
        self.assertEqual(status, 200)
        status, _ = c.admin("PATCH", "/admin/pools/kimi-k2p6",
                            {"tenant_load": 1.2, "tenant_priority_share": 0.2})
        self.assertEqual(status, 200)

    def test_escalates_on_503_and_succeeds_on_priority(self):
        c = self.server.client(key="py-escalate", clock=ManualClock())
        r = c.chat(MSGS, max_tokens=5)
        self.assertTrue(r.ok, r)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.tier, PRIORITY)
        self.assertEqual(r.body["service_tier"], "priority")
        self.assertEqual([h["status"] for h in r.history], [503, 200])
        self.assertEqual([h["tier"] for h in r.history], [STANDARD, PRIORITY])
        self.assertTrue(r.escalated)
        m = c.policy.metrics()
        self.assertEqual((m["escalations"], m["tier"], m["status_503"], m["requests"]), (1, PRIORITY, 1, 2))
        self.assertEqual(m["rate_503"], 0.5)
        # The next call starts on Priority: the window is open (the clock has not moved), no new 503.
        r2 = c.chat(MSGS, max_tokens=5)
        self.assertEqual(([h["status"] for h in r2.history], r2.tier), ([200], PRIORITY))
        self.assertEqual(c.policy.escalations, 1)
        acct = account(c, r.headers["x-fleetmock-key-id"])
        self.assertEqual(acct["tiers"]["standard"]["status_503"], 1)
        self.assertEqual(acct["tiers"]["priority"]["status_200"], 2)

    def test_streaming_escalates_too(self):
        c = self.server.client(key="py-stream")
        tokens = []
        r = c.chat(MSGS, stream=True, max_tokens=6, ignore_eos=True,
                   stream_options={"include_usage": True}, on_token=tokens.append)
        self.assertTrue(r.ok, r)
        self.assertEqual(r.tier, PRIORITY)
        self.assertEqual(len(tokens), 6)
        self.assertEqual(r.text, "".join(tokens))
        self.assertEqual(r.usage["completion_tokens"], 6)
        self.assertEqual(c.policy.escalations, 1)

    def test_a_broken_stream_is_retried_whole_on_the_same_tier(self):
        c = self.server.client(key="py-midstream")
        c.sleep = lambda s: None
        c.admin("PATCH", "/admin/pools/kimi-k2p6", {"tenant_load": 0})
        status, _ = c.admin("POST", "/admin/faults", {"match": {"api_key": "py-midstream"},
                            "action": {"stream": "error", "after_tokens": 2}, "count": 1})
        self.assertEqual(status, 200)
        r = c.chat(MSGS, stream=True, max_tokens=6, ignore_eos=True)
        self.assertTrue(r.ok, r)
        self.assertEqual([(h["tier"], h["status"]) for h in r.history],
                         [(STANDARD, STATUS_STREAM_ERROR), (STANDARD, 200)])
        self.assertEqual(len(r.text.split(" ")), 6)
        self.assertEqual((c.policy.escalations, c.policy.errors), (0, 1))

    def test_batch_never_escalates(self):
        c = self.server.client(key="py-batch", route="batch", max_attempts=3, backoff_base_ms=10)
        r = c.chat(MSGS, max_tokens=5)
        self.assertFalse(r.ok)
        self.assertEqual((r.status, r.outcome), (503, "shed"))
        self.assertEqual([h["tier"] for h in r.history], [STANDARD] * 3)
        self.assertEqual(c.policy.escalations, 0)
        self.assertEqual(c.policy.priority_until_ms, 0)

    def test_client_errors_do_not_escalate(self):
        c = self.server.client(key="py-4xx")
        r = c.chat(MSGS, model="accounts/fireworks/models/no-such-model", max_tokens=5)
        self.assertEqual((r.status, r.attempts, r.ok, r.outcome), (404, 1, False, "error"))
        r = c.chat(MSGS, max_tokens=-5)
        self.assertEqual((r.status, r.attempts), (400, 1))
        self.assertIn("max_tokens", r.error)
        bad = FleetClient(self.server.url, "", KIMI, policy=Policy())
        r = bad.chat(MSGS, max_tokens=5)
        self.assertEqual((r.status, r.attempts), (401, 1))
        self.assertEqual(c.policy.escalations + bad.policy.escalations, 0)
        self.assertEqual(c.policy.start("interactive"), STANDARD)

    def test_network_error_does_not_escalate(self):
        with socket.socket() as s:  # a loopback port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        slept = []
        c = FleetClient("http://127.0.0.1:%d" % port, "k", KIMI, time_scale=1,
                        policy=Policy(max_attempts=2), sleep=slept.append, timeout=2)
        r = c.chat(MSGS, max_tokens=5)
        self.assertFalse(r.ok)
        self.assertEqual((r.status, r.outcome), (STATUS_NETWORK, "error"))
        self.assertEqual(r.attempts, 2)
        self.assertEqual(len(slept), 1)
        self.assertEqual(c.policy.escalations, 0)
        self.assertEqual(c.policy.errors, 2)

    def test_reads_the_time_scale_for_the_window(self):
        c = self.server.client(key="py-scale")
        self.assertEqual(c.sync_time_scale(), 3600.0)
        self.assertEqual(c.policy.window_ms(), 500)

    def test_drifts_back_after_the_window_and_alerts_on_back_to_back_windows(self):
        alerts = []
        clock = ManualClock()
        c = self.server.client(key="py-alert", alert_windows=2, on_alert=alerts.append, clock=clock)
        r = c.chat(MSGS, max_tokens=5)
        self.assertEqual(([h["tier"] for h in r.history], r.tier), ([STANDARD, PRIORITY], PRIORITY))
        self.assertEqual(c.policy.window_ms(), 500)
        clock.advance(c.policy.window_ms() + 50)  # the window ends: the next call tries Standard again
        self.assertEqual(c.policy.start("interactive"), STANDARD)
        r = c.chat(MSGS, max_tokens=5)
        self.assertEqual([h["tier"] for h in r.history], [STANDARD, PRIORITY])  # still shedding
        self.assertEqual((c.policy.escalations, c.policy.consecutive_windows), (2, 2))
        self.assertEqual(len(alerts), 1)
        self.assertEqual(alerts[0]["consecutive_windows"], 2)
        self.assertTrue(r.history[0]["decision"]["alert"])


@unittest.skipUnless(BIN, "FLEETMOCK_BIN is not set")
class RateLimited(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(["--timing", "instant", "--time-scale", "60"],
                            config={"accounts": {"limits": {"requests_per_min": {"start": 1, "ceiling": 1}}}})

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_backs_off_at_least_retry_after_then_succeeds(self):
        slept = []

        def sleep(s):
            slept.append(s)
            time.sleep(s)

        c = FleetClient(self.server.url, "py-429", KIMI, policy=Policy(max_attempts=4), sleep=sleep)
        first = c.chat(MSGS, max_tokens=5)
        self.assertEqual((first.status, first.attempts), (200, 1))
        self.assertEqual(c.policy.window_ms(), 30_000)  # 1800 s / --time-scale 60
        t0 = time.monotonic()
        r = c.chat(MSGS, max_tokens=5)
        elapsed = time.monotonic() - t0
        self.assertTrue(r.ok, r)
        self.assertEqual(r.history[0]["status"], 429)
        self.assertEqual(r.history[-1]["status"], 200)
        self.assertEqual({h["tier"] for h in r.history}, {STANDARD})
        self.assertEqual(c.policy.escalations, 0)
        self.assertEqual(r.history[0]["decision"]["outcome"], "limited")
        waited_ms = r.history[0]["decision"]["delay_ms"]
        self.assertGreater(waited_ms, 500)  # ~1 real s: one request a simulated minute at 60x
        retry_after_ms = r.history[0]["retry_after_ms"]  # from retry-after-ms, e.g. 936
        self.assertGreater(retry_after_ms, 0)
        self.assertGreaterEqual(waited_ms, retry_after_ms)
        self.assertLessEqual(waited_ms, retry_after_ms * 1.2)
        self.assertEqual(slept[0], waited_ms / 1000.0)
        self.assertGreaterEqual(elapsed, sum(slept))


if __name__ == "__main__":
    unittest.main()
