#!/usr/bin/env python3
"""Times ocinet-docker's answers as dockerd asks them, without dockerd: one network, then per
container CreateEndpoint + Join (+ ProgramExternalConnectivity with one port), then Revoke,
Leave and DeleteEndpoint. HTTP/1.1 on the plugin's unix socket, one connection per call as
Docker's plugin client makes them. Usage: docker-plugin.py SOCKET N [PORTS]"""
import http.client, json, os, socket, statistics, sys, time

sock_path, n = sys.argv[1], int(sys.argv[2])
ports = len(sys.argv) > 3 and sys.argv[3] == "1"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(method, body):
    conn = UnixConnection(sock_path)
    conn.request("POST", "/NetworkDriver." + method, json.dumps(body),
                 {"Content-Type": "application/json"})
    answer = json.loads(conn.getresponse().read())
    conn.close()
    if answer.get("Err"):
        sys.exit(f"{method}: {answer['Err']}")
    return answer


def hexid(i, tag):
    return (tag + "%060x" % i)[:64]


net = hexid(1, "beef")
call("CreateNetwork", {"NetworkID": net, "Options": {},
                       "IPv4Data": [{"Pool": "10.60.0.0/16", "Gateway": "10.60.0.1/16"}]})
setup, publish, teardown = [], [], []
for i in range(n):
    ep = hexid(i, "e0")
    addr = "10.60.%d.%d/16" % ((i + 2) // 256, (i + 2) % 256)
    t0 = time.perf_counter()
    call("CreateEndpoint", {"NetworkID": net, "EndpointID": ep, "Interface": {"Address": addr}})
    call("Join", {"NetworkID": net, "EndpointID": ep, "SandboxKey": "/nonexistent"})
    t1 = time.perf_counter()
    setup.append((t1 - t0) * 1000)
    if ports:
        pm = [{"Proto": 6, "Port": 80, "HostIP": "", "HostPort": 20000 + i, "HostPortEnd": 20000 + i}]
        call("ProgramExternalConnectivity", {"NetworkID": net, "EndpointID": ep,
                                             "Options": {"com.docker.network.portmap": pm}})
        publish.append((time.perf_counter() - t1) * 1000)
for i in range(n):
    ep = hexid(i, "e0")
    t0 = time.perf_counter()
    if ports:
        call("RevokeExternalConnectivity", {"NetworkID": net, "EndpointID": ep})
    call("Leave", {"NetworkID": net, "EndpointID": ep})
    call("DeleteEndpoint", {"NetworkID": net, "EndpointID": ep})
    teardown.append((time.perf_counter() - t0) * 1000)
call("DeleteNetwork", {"NetworkID": net})


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


for name, xs in [("CreateEndpoint+Join", setup), ("ProgramExternalConnectivity", publish),
                 ("Revoke+Leave+DeleteEndpoint", teardown)]:
    if xs:
        print(f"{name}: p50 {q(xs, .5):.2f} ms, p90 {q(xs, .9):.2f} ms, max {max(xs):.2f} ms (N={len(xs)})")
