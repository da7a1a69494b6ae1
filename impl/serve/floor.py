"""What `nanvix bench --http` measures the front door with and against.

    floor      the same HTTP stack as the daemon (uvicorn, uvloop, httptools, the door's protocol)
               with an ASGI app that answers the body back in-process: no VM, no thread, no host.
               The daemon's warm echo over it is what a user VM costs behind the door.
    RawClient  a kept-alive loopback connection that sends prepared request bytes and reads the
               answer (Content-Length framing), so the client costs little of what is measured.
    load       sustained requests/s with C connections for S seconds, in a process of its own (an
               asyncio client on uvloop), so the client and the server do not share a GIL.

    python -m nanvix.impl.serve.floor serve INFO_FILE            (the floor; writes its URL)
    python -m nanvix.impl.serve.floor load URL REQUEST_HEX C S   (prints {"requests", "seconds", "errors"})
"""
import asyncio
import json
import os
import socket
import subprocess
import sys
import time


async def echo_app(scope, receive, send):
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    body = b"".join(chunks)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def serve_floor(info_file):
    import uvicorn
    from nanvix.impl.serve.daemon import bind
    from nanvix.impl.serve.protocol import uvicorn_options
    sock, url = bind("127.0.0.1:0")
    with open(info_file + ".tmp", "w") as f:
        json.dump({"url": url, "pid": os.getpid()}, f)
    os.replace(info_file + ".tmp", info_file)
    uvicorn.Server(uvicorn.Config(echo_app, lifespan="off", **uvicorn_options())).run(sockets=[sock])


def spawn_daemon(home, cores=2, timeout=60, preexec_fn=None):
    """`nanvix serve` on a free loopback port and its own home: (process, URL, admin token).
    preexec_fn: run in the child before it starts (its resource limits, say)."""
    info = os.path.join(home, "serve.json")
    if os.path.exists(info):
        os.unlink(info)   # a killed daemon's: wait for the new one's
    proc = subprocess.Popen([sys.executable, "-m", "nanvix.cli", "serve", "--listen", "127.0.0.1:0", "--home", home,
                             "--cores", str(cores)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=preexec_fn)
    end = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError("nanvix serve exited: %s" % proc.stdout.read().decode(errors="replace"))
        try:
            with open(info) as f:
                got = json.load(f)
            if got["pid"] == proc.pid:
                break
        except (OSError, ValueError):
            pass
        if time.monotonic() > end:
            proc.kill()
            raise RuntimeError("nanvix serve did not start within %d s" % timeout)
        time.sleep(0.02)
    with open(os.path.join(home, "admin.token")) as f:
        return proc, got["url"], f.read().strip()


def address(url):
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


def request_bytes(path, body, token=None):
    head = "POST %s HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n" % (path, len(body))
    if token:
        head += "Authorization: Bearer %s\r\n" % token
    return (head + "\r\n").encode() + body


def _framed(buf):
    """(status, headers text, body) if buf holds a whole answer, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1")
    n = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            n = int(value)
    if len(buf) < end + 4 + n:
        return None
    return int(head[9:12]), head, buf[end + 4:end + 4 + n]


class RawClient:
    def __init__(self, url):
        self.sock = socket.create_connection(address(url))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, raw):
        """(microseconds, status, headers text, body) of one request."""
        t0 = time.perf_counter_ns()
        self.sock.sendall(raw)
        buf = b""
        while True:
            got = _framed(buf)
            if got is not None:
                return ((time.perf_counter_ns() - t0) / 1000,) + got
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buf += chunk

    def close(self):
        self.sock.close()


async def _load(url, raw, concurrency, seconds):
    import uvloop  # noqa: F401  (the event loop is set by main)
    host, port = address(url)
    done = [0, {}]   # answers 200, other answers by status
    end = time.monotonic() + seconds

    async def one():
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while time.monotonic() < end:
            writer.write(raw)
            buf = b""
            while (got := _framed(buf)) is None:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionError("closed")
                buf += chunk
            if got[0] == 200:
                done[0] += 1
            else:
                done[1][got[0]] = done[1].get(got[0], 0) + 1
                done.append(got[2][:300].decode("utf-8", "replace"))
        writer.close()
    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    return {"requests": done[0], "errors": done[1], "seconds": time.monotonic() - t0,
            "first_error": done[2] if len(done) > 2 else None}


def load(url, raw, concurrency, seconds):
    """Sustained requests/s of `concurrency` connections for `seconds`, from a process of its own."""
    p = subprocess.run([sys.executable, "-m", "nanvix.impl.serve.floor", "load", url, raw.hex(),
                        str(concurrency), str(seconds)], capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0:
        raise RuntimeError("the load generator failed: %s" % p.stderr[-500:])
    r = json.loads(p.stdout)
    if r["errors"]:
        raise RuntimeError("with %d clients, some requests failed (status: count): %s; the first: %s"
                           % (concurrency, r["errors"], r["first_error"]))
    return round(r["requests"] / r["seconds"], 1)


def main(argv):
    if argv[0] == "serve":
        serve_floor(argv[1])
    elif argv[0] == "load":
        import uvloop
        url, raw, c, s = argv[1], bytes.fromhex(argv[2]), int(argv[3]), float(argv[4])
        print(json.dumps(uvloop.run(_load(url, raw, c, s))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
