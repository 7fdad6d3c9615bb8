"""The Python test kit (fleetmock_testkit.py) and its pytest plugin
(fleetmock_pytest.py) against the real binary: the kit starts and stops the
server, its admin helpers do what control-plane.md says, and it finds the
binary or says how to build it. The reply and journal tests need
/admin/replies and /admin/requests (issue 14); on a server without them they
fail saying so. Plain urllib, no SDK. Every wait is bounded; loopback only.

The binary comes from FLEETMOCK_BIN (ctest sets it) or the kit's own lookup.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fleetmock_testkit as kit  # noqa: E402
from fleetmock_testkit import (FleetmockError, TEST_ID_HEADER, connect_fleetmock,  # noqa: E402
                               find_fleetmock, start_fleetmock)

KIMI = "accounts/fireworks/models/kimi-k2p6"
GLM = "accounts/fireworks/models/glm-5p1"
GLM_POOL = "glm-5p1"  # server/default-config.json: glm-5p1 is served by its own pool
HERE = os.path.dirname(os.path.abspath(__file__))


def chat(fm, headers=None, **body):
    """POSTs a chat completion to the kit's OpenAI base with urllib; returns (status, json)."""
    req_body = {"model": KIMI, "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                "max_tokens": 4}
    req_body.update(body)
    req = urllib.request.Request(fm.openai_base_url + "/chat/completions", data=json.dumps(req_body).encode(),
                                 method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Bearer kit-test")
    for k, v in (fm.headers if headers is None else headers).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is gone for our purpose.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def pid_gone(pid, wait_s=10.0):
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def needs_route(tc, fm, path):
    """Fails the test, saying why, when the server does not answer `path` (a
    route of issue 14 not merged yet)."""
    try:
        fm.admin("GET", path)
        return
    except FleetmockError as e:
        if not (e.status == 404 and "no admin route" in str(e)):
            raise
        said = e.body["error"]["message"]
    tc.fail("this fleetmock (%s) has no GET %s yet: the reply rules and the request journal "
            "(issue 14) are built on another branch; this test runs once they are merged "
            "(the server said: %s)" % (fm.binary, path, said))


class KitServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fm = start_fleetmock(seed=7)

    @classmethod
    def tearDownClass(cls):
        cls.fm.stop()

    def setUp(self):
        self.fm.reset()

    def test_listens_on_loopback_and_answers_at_openai_base_url(self):
        fm = self.fm
        self.assertRegex(fm.url, r"^http://127\.0\.0\.1:\d+$")
        self.assertEqual(fm.openai_base_url, fm.url + "/inference/v1")
        self.assertEqual(fm.anthropic_base_url, fm.url + "/inference")
        self.assertIsNone(fm.test_id)
        self.assertEqual(fm.headers, {})
        status, js = chat(fm, ignore_eos=True)
        self.assertEqual(status, 200)
        self.assertEqual((js["object"], js["model"], js["usage"]["completion_tokens"]),
                         ("chat.completion", KIMI, 4))
        state = fm.state()
        self.assertEqual((state["seed"], state["timing"]), (7, "instant"))

    def test_congest_sheds_standard_with_503_and_lets_priority_through(self):
        pool = self.fm.congest(GLM_POOL, 1.2, 0.2)
        self.assertEqual((pool["tenant_load"], pool["tenant_priority_share"]), (1.2, 0.2))
        status, js = chat(self.fm, model=GLM)
        self.assertEqual((status, js["error"]["code"]), (503, "SERVICE_OVERLOADED"))
        status, js = chat(self.fm, model=GLM, service_tier="priority")
        self.assertEqual((status, js["service_tier"]), (200, "priority"))
        self.assertEqual(chat(self.fm, model=KIMI)[0], 200)  # another pool is not touched
        self.assertGreater(len(self.fm.congest("*", 1.2, 0.2)), 1)
        self.assertEqual(chat(self.fm, model=KIMI)[0], 503)

    def test_a_fault_with_count_1_fires_once(self):
        f = self.fm.fault({"match": {"model": KIMI}, "action": {"status": 500}, "count": 1})
        self.assertIsInstance(f["id"], int)
        self.assertEqual([chat(self.fm)[0] for _ in range(3)], [500, 200, 200])
        mine = [x for x in self.fm.faults()["faults"] if x["id"] == f["id"]][0]
        self.assertEqual((mine["fired"], mine["count_left"]), (1, 0))

    def test_reset_puts_the_pools_back_and_deletes_the_faults(self):
        self.fm.congest(GLM_POOL, 1.2, 0.2)
        self.fm.fault({"match": {"model": KIMI}, "action": {"status": 500}, "count": 5})
        self.assertEqual(self.fm.reset(), {"status": "reset"})
        self.assertEqual(chat(self.fm, model=GLM)[0], 200)
        self.assertEqual(chat(self.fm, model=KIMI)[0], 200)
        self.assertEqual(self.fm.faults()["faults"], [])
        self.assertNotEqual(self.fm.state()["pools"][GLM_POOL]["tenant_load"], 1.2)

    def test_scenario_starts_a_shipped_drill_by_name(self):
        s = self.fm.scenario("launch-spike")
        self.assertEqual((s["name"], s["steps"], s["finished"]), ("launch-spike", 3, False))
        self.assertEqual(self.fm.state()["scenario"]["name"], "launch-spike")
        self.fm.stop_scenario()
        self.assertIsNone(self.fm.state()["scenario"])

    def test_an_admin_error_raises_with_the_servers_message(self):
        with self.assertRaises(FleetmockError) as cm:
            self.fm.congest("no-such-pool", 1)
        e = cm.exception
        self.assertEqual((e.status, e.param), (404, "pool"))
        self.assertRegex(str(e), r'^PATCH /admin/pools/no-such-pool: 404 no pool named "no-such-pool"')
        with self.assertRaisesRegex(FleetmockError, r'404 no built-in scenario "no-such-drill"'):
            self.fm.scenario("no-such-drill")


class StartingAndStopping(unittest.TestCase):
    def test_stop_kills_the_process_it_started_and_is_safe_to_call_twice(self):
        fm = start_fleetmock()
        self.assertTrue(pid_alive(fm.pid))
        self.assertEqual(fm.stop(), 0)  # SIGTERM is a clean drain
        self.assertFalse(pid_alive(fm.pid))
        self.assertEqual(fm.stop(), 0)

    def test_the_context_manager_stops_it(self):
        with start_fleetmock() as fm:
            pid = fm.pid
            self.assertEqual(chat(fm)[0], 200)
        self.assertFalse(pid_alive(pid))

    def test_an_interpreter_that_exits_without_stop_takes_its_server_with_it(self):
        script = ("import sys; sys.path.insert(0, %r)\n"
                  "from fleetmock_testkit import start_fleetmock\n"
                  "fm = start_fleetmock(); print(fm.pid, flush=True)\n" % HERE)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = int(r.stdout.strip())
        self.assertTrue(pid_gone(pid), "fleetmock %d outlived its test process" % pid)

    def test_a_test_id_goes_in_headers_and_true_makes_one_up(self):
        with start_fleetmock(test_id="checkout.test") as fm:
            self.assertEqual(fm.test_id, "checkout.test")
            self.assertEqual(fm.headers, {TEST_ID_HEADER: "checkout.test"})
            self.assertEqual(chat(fm)[0], 200)  # the server takes the header
            other = fm.with_test_id()
            self.assertRegex(other.test_id, r"^fm-\d+-[0-9a-f]{8}$")
            self.assertEqual(other.url, fm.url)
            self.assertIsNone(other.stop())  # not its server to stop
            self.assertEqual(chat(fm)[0], 200)
        with self.assertRaisesRegex(FleetmockError, "test_id must be 1 to 128 printable ASCII characters"):
            start_fleetmock(test_id="has space")

    def test_connect_fleetmock_drives_a_server_started_elsewhere(self):
        with start_fleetmock() as fm:
            c = connect_fleetmock(fm.url + "/")
            self.assertEqual(c.openai_base_url, fm.url + "/inference/v1")
            self.assertEqual(c.reset(), {"status": "reset"})

    def test_a_server_that_exits_before_listening_is_reported_with_its_stderr(self):
        with self.assertRaises(FleetmockError) as cm:
            start_fleetmock(timing="sometimes")
        self.assertRegex(str(cm.exception), r"^fleetmock exited before listening \(exit 2\): (?s:.*)timing")


class FindingTheBinary(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fleetmock-find-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def fake(self, *parts):
        path = os.path.join(self.dir, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o755)
        return path

    def test_not_found_the_message_says_how_to_build_it(self):
        empty = os.path.join(self.dir, "empty")
        os.mkdir(empty)
        with self.assertRaises(FleetmockError) as cm:
            find_fleetmock(env={"PATH": empty}, repo_root=empty)
        msg = str(cm.exception)
        self.assertTrue(msg.startswith("fleetmock binary not found"), msg)
        self.assertIn("bash .ci/dev.sh build", msg)
        self.assertIn("cmake -S . -B build && cmake --build build", msg)
        self.assertIn("FLEETMOCK_BIN", msg)

    def test_fleetmock_bin_that_is_not_executable_is_named_in_the_error(self):
        nope = os.path.join(self.dir, "nope")
        with self.assertRaisesRegex(FleetmockError, r"FLEETMOCK_BIN=.*nope is not an executable file\. Build it"):
            find_fleetmock(env={"FLEETMOCK_BIN": nope})
        with self.assertRaisesRegex(FleetmockError, "nope is not an executable file"):
            start_fleetmock(bin=nope)

    def test_fleetmock_bin_first_then_path_then_build_then_the_newest_build_dir(self):
        root = os.path.join(self.dir, "repo")
        on_path = self.fake("bin", "fleetmock")
        env_bin = self.fake("env", "fleetmock")
        older = self.fake("repo", "build-asan", "fleetmock")
        newer = self.fake("repo", "build-tsan", "fleetmock")
        t = time.time()
        os.utime(older, (t - 100, t - 100))
        os.utime(newer, (t, t))
        path = os.pathsep.join([os.path.join(self.dir, "empty-path"), os.path.join(self.dir, "bin")])
        self.assertEqual(find_fleetmock(env={"FLEETMOCK_BIN": env_bin, "PATH": path}, repo_root=root), env_bin)
        self.assertEqual(find_fleetmock(env={"PATH": path}, repo_root=root), on_path)
        self.assertEqual(find_fleetmock(env={"PATH": ""}, repo_root=root), newer)
        main = self.fake("repo", "build", "fleetmock")
        self.assertEqual(find_fleetmock(env={"PATH": ""}, repo_root=root), main)


class PytestPlugin(unittest.TestCase):
    """The plugin without pytest (it imports), and its fixtures driven through
    a stand-in `pytest` module, as pytest would drive them."""

    def load_plugin(self, fake_pytest):
        saved = {k: sys.modules.get(k) for k in ("pytest", "fleetmock_pytest")}

        def restore():
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
        self.addCleanup(restore)
        sys.modules.pop("fleetmock_pytest", None)
        if fake_pytest is None:
            sys.modules["pytest"] = None  # `import pytest` raises ImportError
        else:
            sys.modules["pytest"] = fake_pytest
        return importlib.import_module("fleetmock_pytest")

    def test_imports_without_pytest(self):
        plugin = self.load_plugin(None)
        self.assertIsNone(plugin.pytest)
        self.assertFalse(hasattr(plugin, "fleetmock"))
        # The fixture bodies still run under any runner.
        gen = plugin.own_server({"seed": 3})
        fm = next(gen)
        self.assertEqual(fm.state()["seed"], 3)
        pid = fm.pid
        gen.close()
        self.assertFalse(pid_alive(pid))

    def fake_pytest(self):
        fixtures = {}
        fake = types.ModuleType("pytest")

        def fixture(fn=None, scope="function"):
            def register(f):
                fixtures[f.__name__] = (f, scope)
                return f
            return register(fn) if fn is not None else register
        fake.fixture = fixture
        return fake, fixtures

    def request(self, nodeid, marker_kwargs=None):
        marker = types.SimpleNamespace(kwargs=marker_kwargs) if marker_kwargs is not None else None
        node = types.SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: marker if name == "fleetmock" else None)
        return types.SimpleNamespace(node=node)

    def test_fleetmock_fixture_starts_a_server_per_test_with_the_marker_options(self):
        fake, fixtures = self.fake_pytest()
        plugin = self.load_plugin(fake)
        self.assertEqual(sorted(fixtures), ["fleetmock", "fleetmock_options", "fleetmock_server",
                                            "fleetmock_server_options", "fleetmock_shared"])
        self.assertEqual(fixtures["fleetmock_server"][1], "session")
        config = types.SimpleNamespace(lines=[])
        config.addinivalue_line = lambda name, line: config.lines.append((name, line))
        plugin.pytest_configure(config)
        self.assertEqual(config.lines[0][0], "markers")
        self.assertTrue(config.lines[0][1].startswith("fleetmock(**options)"))

        gen = fixtures["fleetmock"][0](self.request("tests/test_app.py::test_one", {"seed": 11}),
                                       {"seed": 5, "timing": "instant"})
        fm = next(gen)
        self.assertEqual(fm.state()["seed"], 11)  # the marker wins over fleetmock_options
        self.assertIsNone(fm.test_id)
        pid = fm.pid
        with self.assertRaises(StopIteration):
            next(gen)
        self.assertFalse(pid_alive(pid))
        with self.assertRaisesRegex(FleetmockError, "unknown fleetmock option 'sed'"):
            next(fixtures["fleetmock"][0](self.request("t", {"sed": 1}), {}))

    def test_fleetmock_shared_scopes_the_session_server_to_the_node_id(self):
        fake, fixtures = self.fake_pytest()
        self.load_plugin(fake)
        server_gen = fixtures["fleetmock_server"][0]({})
        server = next(server_gen)
        try:
            gen = fixtures["fleetmock_shared"][0](self.request("tests/test_app.py::test_weather[Paris x]"), server)
            h = next(gen)
            self.assertEqual(h.test_id, "tests/test_app.py::test_weather[Paris_x]")
            self.assertEqual(h.headers, {TEST_ID_HEADER: h.test_id})
            self.assertEqual(h.url, server.url)
            self.assertEqual(chat(h)[0], 200)
            with self.assertRaises(StopIteration):
                next(gen)  # the cleanup tolerates a server without the issue-14 routes
            self.assertTrue(pid_alive(server.pid))
        finally:
            server_gen.close()
        self.assertFalse(pid_alive(server.pid))

    def test_test_ids_from_node_ids_are_valid(self):
        plugin = self.load_plugin(None)
        long_id = "tests/test_x.py::test_" + "a" * 300
        tid = plugin.test_id_for(long_id)
        self.assertEqual(len(tid), 128)
        self.assertRegex(tid, r"^[\x21-\x7e]+$")
        self.assertNotEqual(tid, plugin.test_id_for(long_id + "b"))
        self.assertEqual(plugin.test_id_for("a b\tc"), "a_b_c")


# ---------------------------------------------------------------------------
# Reply rules and the request journal (issue 14): the contract in
# docs/testkits.md. They fail, saying so, on a server without the routes.

class RepliesAndJournal(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fm = start_fleetmock(test_id="kit-replies-py")

    @classmethod
    def tearDownClass(cls):
        cls.fm.stop()

    def setUp(self):
        self.fm.reset()
        # Every test id's rules and entries, not only this handle's (a missing
        # route is reported by the test itself).
        for path in ("/admin/replies", "/admin/requests"):
            try:
                self.fm.admin("DELETE", path)
            except FleetmockError:
                pass

    def test_a_reply_rule_scripts_the_next_answer_count_times(self):
        needs_route(self, self.fm, "/admin/replies")
        rule = self.fm.reply({"match": {"model": KIMI}, "reply": {"content": "It is sunny"}, "count": 1})
        self.assertIsInstance(rule["id"], int)
        status, js = chat(self.fm)
        self.assertEqual((status, js["choices"][0]["message"]["content"]), (200, "It is sunny"))
        status, js = chat(self.fm)
        self.assertEqual(status, 200)
        self.assertNotEqual(js["choices"][0]["message"]["content"], "It is sunny")  # retired

    def test_a_sequence_answers_a_tool_call_then_text(self):
        needs_route(self, self.fm, "/admin/replies")
        self.fm.reply({"match": {}, "sequence": [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            {"content": "It is sunny in Paris", "finish_reason": "stop"},
        ], "repeat": False})
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}}]
        status, js = chat(self.fm, tools=tools, max_tokens=64)
        self.assertEqual(status, 200)
        call = js["choices"][0]["message"]["tool_calls"][0]
        self.assertEqual(call["function"]["name"], "get_weather")
        self.assertEqual(json.loads(call["function"]["arguments"]), {"city": "Paris"})
        status, js = chat(self.fm, tools=tools, max_tokens=64, messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": '{"sky":"clear"}'},
        ])
        self.assertEqual((js["choices"][0]["message"]["content"], js["choices"][0]["finish_reason"]),
                         ("It is sunny in Paris", "stop"))

    def test_a_scripted_reply_is_still_shed_under_congestion(self):
        needs_route(self, self.fm, "/admin/replies")
        self.fm.reply({"match": {"model": GLM}, "reply": {"content": "scripted"}, "count": 5})
        self.fm.congest(GLM_POOL, 1.2, 0.2)
        self.assertEqual(chat(self.fm, model=GLM)[0], 503)
        status, js = chat(self.fm, model=GLM, service_tier="priority")
        self.assertEqual((status, js["choices"][0]["message"]["content"]), (200, "scripted"))

    def test_one_test_ids_rules_do_not_answer_anothers_requests(self):
        needs_route(self, self.fm, "/admin/replies")
        other = self.fm.with_test_id("kit-replies-py-other")
        self.fm.reply({"match": {}, "reply": {"content": "mine"}, "count": 10})
        self.assertNotEqual(chat(other)[1]["choices"][0]["message"]["content"], "mine")
        self.assertEqual(chat(self.fm)[1]["choices"][0]["message"]["content"], "mine")
        self.assertEqual((len(self.fm.replies()), len(other.replies())), (1, 0))
        self.fm.clear_replies()
        self.assertEqual(self.fm.replies(), [])

    def test_requests_lists_this_tests_requests_newest_first_with_filters(self):
        needs_route(self, self.fm, "/admin/requests")
        self.fm.congest(GLM_POOL, 1.2, 0.2)
        self.assertEqual(chat(self.fm, model=KIMI)[0], 200)
        self.assertEqual(chat(self.fm, model=GLM)[0], 503)
        self.assertEqual(chat(self.fm.with_test_id("kit-someone-else-py"), model=KIMI)[0], 200)
        self.assertEqual([(e["model"], e["status"]) for e in self.fm.requests()], [(GLM, 503), (KIMI, 200)])
        self.assertEqual([e["model"] for e in self.fm.requests(status=503)], [GLM])
        self.assertEqual([e["status"] for e in self.fm.requests(model=KIMI)], [200])
        self.assertEqual(len(self.fm.requests(limit=1)), 1)
        self.assertEqual(len(self.fm.requests(test_id=None)), 3)
        self.fm.clear_requests()
        self.assertEqual(self.fm.requests(), [])
        self.assertEqual(len(self.fm.requests(test_id=None)), 1)

    def test_a_fault_with_this_tests_id_fires_for_its_requests_only(self):
        needs_route(self, self.fm, "/admin/replies")  # test ids on faults come with the shared rule matcher
        self.fm.fault({"match": {"model": KIMI}, "action": {"status": 500}, "count": 1})
        self.assertEqual(chat(self.fm.with_test_id("kit-bystander-py"))[0], 200)
        self.assertEqual([chat(self.fm)[0] for _ in range(2)], [500, 200])


if __name__ == "__main__":
    unittest.main()
