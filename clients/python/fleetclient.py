"""fleetclient: a stdlib-only reference client of the fleetmock routing pattern.

The pattern (SPEC section 7): stay on Standard by default. On a 503, and only
a 503, escalate to Priority for a window (30 simulated minutes by default),
retry that request there, and drift back to Standard once the window has
passed. On a 429 back off for at least Retry-After (retry-after-ms
preferred). Never escalate a batch route. Keep priority_until, the escalation
count, the 503 rate and the number of consecutive Priority windows, and
raise an alert when Priority stays on for N windows in a row.

Two layers:

* ``Policy`` is pure: it never sleeps, never touches the network and reads
  time only from the clock it is given, so the shared behaviour list
  (clients/behaviours.json) drives it with a fake clock. Its decisions are
  those of the C policy (clients/c/fleetclient.c).
* ``FleetClient`` is the HTTP glue (urllib): it asks the policy which tier to
  start on, sends the request, hands the status to the policy and does what
  the ``Decision`` says.

Known limit: the 503 rate is over the client's whole life, not a sliding
window.
"""

import json
import math
import random
import time
import http.client
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Policy", "Decision", "FleetClient", "Result", "parse_retry_after",
           "outcome_of", "STANDARD", "PRIORITY", "ROUTES", "STRATEGIES",
           "STATUS_NETWORK", "STATUS_STREAM_ERROR"]

STANDARD = "standard"
PRIORITY = "priority"
ROUTES = ("interactive", "agent", "batch")
STRATEGIES = ("escalate", "backoff", "naive", "always-priority")

# Not HTTP statuses: what an attempt ended with when there was no answer
# (the same values as clients/c/fleetclient.h).
STATUS_NETWORK = 0        # no HTTP answer: refused, reset, timed out
STATUS_STREAM_ERROR = -1  # 200, then an SSE error event or a cut stream

DEFAULT_WINDOW_S = 1800.0
DEFAULT_BACKOFF_BASE_MS = 500
DEFAULT_BACKOFF_CAP_MS = 30000
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_ALERT_WINDOWS = 3


def monotonic_ms():
    """The default clock: monotonic milliseconds."""
    return int(time.monotonic() * 1000)


def _llround(x):
    """C's llround for the non-negative values used here (half away from zero)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _clamp_jitter(j):
    return 0.0 if j < 0 else (0.999999 if j >= 1 else j)


def parse_retry_after(retry_after_ms, retry_after):
    """Milliseconds from the two headers (either may be None): retry-after-ms
    first, then Retry-After in seconds; -1 when neither parses."""
    for value, factor in ((retry_after_ms, 1.0), (retry_after, 1000.0)):
        if value is None or str(value).strip() == "":
            continue
        try:
            v = float(value)
        except ValueError:
            continue  # an HTTP-date Retry-After: fleetmock never sends one
        if v >= 0 and math.isfinite(v):
            return int(math.ceil(v * factor))
    return -1


def outcome_of(status):
    """How an attempt with this status ends a call: ok, shed, limited or error."""
    if 200 <= status < 300:
        return "ok"
    if status == 503:
        return "shed"
    if status == 429:
        return "limited"
    return "error"


def _retryable(status):
    # The fleet or the account said "not now", or the answer never arrived.
    # Other 4xx will fail the same way again.
    return status == 429 or status >= 500 or status in (STATUS_NETWORK, STATUS_STREAM_ERROR)


class Decision:
    """What follows an attempt.

    retry: send again on ``tier`` after ``delay_ms`` (client clock); else the
    call ends with ``outcome`` (ok, shed, limited, error). ``escalated``: this
    answer opened a Priority window; ``alert``: that window made the run of
    back-to-back windows ``alert_windows`` long.
    """

    __slots__ = ("retry", "tier", "delay_ms", "outcome", "escalated", "alert")

    def __init__(self, tier, outcome):
        self.retry = False
        self.tier = tier
        self.delay_ms = 0
        self.outcome = outcome
        self.escalated = False
        self.alert = False

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return "Decision(%s)" % (self.as_dict(),)


class Policy:
    """The routing pattern as a pure state machine.

    Times are milliseconds of the client's clock (``clock``, monotonic by
    default). ``window_s`` and the backoff settings are in the server's
    simulated time and are divided by ``time_scale``, so against
    ``fleetmock --time-scale 60`` a 30-minute window lasts 30 real seconds.
    Retry-After is real time already (the server divides it) and is used as
    is, as a floor.

    A window opened within one window length of the previous one's end
    continues the run (Standard was still shedding when the client came
    back); a longer gap starts a new run. The alert fires once per run, when
    it reaches ``alert_windows`` (0 = never), and calls ``on_alert(alert)``.

    The decisions are those of the C policy (clients/c/fleetclient.c), so the
    three clients pass the same behaviour list.
    """

    def __init__(self, window_s=DEFAULT_WINDOW_S, time_scale=1.0,
                 backoff_base_ms=DEFAULT_BACKOFF_BASE_MS, backoff_cap_ms=DEFAULT_BACKOFF_CAP_MS,
                 max_attempts=DEFAULT_MAX_ATTEMPTS, alert_windows=DEFAULT_ALERT_WINDOWS,
                 strategy="escalate", on_alert=None, clock=monotonic_ms, rng=None):
        if window_s <= 0:
            raise ValueError("window_s must be > 0")
        if max_attempts < 1 or alert_windows < 0:
            raise ValueError("max_attempts must be >= 1 and alert_windows >= 0")
        if strategy not in STRATEGIES:
            raise ValueError("strategy must be one of %s" % ", ".join(STRATEGIES))
        self.window_s = float(window_s)
        self.time_scale = 1.0
        self.set_time_scale(time_scale)
        self.backoff_base_ms = backoff_base_ms
        self.backoff_cap_ms = backoff_cap_ms
        self.max_attempts = int(max_attempts)
        self.alert_windows = int(alert_windows)
        self.strategy = strategy
        self.on_alert = on_alert
        self.clock = clock
        self.rng = rng if rng is not None else random.Random(0)
        # State and metrics (the names of fm_state).
        self.priority_until_ms = 0   # Priority is on while now < this; 0 = never escalated
        self.escalations = 0         # windows opened
        self.requests = 0            # attempts answered or failed, retries included
        self.status_503 = 0
        self.status_429 = 0
        self.errors = 0              # network, stream, other statuses
        self.on_priority = 0         # attempts sent on Priority
        self.consecutive_windows = 0
        self.alerts = 0

    # -- time ---------------------------------------------------------------
    def set_time_scale(self, time_scale):
        """Changes the time scale (e.g. after reading /admin/state); <= 0 means 1."""
        self.time_scale = float(time_scale) if time_scale and time_scale > 0 else 1.0

    def window_ms(self):
        """The Priority window in client-clock ms."""
        return _llround(self.window_s * 1000.0 / self.time_scale)

    def backoff_ms(self, attempt, jitter):
        """Exponential backoff with equal jitter: b = min(cap, base*2^(attempt-1)),
        the wait drawn from [b/2, b), divided by the time scale."""
        b = float(self.backoff_base_ms)
        i = 1
        while i < attempt and b < self.backoff_cap_ms:
            b *= 2
            i += 1
        b = min(b, float(self.backoff_cap_ms))
        return _llround(b / self.time_scale * (0.5 + 0.5 * _clamp_jitter(jitter)))

    @staticmethod
    def retry_after_wait_ms(retry_after_ms, jitter):
        """Retry-After is a floor: wait that long and up to 20 % more, so callers
        refused at the same moment spread out."""
        return retry_after_ms + int(math.floor(retry_after_ms * 0.2 * _clamp_jitter(jitter)))

    # -- decisions ----------------------------------------------------------
    def priority_on(self, now_ms=None):
        now_ms = self.clock() if now_ms is None else now_ms
        return now_ms < self.priority_until_ms

    def start(self, route="interactive", now_ms=None):
        """The tier for a new call on ``route``."""
        _check_route(route)
        if self.strategy == "always-priority":
            return PRIORITY
        if self.strategy == "escalate" and route != "batch" and self.priority_on(now_ms):
            return PRIORITY
        return STANDARD

    def decide(self, route, tier, attempt, status, retry_after_ms=-1, now_ms=None, jitter=None):
        """Decides what follows attempt number ``attempt`` (1-based) sent on
        ``tier`` that ended with ``status`` (HTTP, STATUS_NETWORK or
        STATUS_STREAM_ERROR), and updates the metrics. ``jitter`` is a draw in
        [0, 1) (from ``rng`` when None); otherwise a pure function."""
        _check_route(route)
        now_ms = self.clock() if now_ms is None else now_ms
        if jitter is None:
            jitter = self.rng.random()
        if retry_after_ms is None:
            retry_after_ms = -1
        d = Decision(tier, outcome_of(status))
        self.requests += 1
        if tier == PRIORITY:
            self.on_priority += 1
        if status == 503:
            self.status_503 += 1
        elif status == 429:
            self.status_429 += 1
        elif d.outcome == "error":
            self.errors += 1
        if d.outcome == "ok" or self.strategy == "naive":
            return d
        last = attempt >= self.max_attempts
        if self.strategy == "escalate" and route != "batch":
            if status == 503 and tier == STANDARD:
                # Standard is shedding: go to Priority now, no wait (the 503
                # was about Standard). A 503 that raced an open window opens nothing.
                if not self.priority_on(now_ms):
                    self._escalate(now_ms, d)
                if not last:
                    d.retry, d.tier, d.delay_ms = True, PRIORITY, 0
                return d
            # Any other retry of a non-batch call follows the window.
            if self.priority_on(now_ms):
                d.tier = PRIORITY
        if last or not _retryable(status):
            return d
        d.retry = True
        d.delay_ms = (self.retry_after_wait_ms(retry_after_ms, jitter) if retry_after_ms >= 0
                      else self.backoff_ms(attempt, jitter))
        return d

    def _escalate(self, now_ms, d):
        window = self.window_ms()
        if self.escalations > 0 and now_ms <= self.priority_until_ms + window:
            self.consecutive_windows += 1
        else:
            self.consecutive_windows = 1
        self.priority_until_ms = now_ms + window
        self.escalations += 1
        d.escalated = True
        if self.alert_windows > 0 and self.consecutive_windows == self.alert_windows:
            self.alerts += 1
            d.alert = True
            if self.on_alert is not None:
                self.on_alert(self.alert_info())

    # -- metrics ------------------------------------------------------------
    def rate_503(self):
        """status_503 / requests, 0 when nothing was sent."""
        return self.status_503 / self.requests if self.requests else 0.0

    def alert_info(self):
        return {"consecutive_windows": self.consecutive_windows, "escalations": self.escalations,
                "priority_until_ms": self.priority_until_ms, "rate_503": self.rate_503()}

    def metrics(self, now_ms=None):
        return {
            "tier": PRIORITY if self.priority_on(now_ms) else STANDARD,
            "priority_until_ms": self.priority_until_ms,
            "escalations": self.escalations,
            "requests": self.requests,
            "status_503": self.status_503,
            "status_429": self.status_429,
            "errors": self.errors,
            "on_priority": self.on_priority,
            "consecutive_windows": self.consecutive_windows,
            "alerts": self.alerts,
            "rate_503": self.rate_503(),
        }


def _check_route(route):
    if route not in ROUTES:
        raise ValueError("route must be one of %s (got %r)" % (", ".join(ROUTES), route))


# ---------------------------------------------------------------------------
# HTTP client

class Result:
    """What ``FleetClient.chat`` hands back.

    ok; outcome (ok, shed, limited, error); status of the last attempt (HTTP,
    STATUS_NETWORK or STATUS_STREAM_ERROR); tier the server says it served
    (``x-fleetmock-service-tier``, else the tier sent); attempts; escalated
    (this call opened a window); body (parsed JSON of the last answer, or the
    last stream chunk); text; usage; headers; error; history (one dict per
    attempt: tier, status, retry_after_ms (-1 when absent), decision).
    """

    def __init__(self):
        self.ok = False
        self.outcome = None
        self.status = None
        self.tier = None
        self.attempts = 0
        self.escalated = False
        self.body = None
        self.text = None
        self.usage = None
        self.headers = {}
        self.error = None
        self.history = []

    def __repr__(self):
        return "Result(ok=%r, status=%r, tier=%r, attempts=%r, error=%r)" % (
            self.ok, self.status, self.tier, self.attempts, self.error)


class _Answer:
    def __init__(self, status, headers=None, body=None, text=None, usage=None, error=None,
                 retry_after_ms=-1):
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.text = text
        self.usage = usage
        self.error = error
        self.retry_after_ms = retry_after_ms


class FleetClient:
    """Chat calls against fleetmock (or the real API) with the pattern applied.

    ``base_url`` is the server root (``http://127.0.0.1:8080``) or an API base
    ending in ``/v1`` (``.../inference/v1``). ``time_scale="auto"`` reads the
    server's ``time_scale`` from ``GET /admin/state`` on first use so the
    window shrinks with a sped-up server (1 if admin is not reachable).
    ``sleep`` takes seconds. A stream that fails mid-way is retried like the
    policy says; ``on_token`` then sees the new attempt's tokens from the
    start, and ``Result.text`` holds the last attempt's text.
    """

    def __init__(self, base_url, api_key, model, route="interactive", policy=None,
                 time_scale="auto", admin_token=None, timeout=60.0, sleep=time.sleep):
        _check_route(route)
        base = base_url.rstrip("/")
        if base.endswith("/v1"):
            self.api_base = base
            root = base[:-3]
            self.root = root[:-len("/inference")] if root.endswith("/inference") else root
        else:
            self.root = base
            self.api_base = base + "/inference/v1"
        self.api_key = api_key
        self.model = model
        self.route = route
        self.policy = policy if policy is not None else Policy()
        self.admin_token = admin_token
        self.timeout = timeout
        self.sleep = sleep
        self._time_scale_pending = time_scale == "auto"
        if time_scale != "auto" and time_scale is not None:
            self.policy.set_time_scale(time_scale)

    # -- admin helpers ------------------------------------------------------
    def admin(self, method, path, body=None):
        """Calls the control plane; returns (status, parsed JSON or None)."""
        headers = {"Content-Type": "application/json"}
        if self.admin_token:
            headers["Authorization"] = "Bearer " + self.admin_token
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.root + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, _json_or_none(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, _json_or_none(e.read())

    def sync_time_scale(self):
        """Reads time_scale from GET /admin/state into the policy; returns it or None."""
        self._time_scale_pending = False
        try:
            status, state = self.admin("GET", "/admin/state")
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            return None
        if status == 200 and isinstance(state, dict):
            ts = state.get("time_scale")
            if isinstance(ts, (int, float)) and ts > 0:
                self.policy.set_time_scale(ts)
                return float(ts)
        return None

    # -- inference ----------------------------------------------------------
    def chat(self, messages, stream=False, route=None, on_token=None, **fields):
        """Sends a chat completion under the pattern; returns a Result (never
        raises for HTTP or network errors). ``fields`` go into the body."""
        route = route or self.route
        _check_route(route)
        if self._time_scale_pending:
            self.sync_time_scale()
        policy = self.policy
        result = Result()
        tier = policy.start(route)
        for attempt in range(1, policy.max_attempts + 1):
            body = dict(fields)
            body.setdefault("model", self.model)
            body["messages"] = messages
            if stream:
                body["stream"] = True
            if tier == PRIORITY:
                body["service_tier"] = "priority"
            else:
                body.pop("service_tier", None)
            answer = self._send(body, stream, on_token)
            d = policy.decide(route, tier, attempt, answer.status, answer.retry_after_ms)
            result.attempts = attempt
            result.history.append({"tier": tier, "status": answer.status,
                                   "retry_after_ms": answer.retry_after_ms, "decision": d.as_dict()})
            result.status = answer.status
            result.headers = answer.headers
            result.body = answer.body
            result.error = answer.error
            result.text = answer.text
            result.usage = answer.usage
            result.tier = answer.headers.get("x-fleetmock-service-tier") or tier
            result.escalated = result.escalated or d.escalated
            if not d.retry:
                result.outcome = d.outcome
                result.ok = d.outcome == "ok"
                return result
            if d.delay_ms > 0:
                self.sleep(d.delay_ms / 1000.0)
            tier = d.tier
        return result  # not reached: the policy stops at max_attempts

    def _send(self, body, stream, on_token):
        url = self.api_base + "/chat/completions"
        headers = {"Content-Type": "application/json",
                   "Authorization": "Bearer " + self.api_key}
        req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     method="POST", headers=headers)
        try:
            resp = urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            hdrs = _lower_headers(e.headers)
            try:
                raw = e.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            parsed = _json_or_none(raw)
            return _Answer(e.code, hdrs, parsed, error=_error_message(parsed, raw),
                           retry_after_ms=parse_retry_after(hdrs.get("retry-after-ms"),
                                                            hdrs.get("retry-after")))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            return _Answer(STATUS_NETWORK, error="network error: %s" % (e,))
        hdrs = _lower_headers(resp.headers)
        try:
            with resp:
                if stream:
                    return _read_stream(resp, hdrs, on_token)
                parsed = _json_or_none(resp.read())
        except (OSError, http.client.HTTPException) as e:
            if stream:
                return _Answer(STATUS_STREAM_ERROR, hdrs, error="stream cut: %s" % (e,))
            return _Answer(STATUS_NETWORK, hdrs, error="network error: %s" % (e,))
        text, usage = _chat_text(parsed)
        return _Answer(resp.status, hdrs, parsed, text=text, usage=usage)


def _read_stream(resp, hdrs, on_token):
    """Reads an OpenAI-style SSE stream; a mid-stream error ends it with answer.error set."""
    parts, usage, last, error = [], None, None, None
    done = False
    for raw_line in resp:
        line = raw_line.decode("utf-8", "replace").rstrip("\r\n")
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        chunk = _json_or_none(data.encode())
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk:
            error = _error_message(chunk, data.encode())
            break
        last = chunk
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # text and on_token follow choice 0
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                parts.append(piece)
                if on_token is not None:
                    on_token(piece)
    if error is None and not done:
        error = "stream ended without [DONE]"
    status = resp.status if error is None else STATUS_STREAM_ERROR
    return _Answer(status, hdrs, last, text="".join(parts), usage=usage, error=error)


def _chat_text(parsed):
    if not isinstance(parsed, dict):
        return None, None
    choices = parsed.get("choices") or []
    text = None
    if choices and isinstance(choices[0], dict):
        text = (choices[0].get("message") or {}).get("content")
    return text, parsed.get("usage")


def _lower_headers(headers):
    return {k.lower(): v for k, v in headers.items()} if headers is not None else {}


def _json_or_none(raw):
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return None


def _error_message(parsed, raw):
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and err.get("message"):
            return err["message"]
        if isinstance(err, str):
            return err
    return raw.decode("utf-8", "replace")[:300] if isinstance(raw, bytes) else str(raw)
