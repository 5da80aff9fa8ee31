#!/usr/bin/python3
"""Latency of `g60ledger serve`, as a client sees it (docs/performance.md, "HTTP").

    http_latency.py URL [--token T] [--cafile PEM] [--requests N]

For each of a few endpoints, N requests (default 1,000) one after another on kept-alive
connections (opened again when the server closes one), then 200 requests each on a new
connection; prints p50 and p99 per endpoint. URL is http://HOST:PORT or https://HOST:PORT
(--cafile: the CA, or the self-signed certificate, to check the server with).
"""
import argparse, http.client, ssl, sys, time, urllib.parse

PATHS = ["/healthz", "/api/status", "/api/checkpoints/0", "/nowhere"]


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("url")
    ap.add_argument("--token")
    ap.add_argument("--cafile")
    ap.add_argument("--requests", type=int, default=1000)
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    if u.scheme not in ("http", "https") or not u.port:
        ap.error("URL must be http://HOST:PORT or https://HOST:PORT")

    def connect():
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=a.cafile)
            return http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
        return http.client.HTTPConnection(u.hostname, u.port)  # sets TCP_NODELAY

    headers = {"Authorization": "Bearer " + a.token} if a.token else {}

    def report(what, times):
        times.sort()
        p50, p99 = times[len(times) // 2], times[min(len(times) - 1, len(times) * 99 // 100)]
        print(f"{u.scheme:5s} {what:34s} p50 {1000 * p50:8.3f} ms  p99 {1000 * p99:8.3f} ms")

    for path in PATHS:
        c, times, status = connect(), [], None
        for _ in range(a.requests):
            start = time.perf_counter()
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            times.append(time.perf_counter() - start)
            status = r.status
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                c = connect()
        c.close()
        report(f"GET {path} ({status})", times)
    times = []
    for _ in range(200):
        start = time.perf_counter()
        c = connect()
        c.request("GET", "/healthz", headers=headers)
        c.getresponse().read()
        c.close()
        times.append(time.perf_counter() - start)
    report("new connection + GET /healthz", times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
