"""Starts `unilip serve --port 0` for the browser and load tests and stops it afterwards."""
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def find_binary():
    """$UNILIP_BIN, else the newest of the release and debug builds."""
    explicit = os.environ.get("UNILIP_BIN")
    if explicit:
        return explicit
    candidates = [os.path.join(ROOT, ".build", c, "unilip") for c in ("release", "debug")]
    found = [c for c in candidates if os.path.exists(c)]
    if not found:
        sys.exit("no unilip binary: run `swift build` (or set UNILIP_BIN)")
    return max(found, key=os.path.getmtime)


class Server:
    """`with Server([...extra args]) as s:` gives s.url once the server prints it."""

    def __init__(self, *args, startup_timeout=300):
        self.args = list(args)
        self.startup_timeout = startup_timeout
        self.proc = None
        self.url = None
        self.stderr_lines = []

    def __enter__(self):
        binary = find_binary()
        cmd = [binary, "serve", "--port", "0", *self.args]
        print("starting:", " ".join(cmd), flush=True)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout], daemon=True).start()
        threading.Thread(target=lambda: [self.stderr_lines.append(l) for l in self.proc.stderr], daemon=True).start()
        deadline = time.time() + self.startup_timeout
        while self.url is None:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode, "".join(self.stderr_lines)))
            try:
                line = lines.get(timeout=max(0.1, min(1.0, deadline - time.time())))
            except queue.Empty:
                if time.time() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError("server printed no URL within %d s" % self.startup_timeout)
                continue
            if not line.startswith("listening on "):
                raise RuntimeError("first stdout line should name the URL, got: %r" % line)
            self.url = line.split("listening on ", 1)[1].strip()
        print("server up at", self.url, flush=True)
        return self

    def get_json(self, path, timeout=30):
        import json
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return False
