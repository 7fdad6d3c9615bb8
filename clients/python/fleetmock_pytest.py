"""pytest fixtures for the fleetmock test kit (fleetmock_testkit.py), as a
plugin module: load it with `pytest_plugins = ["fleetmock_pytest"]` in a
conftest.py, or `pytest -p fleetmock_pytest`, with clients/python on the
path.

- `fleetmock`: a server of the test's own, started for it and stopped after
  it. Options come from the `fleetmock_options` fixture (override it in a
  conftest.py) and then a `@pytest.mark.fleetmock(seed=7, config={...})`
  marker; a `test_id` there scopes the handle as in start_fleetmock().
- `fleetmock_server`: one server for the whole session (options from the
  `fleetmock_server_options` fixture), and `fleetmock_shared`: a handle on it
  with a test id made from the test's node id, so tests sharing the server
  do not see each other's reply rules, faults or journal entries (send
  `fleetmock_shared.headers` with the app's requests). Its rules and journal
  entries are deleted after the test. Pool load and scenarios are shared by
  every test: a test that congests a pool wants `fleetmock`.

pytest is imported only here, and only if it is installed: the kit itself,
and this module's import, work without it. The fixture bodies are plain
generator functions (`own_server`, `shared_handle`) that run under any
runner.
"""

import hashlib
import re

from fleetmock_testkit import FleetmockError, start_fleetmock

try:  # the plugin half needs pytest; the kit does not
    import pytest
except ImportError:  # pragma: no cover - exercised where pytest is missing
    pytest = None

_OPTIONS = ("config", "seed", "timing", "args", "test_id", "bin", "env", "start_timeout",
            "stop_timeout", "admin_timeout")


def test_id_for(nodeid):
    """A test id (1-128 printable ASCII, no spaces) from a pytest node id:
    other bytes become '_', and a long id keeps its tail and a digest."""
    tid = re.sub(r"[^\x21-\x7e]", "_", nodeid) or "test"
    if len(tid) > 128:
        digest = hashlib.sha1(nodeid.encode()).hexdigest()[:12]
        tid = tid[-(128 - 13):] + "-" + digest
    return tid


test_id_for.__test__ = False  # not a test, whatever its name


def merge_options(*layers):
    """Merges option dicts, later ones winning; raises on an unknown name."""
    out = {}
    for layer in layers:
        for k, v in (layer or {}).items():
            if k not in _OPTIONS:
                raise FleetmockError("unknown fleetmock option %r (known: %s)" % (k, ", ".join(_OPTIONS)))
            out[k] = v
    return out


def own_server(options):
    """Generator: starts a server with `options`, yields its handle, stops it."""
    fm = start_fleetmock(**options)
    try:
        yield fm
    finally:
        fm.stop()


def shared_handle(server, test_id):
    """Generator: yields a handle on `server` scoped to `test_id`, then deletes
    that test's reply rules and journal entries (on a server without those
    routes there is nothing to delete)."""
    h = server.with_test_id(test_id)
    try:
        yield h
    finally:
        for clear in (h.clear_replies, h.clear_requests):
            try:
                clear()
            except FleetmockError as e:
                if e.status != 404:
                    raise


if pytest is not None:

    def pytest_configure(config):
        config.addinivalue_line(
            "markers", "fleetmock(**options): start_fleetmock() options for the fleetmock fixture "
                       "(config, seed, timing, args, test_id, ...)")

    @pytest.fixture
    def fleetmock_options():
        """Options of every `fleetmock` server; override in a conftest.py."""
        return {}

    @pytest.fixture(scope="session")
    def fleetmock_server_options():
        """Options of the session's shared server; override in a conftest.py."""
        return {}

    @pytest.fixture
    def fleetmock(request, fleetmock_options):
        """A fleetmock of this test's own (see the module doc)."""
        marker = request.node.get_closest_marker("fleetmock")
        options = merge_options(fleetmock_options, marker.kwargs if marker else None)
        yield from own_server(options)

    @pytest.fixture(scope="session")
    def fleetmock_server(fleetmock_server_options):
        """One fleetmock for the session."""
        yield from own_server(merge_options(fleetmock_server_options))

    @pytest.fixture
    def fleetmock_shared(request, fleetmock_server):
        """The session's server, scoped to this test's id."""
        yield from shared_handle(fleetmock_server, test_id_for(request.node.nodeid))
