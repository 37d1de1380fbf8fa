#!/usr/bin/env python3
"""Times a call that starts ocinet-docker, as systemd's socket activation does: the socket bound
first, the plugin started with it as fd 3 (LISTEN_PID, LISTEN_FDS), Plugin.Activate sent at
once and answered once the plugin runs. Usage: docker-activation.py PLUGIN DIR [N]"""
import os, socket, subprocess, sys, time

binary, work = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 20
path = os.path.join(work, "activation.sock")
times = []
for _ in range(n):
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    t0 = time.perf_counter()
    plugin = subprocess.Popen(
        ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", binary,
         "--root", os.path.join(work, "state"), "--config-dir", os.path.join(work, "etc"),
         "--exit-idle", "60"],
        pass_fds=(listener.fileno(),), preexec_fn=lambda: os.dup2(listener.fileno(), 3))
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    conn.sendall(b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nContent-Length: 2\r\n"
                 b"Connection: close\r\n\r\n{}")
    answer = b""
    while chunk := conn.recv(4096):
        answer += chunk
    times.append((time.perf_counter() - t0) * 1000)
    if b"NetworkDriver" not in answer:
        sys.exit(f"unexpected answer: {answer!r}")
    plugin.kill()
    plugin.wait()
    listener.close()
times.sort()
print("first call, starting the plugin: p50 %.1f ms, max %.1f ms (N=%d)"
      % (times[len(times) // 2], times[-1], n))
