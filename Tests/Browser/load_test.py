"""Load test of `unilip serve`: fires many concurrent job posts at a server with a short queue
and checks that it stays up, refuses the excess with 429 + Retry-After and a clear message,
keeps answering other requests meanwhile, and finishes every job it accepted.

    python3 Tests/Browser/load_test.py [--posts 50] [--max-queue 4]
"""
import argparse
import concurrent.futures
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from serve_process import Server  # noqa: E402


def request(url, body=None, timeout=60):
    """(status, headers, decoded JSON) for a GET, or a POST of `body` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--max-queue", type=int, default=4)
    args = parser.parse_args()
    started = time.time()
    failures = []

    def expect(condition, message):
        print(("  ok: " if condition else "  FAIL: ") + message, flush=True)
        if not condition:
            failures.append(message)

    with Server("--max-queue", str(args.max_queue)) as server:
        tasks = [
            {"task": "generate", "prompt": "a green triangle", "steps": 4},
            {"task": "ask", "sample": "test-1", "question": "How many shapes are there?"},
            {"task": "reconstruct", "sample": "test-2"},
            {"task": "edit", "sample": "test-3", "instruction": "make the circle red", "steps": 4},
        ]
        barrier = threading.Barrier(args.posts)

        def post(i):
            barrier.wait()
            t = time.time()
            status, headers, body = request(server.url + "/api/jobs", tasks[i % len(tasks)])
            return status, headers, body, time.time() - t

        # Health checks while the burst and the accepted jobs run: the event loop must stay free.
        health_latencies = []
        stop = threading.Event()

        def probe():
            while not stop.is_set():
                t = time.time()
                status, _, _ = request(server.url + "/api/health", timeout=10)
                health_latencies.append((status, time.time() - t))
                time.sleep(0.05)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.posts) as pool:
            results = list(pool.map(post, range(args.posts)))
        # A job that finished while the posts were still arriving freed its slot for another
        # (a tiny-model job can take tens of ms on a loaded machine), so the bound on the accepted
        # jobs counts those: at most one running + max-queue waiting at any moment.
        finished_in_burst = request(server.url + "/api/health")[2].get("completed", 0)
        counts = {}
        for status, _, _, _ in results:
            counts[status] = counts.get(status, 0) + 1
        accepted = [body["id"] for status, _, body, _ in results if status == 202]
        refused = [(headers, body) for status, headers, body, _ in results if status == 429]
        slowest_post = max(r[3] for r in results)
        print("posted %d jobs at once (max-queue %d): %s; slowest answer %.3f s"
              % (args.posts, args.max_queue, ", ".join("%d × %d" % (n, s) for s, n in sorted(counts.items())), slowest_post),
              flush=True)
        expect(set(counts) <= {202, 429}, "only 202 and 429 answers")
        expect(1 <= len(accepted) <= args.max_queue + 1 + finished_in_burst,
               "accepted %d (one running + up to %d waiting, plus %d finished during the burst)"
               % (len(accepted), args.max_queue, finished_in_burst))
        expect(len(refused) == args.posts - len(accepted), "refused the other %d" % len(refused))
        expect(all("Retry-After" in h for h, _ in refused), "every 429 carries Retry-After")
        expect(all("queue is full" in b.get("error", "") for _, b in refused),
               "every 429 says why: %r" % (refused[0][1].get("error") if refused else None))

        deadline = time.time() + 600
        states = {}
        while accepted and time.time() < deadline:
            states = {i: request(server.url + "/api/jobs/" + i)[2].get("state") for i in accepted}
            if all(s in ("done", "failed") for s in states.values()):
                break
            time.sleep(0.2)
        stop.set()
        prober.join()
        expect(all(s == "done" for s in states.values()), "all %d accepted jobs done: %s" % (len(accepted), sorted(states.values())))

        status, _, health = request(server.url + "/api/health")
        expect(status == 200 and health.get("status") == "ok", "health OK afterwards")
        expect(health.get("refused") == len(refused), "server counted %s refusals" % health.get("refused"))
        expect(health.get("completed") == len(accepted), "server counted %s completed jobs" % health.get("completed"))
        ok = [lat for s, lat in health_latencies if s == 200]
        expect(len(ok) == len(health_latencies) and ok, "%d health checks during the load all 200" % len(health_latencies))
        if ok:
            ok.sort()
            print("  health latency during load: median %.1f ms, max %.1f ms" % (1000 * ok[len(ok) // 2], 1000 * ok[-1]), flush=True)

        # A second burst after the first drained is accepted again.
        status, _, body = request(server.url + "/api/jobs", tasks[1])
        expect(status == 202, "accepting again after the burst")
        expect(server.alive(), "server process still running")

    print("load test %s in %.1f s" % ("FAILED" if failures else "passed", time.time() - started), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
