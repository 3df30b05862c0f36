"""A clerk's workstation on the lab's office network, for tests and benchmarks of the app.

`Office` runs `python -m roomctl.office` inside client1's network namespace (nsenter): the
process is this machine's, but every packet it sends leaves from client1's address and crosses
fw1, exactly as a clerk's browser would. It speaks JSON lines on stdin/stdout: one request in,
one answer out, with a cookie jar per process, TLS verified against the room's CA.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import ssl
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roomctl import shell


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Agent:
    """The side that runs inside the office network."""

    def __init__(self, ca_file: str):
        self.context = ssl.create_default_context(cafile=ca_file)
        self.jar = http.cookiejar.CookieJar()
        cookies = urllib.request.HTTPCookieProcessor(self.jar)
        https = urllib.request.HTTPSHandler(context=self.context)
        self.follow = urllib.request.build_opener(cookies, https)
        self.stay = urllib.request.build_opener(cookies, https, _NoRedirect())
        self.csrf = ""

    def request(self, spec: dict[str, Any]) -> dict[str, Any]:
        headers = {"Accept": "application/json", **spec.get("headers", {})}
        data = None
        if "json" in spec:
            data = json.dumps(spec["json"], ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        elif "form" in spec:
            data = urllib.parse.urlencode(spec["form"]).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif "raw" in spec:
            data = spec["raw"].encode("latin-1")
            headers.setdefault("Content-Type", "application/json")
        if spec.get("csrf", True) and self.csrf and spec.get("method", "GET") != "GET":
            headers.setdefault("X-CSRFToken", self.csrf)
        req = urllib.request.Request(  # noqa: S310 - always the lab app's https URL
            spec["url"], data=data, method=spec.get("method", "GET"), headers=headers
        )
        opener = self.follow if spec.get("follow", True) else self.stay
        started = time.perf_counter()
        try:
            with opener.open(req, timeout=spec.get("timeout", 15)) as answer:
                status, body, head = answer.status, answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            status, body, head = exc.code, exc.read(), dict(exc.headers)
        except (urllib.error.URLError, OSError) as exc:
            return {
                "status": 0,
                "error": str(getattr(exc, "reason", exc)),
                "seconds": time.perf_counter() - started,
            }
        seconds = time.perf_counter() - started
        text = body.decode("utf-8", "replace")
        parsed = None
        if head.get("Content-Type", "").startswith("application/json"):
            with contextlib.suppress(ValueError):
                parsed = json.loads(text)
                if isinstance(parsed, dict) and parsed.get("csrf_token"):
                    self.csrf = parsed["csrf_token"]
        return {"status": status, "headers": head, "text": text, "json": parsed, "seconds": seconds}

    def bench(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Send each request in turn; the latency of each, measured here."""
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        for item in spec["requests"]:
            answer = self.request(item)
            latencies.append(answer["seconds"])
            statuses[str(answer["status"])] = statuses.get(str(answer["status"]), 0) + 1
        return {"latencies": latencies, "statuses": statuses}


def _serve(ca_file: str) -> None:
    agent = _Agent(ca_file)
    for line in sys.stdin:
        spec = json.loads(line)
        answer = agent.bench(spec) if "requests" in spec else agent.request(spec)
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        sys.stdout.flush()


@dataclass
class Answer:
    status: int
    text: str
    json: Any
    headers: dict[str, str]
    seconds: float
    error: str | None = None


class Office:
    """One browser-like session from client1 (its own cookies)."""

    def __init__(self, base_url: str, ca_file: Path, container: str = "lab-client1"):
        pid = shell.run(
            ["podman", "inspect", "--format", "{{.State.Pid}}", container], check=True
        ).stdout.strip()
        self.base_url = base_url.rstrip("/")
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net=/proc/{pid}/ns/net",
                sys.executable,
                "-m",
                "roomctl.office",
                str(ca_file),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def _send(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError("the office agent has no pipes")
        self.proc.stdin.write(json.dumps(spec, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the office agent stopped; see its stderr above")
        result: dict[str, Any] = json.loads(line)
        return result

    def request(self, method: str, path: str, **spec: Any) -> Answer:
        raw = self._send({"method": method, "url": self.base_url + path, **spec})
        return Answer(
            raw["status"],
            raw.get("text", ""),
            raw.get("json"),
            raw.get("headers", {}),
            raw["seconds"],
            raw.get("error"),
        )

    def get(self, path: str, **spec: Any) -> Answer:
        return self.request("GET", path, **spec)

    def post(self, path: str, **spec: Any) -> Answer:
        return self.request("POST", path, **spec)

    def login(self, name: str, password: str) -> Answer:
        answer = self.post("/api/login", json={"name": name, "password": password})
        if answer.status != 200:
            raise RuntimeError(f"login as {name} failed: {answer.status} {answer.text[:200]}")
        return answer

    def bench(self, requests: list[dict[str, Any]]) -> dict[str, Any]:
        specs = [{**r, "url": self.base_url + r["path"]} for r in requests]
        return self._send({"requests": specs})

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@contextlib.contextmanager
def office(base_url: str, ca_file: Path) -> Iterator[Office]:
    session = Office(base_url, ca_file)
    try:
        yield session
    finally:
        session.close()


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds."""
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": statistics.median(ordered) * 1000, "p99": p99 * 1000, "max": ordered[-1] * 1000}


if __name__ == "__main__":
    _serve(sys.argv[1])
