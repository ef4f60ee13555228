"""A hostile machine for tests.test_login_flood, run as its own process so
that its work is not done by luna2d's reactor.

Usage: python login_flood_client.py SOURCE HOST PORT COUNT NAME...

Opens COUNT connections from SOURCE to HOST:PORT in batches of 40,
printing "batch N" after each and waiting for a line on stdin (the test
answers once luna2d has accepted them). Then prints "ready", waits for a
line, sends on every connection a POST /token with a wrong password for
the NAMEs in turn, prints "sent", reads every answer and prints one JSON
line: the statuses, and whether each refusal carried Retry-After."""

from __future__ import annotations

import json
import socket
import sys

BATCH = 40


def request(name: str, number: int) -> bytes:
    body = json.dumps({"username": name, "password": f"guess-{number}"}).encode()
    return (
        b"POST /token HTTP/1.1\r\nHost: luna\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def answer(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def main(source: str, host: str, port: str, count: str, *names: str) -> None:
    sockets: list[socket.socket] = []
    total = int(count)
    while len(sockets) < total:
        for _ in range(min(BATCH, total - len(sockets))):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((source, 0))
            sock.connect((host, int(port)))
            sockets.append(sock)
        print(f"batch {len(sockets)}", flush=True)
        sys.stdin.readline()
    print("ready", flush=True)
    sys.stdin.readline()
    for number, sock in enumerate(sockets):
        sock.sendall(request(names[number % len(names)], number))
    print("sent", flush=True)
    statuses, retry_after = [], []
    for sock in sockets:
        raw = answer(sock)
        sock.close()
        head = raw.split(b"\r\n\r\n", 1)[0].lower()
        statuses.append(int(head.split(b" ", 2)[1]) if head else 0)
        retry_after.append(b"\r\nretry-after: " in head)
    print(json.dumps({"statuses": statuses, "retry_after": retry_after}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
