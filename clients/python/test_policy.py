"""The routing pattern, driven with a fake clock: no sockets, no sleeping.

The first classes are this client's own tests of the five behaviours; the
last one replays the shared behaviour list (clients/behaviours.json) that the
C and Node clients replay too.
"""

import copy
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fleetclient import (Policy, PRIORITY, STANDARD, STATUS_NETWORK,  # noqa: E402
                         STATUS_STREAM_ERROR, parse_retry_after)


class FakeClock:
    def __init__(self, t=1_000_000):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t += ms


def make(**kw):
    clock = FakeClock()
    alerts = []
    kw.setdefault("on_alert", alerts.append)
    policy = Policy(clock=clock, **kw)
    return policy, clock, alerts


class EscalatesOnlyOn503(unittest.TestCase):
    def test_503_on_standard_escalates_and_retries_on_priority_at_once(self):
        p, clock, _ = make()
        self.assertEqual(p.start("interactive"), STANDARD)
        d = p.decide("interactive", STANDARD, 1, 503, jitter=0.5)
        self.assertEqual((d.retry, d.tier, d.delay_ms, d.escalated, d.outcome),
                         (True, PRIORITY, 0, True, "shed"))
        self.assertEqual(p.escalations, 1)
        self.assertEqual(p.priority_until_ms, clock.t + 1_800_000)
        self.assertEqual(p.start("interactive"), PRIORITY)
        self.assertEqual(p.start("agent"), PRIORITY)

    def test_never_escalates_on_429_4xx_5xx_or_network_error(self):
        for status in (429, 400, 401, 404, 405, 413, STATUS_NETWORK, STATUS_STREAM_ERROR, 500, 502):
            with self.subTest(status=status):
                p, _, _ = make()
                d = p.decide("interactive", STANDARD, 1, status, 1000 if status == 429 else -1, jitter=0)
                self.assertEqual(d.tier, STANDARD)
                self.assertFalse(d.escalated)
                self.assertEqual(p.escalations, 0)
                self.assertEqual(p.priority_until_ms, 0)
                self.assertEqual(p.start("interactive"), STANDARD)

    def test_4xx_other_than_429_ends_the_call(self):
        for status in (400, 401, 404):
            p, _, _ = make()
            d = p.decide("interactive", STANDARD, 1, status, jitter=0)
            self.assertEqual((d.retry, d.outcome), (False, "error"))
            self.assertEqual(p.errors, 1)

    def test_network_error_backs_off_on_the_same_tier(self):
        p, _, _ = make()
        d = p.decide("interactive", STANDARD, 1, STATUS_NETWORK, jitter=0)
        self.assertEqual((d.retry, d.tier, d.delay_ms), (True, STANDARD, 250))  # [b/2, b) of 500 ms
        self.assertEqual(p.errors, 1)

    def test_503_racing_an_open_window_opens_nothing(self):
        p, clock, _ = make()
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        clock.advance(10_000)
        d = p.decide("agent", STANDARD, 1, 503, jitter=0)  # sent before the window opened
        self.assertEqual((d.retry, d.tier, d.escalated), (True, PRIORITY, False))
        self.assertEqual(p.escalations, 1)

    def test_503_on_priority_backs_off_and_stays(self):
        p, _, _ = make()
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        d = p.decide("interactive", PRIORITY, 2, 503, jitter=0)
        self.assertEqual((d.retry, d.tier, d.escalated, d.delay_ms), (True, PRIORITY, False, 500))
        self.assertEqual(p.escalations, 1)

    def test_503_on_the_last_attempt_escalates_but_ends_the_call(self):
        p, _, _ = make(max_attempts=1)
        d = p.decide("interactive", STANDARD, 1, 503, jitter=0)
        self.assertEqual((d.retry, d.escalated, d.outcome), (False, True, "shed"))
        self.assertEqual(p.start("interactive"), PRIORITY)

    def test_503_rate_counts_every_attempt(self):
        p, _, _ = make()
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        p.decide("interactive", PRIORITY, 2, 200, jitter=0)
        p.decide("interactive", PRIORITY, 1, 200, jitter=0)
        p.decide("interactive", PRIORITY, 1, STATUS_NETWORK, jitter=0)
        m = p.metrics()
        self.assertEqual((m["rate_503"], m["requests"], m["on_priority"], m["errors"]), (0.25, 4, 3, 1))


class DriftsBackAfterTheWindow(unittest.TestCase):
    def test_back_to_standard_when_the_window_expires(self):
        p, clock, _ = make(window_s=1800)
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        clock.advance(1_799_999)
        self.assertEqual(p.start("interactive"), PRIORITY)
        clock.advance(1)
        self.assertEqual(p.start("interactive"), STANDARD)
        self.assertEqual(p.metrics()["tier"], STANDARD)

    def test_window_and_backoff_shrink_with_the_server_time_scale(self):
        p, clock, _ = make(window_s=1800, time_scale=60)
        self.assertEqual(p.window_ms(), 30_000)
        self.assertEqual(p.backoff_ms(1, 0), 4)  # 500 ms simulated / 60, halved by equal jitter
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        clock.advance(29_999)
        self.assertEqual(p.start("interactive"), PRIORITY)
        clock.advance(1)
        self.assertEqual(p.start("interactive"), STANDARD)


class AlertsAfterConsecutiveWindows(unittest.TestCase):
    def test_alert_after_the_configured_number_of_windows_once_per_run(self):
        p, clock, alerts = make(window_s=100, alert_windows=3)
        for n in range(1, 4):
            d = p.decide("interactive", STANDARD, 1, 503, jitter=0)
            self.assertTrue(d.escalated)
            self.assertEqual(d.alert, n == 3)
            self.assertEqual(p.consecutive_windows, n)
            self.assertEqual(len(alerts), 1 if n == 3 else 0)
            clock.advance(100_000)  # the window ends; Standard sheds again at once
        self.assertEqual(alerts[0]["consecutive_windows"], 3)
        self.assertEqual(alerts[0]["escalations"], 3)
        d = p.decide("interactive", STANDARD, 1, 503, jitter=0)
        self.assertEqual((p.consecutive_windows, d.alert, len(alerts)), (4, False, 1))

    def test_a_quiet_gap_starts_a_new_run(self):
        p, clock, alerts = make(window_s=100, alert_windows=2)
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        clock.advance(200_001)  # more than a window on Standard after the window ended
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        self.assertEqual(p.consecutive_windows, 1)
        self.assertEqual(alerts, [])

    def test_alert_windows_zero_never_alerts(self):
        p, clock, alerts = make(window_s=1, alert_windows=0)
        for _ in range(5):
            p.decide("interactive", STANDARD, 1, 503, jitter=0)
            clock.advance(1000)
        self.assertEqual((p.consecutive_windows, p.alerts, alerts), (5, 0, []))


class NeverEscalatesBatch(unittest.TestCase):
    def test_batch_503_backs_off_on_standard(self):
        p, _, _ = make()
        d = p.decide("batch", STANDARD, 1, 503, jitter=0)
        self.assertEqual((d.retry, d.tier, d.escalated, d.delay_ms), (True, STANDARD, False, 250))
        self.assertEqual(p.escalations, 0)
        self.assertEqual(p.priority_until_ms, 0)

    def test_batch_stays_on_standard_while_a_window_is_open(self):
        p, _, _ = make()
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        self.assertEqual(p.start("interactive"), PRIORITY)
        self.assertEqual(p.start("batch"), STANDARD)
        d = p.decide("batch", STANDARD, 1, 503, jitter=0)
        self.assertEqual(d.tier, STANDARD)


class BacksOffOn429(unittest.TestCase):
    def test_waits_at_least_retry_after_and_at_most_20_percent_more(self):
        p, _, _ = make()
        d0 = p.decide("interactive", STANDARD, 1, 429, 3000, jitter=0)
        d1 = p.decide("interactive", STANDARD, 1, 429, 3000, jitter=0.999)
        self.assertEqual((d0.retry, d0.tier, d0.outcome, d0.delay_ms), (True, STANDARD, "limited", 3000))
        self.assertEqual(d1.delay_ms, 3599)

    def test_retry_after_ms_wins_over_retry_after(self):
        self.assertEqual(parse_retry_after("117", "1"), 117)
        self.assertEqual(parse_retry_after("116.2", None), 117)
        self.assertEqual(parse_retry_after(None, "2"), 2000)
        self.assertEqual(parse_retry_after(None, "Wed, 21 Oct 2015 07:28:00 GMT"), -1)
        self.assertEqual(parse_retry_after(None, None), -1)

    def test_without_retry_after_it_backs_off_exponentially(self):
        p, _, _ = make()
        self.assertEqual([p.decide("interactive", STANDARD, n, 429, -1, jitter=0).delay_ms
                          for n in (1, 2, 3)], [250, 500, 1000])
        self.assertEqual(p.backoff_ms(10, 0), 15_000)  # capped at 30 s before jitter

    def test_429_retry_follows_an_open_window(self):
        p, _, _ = make()
        p.decide("interactive", STANDARD, 1, 503, jitter=0)
        d = p.decide("interactive", PRIORITY, 2, 429, 2000, jitter=0)
        self.assertEqual((d.retry, d.tier, d.delay_ms), (True, PRIORITY, 2000))
        self.assertEqual(p.escalations, 1)

    def test_gives_up_after_max_attempts(self):
        p, _, _ = make(max_attempts=2)
        self.assertTrue(p.decide("interactive", STANDARD, 1, 429, 1000, jitter=0).retry)
        d = p.decide("interactive", STANDARD, 2, 429, 1000, jitter=0)
        self.assertEqual((d.retry, d.outcome), (False, "limited"))


# ---------------------------------------------------------------------------
# The shared behaviour list: one test per case, named after it.

BEHAVIOURS = os.path.join(os.path.dirname(HERE), "behaviours.json")
JITTERS = (0.0, 0.5, 0.999999)  # "must hold for ANY jitter draw": the ends and the middle
STATUS_WORDS = {"network_error": STATUS_NETWORK, "stream_error": STATUS_STREAM_ERROR}
POLICY_FIELDS = ("window_s", "time_scale", "backoff_base_ms", "backoff_cap_ms",
                 "max_attempts", "alert_windows")


def load_behaviours():
    try:
        with open(BEHAVIOURS) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def run_case(test, doc, case):
    conf = dict(doc["defaults"]["policy"])
    conf.update(case.get("policy") or {})
    unknown = set(conf) - set(POLICY_FIELDS)
    test.assertFalse(unknown, "unknown policy fields %s" % unknown)
    route = case.get("route", doc["defaults"].get("route", "interactive"))
    now = {"t": 0}
    alerts = []
    policy = Policy(clock=lambda: now["t"], on_alert=alerts.append, **conf)
    last_t = 0
    for i, step in enumerate(case["steps"]):
        where = "%s step %d (%s at %d ms)" % (case["name"], i, step["event"], step["at_ms"])
        test.assertGreaterEqual(step["at_ms"], last_t, where + ": time goes back")
        now["t"] = last_t = step["at_ms"]
        expect = step.get("expect", {})
        if step["event"] == "start":
            got = {"tier": policy.start(route, step["at_ms"])}
        elif step["event"] == "answer":
            status = STATUS_WORDS.get(step["status"], step["status"])
            headers = {k.lower(): v for k, v in (step.get("headers") or {}).items()}
            ra = parse_retry_after(headers.get("retry-after-ms"), headers.get("retry-after"))
            # Every jitter draw on a copy of the state; the decision apart from
            # the delay must not depend on the draw.
            runs = []
            for j in JITTERS:
                trial = copy.deepcopy(policy)
                trial.on_alert = None
                runs.append(trial.decide(route, step["tier"], step["attempt"], status, ra,
                                         now_ms=step["at_ms"], jitter=j))
            n_alerts = len(alerts)
            d = policy.decide(route, step["tier"], step["attempt"], status, ra,
                              now_ms=step["at_ms"], jitter=JITTERS[0])
            test.assertEqual(len(alerts) - n_alerts, 1 if d.alert else 0, where + ": alert callback")
            for r in runs:
                test.assertEqual((r.retry, r.tier, r.outcome, r.escalated, r.alert),
                                 (d.retry, d.tier, d.outcome, d.escalated, d.alert), where)
            got = {"retry": d.retry, "outcome": d.outcome, "escalated": d.escalated, "alert": d.alert}
            if d.retry:
                got["tier"] = d.tier
            if "tier" in expect:
                test.assertTrue(d.retry, where + ": expects a retry tier but the call ended")
            if "outcome" in expect:
                test.assertFalse(d.retry, where + ": expects an outcome but the call retries")
            for r in runs:
                if "delay_ms_min" in expect:
                    test.assertGreaterEqual(r.delay_ms, expect["delay_ms_min"], where + ": delay_ms")
                if "delay_ms_max" in expect:
                    test.assertLessEqual(r.delay_ms, expect["delay_ms_max"], where + ": delay_ms")
        else:
            test.fail(where + ": unknown event")
        for key in ("tier", "retry", "outcome", "escalated", "alert"):
            if key in expect:
                test.assertEqual(got.get(key), expect[key], "%s: %s" % (where, key))
        state = dict(policy.metrics(step["at_ms"]))
        state["priority_on"] = policy.priority_on(step["at_ms"])
        for key, want in (expect.get("state") or {}).items():
            test.assertIn(key, state, where + ": unknown state field")
            if key == "rate_503":
                test.assertAlmostEqual(state[key], want, delta=1e-9, msg=where + ": rate_503")
            else:
                test.assertEqual(state[key], want, "%s: state.%s" % (where, key))


class SharedBehaviours(unittest.TestCase):
    """clients/behaviours.json, the list the C and Node clients replay too."""

    def test_the_list_is_there(self):
        doc = load_behaviours()
        if doc is None:
            self.skipTest("clients/behaviours.json is not there yet")
        self.assertEqual(doc["schema"], "fleetmock-client-behaviours/1")
        self.assertGreater(len(doc["cases"]), 0)


def _add_cases():
    doc = load_behaviours()
    if doc is None:
        return
    for case in doc["cases"]:
        def test(self, case=case):
            run_case(self, doc, case)
        test.__doc__ = None
        setattr(SharedBehaviours, "test_case_" + case["name"], test)


_add_cases()


if __name__ == "__main__":
    unittest.main()
