"""HTTP load for the web scenario: POST /api/orders/ closed-loop (as fast as it goes) or open-loop.

    python -m bench.loadgen URL --skus A,B --seconds S (--concurrency C | --rate R) [--keyed]

Closed loop: C threads each send the next request as soon as the last one
answered; the figure is requests per second. Open loop: requests are due at
a fixed rate whether or not earlier ones answered, and each latency counts
from when it was due (no coordinated omission). Requests carry
X-Forwarded-Proto: https, as behind the TLS proxy production settings
expect; with --keyed, each also carries an Idempotency-Key of its own (a new
order each, so the figure is the key's cost, not a replay's). Prints one JSON
line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from .stats import percentile


def body(skus: list[str], rng: random.Random) -> bytes:
    return json.dumps(
        {
            "email": "ada@example.com",
            "items": [{"sku": rng.choice(skus), "quantity": 1}],
            "shipping_address": {
                "name": "Ada Lovelace",
                "line1": "12 St James's Square",
                "city": "London",
                "postal_code": "SW1Y 4JH",
                "country": "GB",
            },
            "card_number": "4242 4242 4242 4242",
        }
    ).encode()


class Client:
    def __init__(self, url: str, skus: list[str], *, keyed: bool = False):
        parts = urlsplit(url)
        if parts.hostname is None:
            raise ValueError(f"no host in {url!r}")
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.skus = skus
        self.keyed = keyed
        self.lock = threading.Lock()
        self.statuses: dict[str, int] = {}
        self.first_error = ""

    def post(self, rng: random.Random) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Content-Type": "application/json", "X-Forwarded-Proto": "https"}
        if self.keyed:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        try:
            conn.request("POST", self.path, body=body(self.skus, rng), headers=headers)
            response = conn.getresponse()
            response.read()
            status = str(response.status)
        except OSError as exc:
            status = type(exc).__name__
            with self.lock:
                self.first_error = self.first_error or f"{status}: {exc}"
        finally:
            conn.close()
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        return status == "202"


def closed_loop(client: Client, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    stop_at = time.perf_counter() + seconds

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            ok = client.post(rng)
            with client.lock:
                latencies.append(time.perf_counter() - t)
                errors[0] += not ok

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return summary(latencies, errors[0], elapsed, client)


def open_loop(client: Client, rate: float, seconds: float) -> dict:
    count = max(1, int(rate * seconds))
    latencies: list[float] = []
    errors = [0]
    start = time.perf_counter()

    def one(i: int, due: float) -> None:
        ok = client.post(random.Random(i))
        with client.lock:
            latencies.append(time.perf_counter() - due)
            errors[0] += not ok

    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i, due)
    elapsed = time.perf_counter() - start
    result = summary(latencies, errors[0], elapsed, client)
    result["target_rate"] = rate
    return result


def summary(latencies: list[float], errors: int, elapsed: float, client: Client) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms),
        "errors": errors,
        "statuses": client.statuses,
        "first_error": client.first_error,
        "seconds": elapsed,
        "rps": len(ms) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--skus", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--concurrency", type=int)
    group.add_argument("--rate", type=float)
    parser.add_argument("--keyed", action="store_true", help="an Idempotency-Key per request")
    args = parser.parse_args(argv)
    client = Client(args.url, args.skus.split(","), keyed=args.keyed)
    if args.concurrency:
        result = closed_loop(client, args.concurrency, args.seconds)
    else:
        result = open_loop(client, args.rate, args.seconds)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
