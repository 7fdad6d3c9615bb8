"""The fleetmock test kit for Python: starts the real binary for a test suite
(port 0, --port-file in a temp dir), hands back the base URLs an app's SDK
needs, and wraps the control plane a test drives (congest a pool, script a
reply or a fault, read the request journal, play a scenario, reset).

It is thin on purpose: every method is one admin request, so what a test
does is what docs/control-plane.md says, and an error is the server's own
message. Standard library only (Python >= 3.8); the same API as the Node kit
(clients/node/testkit.mjs) in Python's spelling. A pytest fixture lives in
fleetmock_pytest.py; docs/testkits.md is the guide.

    from fleetmock_testkit import start_fleetmock

    with start_fleetmock(seed=7, test_id="checkout") as fm:
        client = OpenAI(base_url=fm.openai_base_url, api_key="k", default_headers=fm.headers)
        fm.congest("glm-5p1", 1.2, 0.2)
        ...

Known limits: a server is stopped when its handle is, when the `with` block
ends, or when the interpreter exits normally (atexit); a test process killed
by a signal it does not handle leaves it running, though Ctrl-C in a
terminal reaches both, as they share a process group.
"""

import atexit
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["start_fleetmock", "connect_fleetmock", "find_fleetmock", "new_test_id",
           "Fleetmock", "FleetmockError", "TEST_ID_HEADER", "REPO_ROOT"]

#: The repository this file lives in (clients/python/fleetmock_testkit.py -> ../..).
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

#: The request header that scopes a request to one test (rules, faults, journal).
TEST_ID_HEADER = "x-fleetmock-test-id"

_TEST_ID_MAX = 128
_TEST_ID_RE = re.compile(r"^[\x21-\x7e]{1,%d}$" % _TEST_ID_MAX)
_STDERR_KEEP = 16 * 1024  # the tail of the server's stderr kept for error messages


class FleetmockError(Exception):
    """An admin call the server refused (status, code, param from its error
    body), or a server that would not start (status 0)."""

    def __init__(self, message, status=0, code=None, param=None, body=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param
        self.body = body


def _is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _build_hint(root):
    return ("Build it from the repository (%s) with `bash .ci/dev.sh build`, or "
            "`cmake -S . -B build && cmake --build build -j2`; or set "
            "FLEETMOCK_BIN=/path/to/fleetmock, or put fleetmock on PATH." % root)


def find_fleetmock(env=None, repo_root=None):
    """Finds the fleetmock binary: FLEETMOCK_BIN, then `fleetmock` on PATH,
    then the repository's build directories (build/fleetmock, then
    build*/fleetmock, newest first). Returns its path; raises FleetmockError
    saying how to build it when there is none. `env` and `repo_root` are for
    tests."""
    env = os.environ if env is None else env
    root = REPO_ROOT if repo_root is None else repo_root
    if env.get("FLEETMOCK_BIN"):
        b = env["FLEETMOCK_BIN"]
        if _is_executable(b):
            return b
        raise FleetmockError("FLEETMOCK_BIN=%s is not an executable file. %s" % (b, _build_hint(root)))
    for d in env.get("PATH", "").split(os.pathsep):
        if d and _is_executable(os.path.join(d, "fleetmock")):
            return os.path.join(d, "fleetmock")
    main = os.path.join(root, "build", "fleetmock")
    if _is_executable(main):
        return main
    try:
        names = os.listdir(root)
    except OSError:
        names = []
    others = [os.path.join(root, n, "fleetmock") for n in names if n.startswith("build") and n != "build"]
    others = sorted((p for p in others if _is_executable(p)), key=os.path.getmtime, reverse=True)
    if others:
        return others[0]
    raise FleetmockError(
        "fleetmock binary not found (looked at FLEETMOCK_BIN, `fleetmock` on PATH, %s and %s). %s"
        % (main, os.path.join(root, "build*", "fleetmock"), _build_hint(root)))


def new_test_id():
    """A fresh test id: fm-<pid>-<8 hex>."""
    return "fm-%d-%s" % (os.getpid(), secrets.token_hex(4))


def _check_test_id(test_id):
    if test_id is None or test_id is False:
        return None
    if test_id is True:
        return new_test_id()
    if not isinstance(test_id, str) or not _TEST_ID_RE.match(test_id):
        raise FleetmockError("test_id must be 1 to %d printable ASCII characters without spaces (got %r)"
                             % (_TEST_ID_MAX, test_id))
    return test_id


# Every server still running, stopped at once if the interpreter exits
# without stopping it (a forgotten stop(), a failed setUpClass).
_live = set()
_live_lock = threading.Lock()


@atexit.register
def _kill_all():
    with _live_lock:
        handles = list(_live)
    for h in handles:
        h._kill_now()


def start_fleetmock(config=None, seed=None, timing="instant", args=(), test_id=None, bin=None,
                    env=None, start_timeout=20.0, stop_timeout=5.0, admin_timeout=30.0):
    """Starts fleetmock and returns a Fleetmock handle once it listens.

    config         a dict (JSON merge patch over the default fleet) or a file path
    seed           --seed N
    timing         "instant" (the default here: tests need no simulated delays) or "realistic"
    args           more command-line options, after the kit's own (so they win)
    test_id        a string, or True for a generated one: scopes reply(), fault(),
                   requests() and `headers` to that test; default none
    bin            the binary (default: find_fleetmock())
    env            extra environment for the child
    start_timeout, stop_timeout, admin_timeout   the bounds (seconds) on each wait
    """
    tid = _check_test_id(test_id)
    if bin is not None and not _is_executable(bin):
        raise FleetmockError("%s is not an executable file. %s" % (bin, _build_hint(REPO_ROOT)))
    binary = bin if bin is not None else find_fleetmock()
    tmp = tempfile.mkdtemp(prefix="fleetmock-kit-")
    port_file = os.path.join(tmp, "port")
    argv = [binary, "--host", "127.0.0.1", "--port", "0", "--port-file", port_file, "--log-level", "warn"]
    if config is not None:
        path = config
        if not isinstance(config, (str, os.PathLike)):
            path = os.path.join(tmp, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
        argv += ["--config", os.fspath(path)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if timing:
        argv += ["--timing", timing]
    argv += list(args)
    child_env = dict(os.environ)
    child_env.update(env or {})
    # The child writes its own file description; the kit reads the file by
    # name, so reading never moves the child's write offset.
    stderr_path = os.path.join(tmp, "stderr")
    try:
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=stderr, env=child_env)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FleetmockError("cannot start %s: %s" % (binary, e)) from None
    h = Fleetmock(proc=proc, tmp=tmp, stderr_path=stderr_path, binary=binary, test_id=tid,
                  stop_timeout=stop_timeout, admin_timeout=admin_timeout)
    with _live_lock:
        _live.add(h)

    # Wait for the port file (written atomically once listening), bounded.
    deadline = time.monotonic() + start_timeout
    port = None
    while port is None:
        code = proc.poll()
        if code is not None:
            log = h.stderr.strip()
            h.stop()
            raise FleetmockError("fleetmock exited before listening (%s): %s"
                                 % ("exit %d" % code if code >= 0 else "signal %d" % -code, log))
        try:
            with open(port_file) as f:
                text = f.read().strip()
            if text.isdigit():
                port = int(text)
                break
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            log = h.stderr.strip()
            h.stop()
            raise FleetmockError("fleetmock did not listen within %g s: %s" % (start_timeout, log))
        time.sleep(0.01)
    h._set_url("http://127.0.0.1:%d" % port)
    h.port = port
    return h


def connect_fleetmock(url, test_id=None, admin_timeout=30.0):
    """A handle on a server someone else started (a session fixture, a compose
    stack): the same methods, and stop() leaves the server alone."""
    h = Fleetmock(proc=None, tmp=None, stderr_path=None, binary=None, test_id=_check_test_id(test_id),
                  stop_timeout=0, admin_timeout=admin_timeout)
    h._set_url(url.rstrip("/"))
    return h


class Fleetmock:
    """A running fleetmock (or one connected to). Attributes: url,
    openai_base_url, anthropic_base_url, port, pid, binary, test_id, headers."""

    def __init__(self, proc, tmp, stderr_path, binary, test_id, stop_timeout, admin_timeout):
        self._proc = proc
        self._tmp = tmp
        self._stderr_path = stderr_path
        self._stop_timeout = stop_timeout
        self._admin_timeout = admin_timeout
        self._exit = None
        self._lock = threading.Lock()
        self.binary = binary
        self.pid = proc.pid if proc else None
        self.port = None
        self.url = None
        self.openai_base_url = None
        self.anthropic_base_url = None
        self.test_id = test_id
        self.headers = {TEST_ID_HEADER: test_id} if test_id else {}

    def _set_url(self, url):
        self.url = url
        self.openai_base_url = url + "/inference/v1"
        # The Anthropic SDK appends /v1/messages; fleetmock serves it under
        # /inference/v1/messages, like Fireworks (docs/api.md).
        self.anthropic_base_url = url + "/inference"

    @property
    def stderr(self):
        """The last 16 KiB the server wrote on stderr (its log, at --log-level warn)."""
        if self._stderr_path is None:
            return ""
        try:
            with open(self._stderr_path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(max(0, size - _STDERR_KEEP))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # ---- the control plane ---------------------------------------------------------

    def admin(self, method, path, body=None):
        """Any control-plane call; returns the parsed JSON, raises FleetmockError on a non-2xx."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self._admin_timeout) as r:
                text = r.read().decode("utf-8", "replace")
                status = r.status
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            status = e.code
            e.close()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            gone = ""
            if self._proc is not None and self._proc.poll() is not None:
                gone = " (fleetmock exited with %s; %s)" % (self._proc.returncode, self.stderr.strip())
            raise FleetmockError("%s %s: %s%s" % (method, path, reason, gone)) from None
        try:
            js = json.loads(text) if text else None
        except ValueError:
            js = None
        if 200 <= status < 300:
            return js
        err = js.get("error", {}) if isinstance(js, dict) and isinstance(js.get("error"), dict) else {}
        message = err.get("message", text)
        hint = ""
        if status == 404 and message.startswith("no admin route"):
            hint = " (this fleetmock (%s) predates that route: rebuild it from a newer source)" % (
                self.binary or self.url)
        raise FleetmockError("%s %s: %d %s%s" % (method, path, status, message, hint), status=status,
                             code=err.get("code"), param=err.get("param"),
                             body=js if js is not None else text)

    def state(self):
        """GET /admin/state."""
        return self.admin("GET", "/admin/state")

    def congest(self, pool, load, share=None):
        """Other tenants' load on a pool, or on every pool with "*" (PATCH
        /admin/pools/{pool}); returns the pool's new state ("*": every pool's)."""
        patch = {"tenant_load": load}
        if share is not None:
            patch["tenant_priority_share"] = share
        r = self.admin("PATCH", "/admin/pools/" + urllib.parse.quote(pool, safe="*"), patch)
        return r["pools"] if pool == "*" else r["pools"][pool]

    def _scoped(self, rule):
        match = dict(rule.get("match") or {})
        if not self.test_id or "test_id" in match:
            return rule
        match["test_id"] = self.test_id
        return dict(rule, match=match)

    def reply(self, rule):
        """A reply rule (POST /admin/replies) with this test's id in match.test_id; returns {"id", ...}."""
        return self.admin("POST", "/admin/replies", self._scoped(rule))

    def replies(self):
        """The reply rules (GET /admin/replies), this test's only when it has an id."""
        data = self.admin("GET", "/admin/replies")["data"]
        if self.test_id:
            data = [r for r in data if (r.get("match") or {}).get("test_id") == self.test_id]
        return data

    def clear_replies(self, rule_id=None):
        """Deletes one reply rule, or (no id) this test's rules, or every rule
        when the handle has no test id."""
        if rule_id is not None:
            return self.admin("DELETE", "/admin/replies/%s" % rule_id)
        if self.test_id:
            return self.admin("DELETE", "/admin/replies?" + urllib.parse.urlencode({"test_id": self.test_id}))
        return self.admin("DELETE", "/admin/replies")

    def fault(self, rule):
        """A scripted fault (POST /admin/faults) with this test's id in match.test_id; returns {"id", ...}."""
        return self.admin("POST", "/admin/faults", self._scoped(rule))

    def faults(self):
        """Every fault with its fired count (GET /admin/faults): {"faults": [...]}."""
        return self.admin("GET", "/admin/faults")

    def clear_faults(self, fault_id=None):
        """Deletes one fault, or every fault."""
        return self.admin("DELETE", "/admin/faults" if fault_id is None else "/admin/faults/%s" % fault_id)

    def requests(self, test_id=..., **filters):
        """The request journal, newest first (GET /admin/requests): filters
        key_id, model, status, since, limit, and test_id (this test's by
        default; test_id=None for every test's). Returns the entries."""
        q = {}
        tid = self.test_id if test_id is ... else test_id
        if tid is not None:
            q["test_id"] = tid
        q.update({k: v for k, v in filters.items() if v is not None})
        qs = urllib.parse.urlencode(q)
        return self.admin("GET", "/admin/requests" + ("?" + qs if qs else ""))["data"]

    def clear_requests(self):
        """Empties the journal: this test's entries, or all when the handle has no test id."""
        if self.test_id:
            return self.admin("DELETE", "/admin/requests?" + urllib.parse.urlencode({"test_id": self.test_id}))
        return self.admin("DELETE", "/admin/requests")

    def scenario(self, name_or_body):
        """Starts a scenario: a shipped one by name or a whole scenario dict; returns its state."""
        body = {"name": name_or_body} if isinstance(name_or_body, str) else name_or_body
        return self.admin("POST", "/admin/scenario", body)

    def stop_scenario(self):
        """Stops the running scenario and restores the pools it changed."""
        return self.admin("DELETE", "/admin/scenario")

    def reset(self):
        """POST /admin/reset: the server back to its boot state (for every test sharing it)."""
        return self.admin("POST", "/admin/reset")

    def with_test_id(self, test_id=True):
        """A handle on the same server for another test id (generated by
        default); stop() on it does nothing."""
        h = connect_fleetmock(self.url, test_id=test_id, admin_timeout=self._admin_timeout)
        h.binary = self.binary
        return h

    # ---- stopping ------------------------------------------------------------------

    def _kill_now(self):
        with _live_lock:
            _live.discard(self)
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.kill()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._cleanup()

    def _cleanup(self):
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def stop(self):
        """Stops the child this handle started (SIGTERM, then SIGKILL after
        stop_timeout) and removes its temp dir; returns its exit status
        (negative: the signal that ended it). Safe to call twice; on a
        connected handle it does nothing and returns None."""
        if self._proc is None:
            return None
        with self._lock:
            if self._exit is None:
                if self._proc.poll() is None:
                    try:
                        self._proc.send_signal(signal.SIGTERM)
                        self._proc.wait(timeout=self._stop_timeout)
                    except subprocess.TimeoutExpired:
                        self._proc.kill()
                        self._proc.wait(timeout=5)
                self._exit = self._proc.returncode
                with _live_lock:
                    _live.discard(self)
                self._cleanup()
        return self._exit

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return "<Fleetmock %s pid=%s test_id=%r>" % (self.url, self.pid, self.test_id)
