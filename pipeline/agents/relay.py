"""The model-API relay of an agent container: the one way out of a container without a network.

An agent container runs with `--network none`: loopback only. The relay listens on the
container's own loopback (`127.0.0.1:RELAY_PORT` inside its network namespace: the socket is
made there by a thread that joins the namespace, then serves from the host's), and forwards each
HTTP request to one upstream, the vendor's API or the subject's `base_url`, adding the API key
on the way out. The key never enters the container: the CLI inside holds a placeholder, and the
relay drops every credential header it sends and adds the real one. Nothing but that one
upstream can be reached from inside; names resolve to nothing, at once (`refuse_names`).

HTTP/1.1 as the CLIs speak it to a plain `http://` base URL: each request is forwarded with its
head rewritten (Host, credentials, `Connection: close`) and its body and the (streamed) response
piped verbatim, so server-sent events pass as they come; the response says `Connection: close`,
and the CLI opens a new connection for its next request. An `https://` upstream is reached over
TLS with the system's certificates. Joining another process's network namespace needs root
(CAP_SYS_ADMIN) and a Docker daemon on this machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

RELAY_PORT = 8787  # inside the container's own network namespace, where nothing else listens
CLONE_NEWNET = 0x40000000
CREDENTIALS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
HOP_BY_HOP = frozenset({"host", "connection", "proxy-connection", "keep-alive", "upgrade"})
HEAD_LIMIT = 256 * 1024
CONNECT_TIMEOUT_S = 30.0


class RelayError(RuntimeError):
    """The relay could not be set up (no permission to join the namespace, a bad upstream)."""


def split_upstream(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of an upstream base URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RelayError(f"upstream {url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


def inside_url(upstream: str) -> str:
    """The base URL a CLI in the container uses for `upstream`: the relay, same path."""
    return f"http://127.0.0.1:{RELAY_PORT}{split_upstream(upstream)[3]}"


class Relay:
    """Forwards the requests of one container to one upstream, adding `headers` (the key)."""

    def __init__(self, upstream: str, headers: Mapping[str, str]) -> None:
        self.scheme, self.host, self.port, _ = split_upstream(upstream)
        self.upstream = upstream
        self.headers = dict(headers)
        self.requests: list[str] = []  # "POST /v1/messages -> 200", for the transcript
        self._listener: socket.socket | None = None
        self._resolver: socket.socket | None = None
        self._lock = threading.Lock()

    def open_in(self, pid: int) -> None:
        """Listen on 127.0.0.1:RELAY_PORT in the network namespace of process `pid`."""
        made: dict[str, object] = {}

        def enter_and_listen() -> None:  # setns changes this thread only; the socket stays there
            try:
                fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            except OSError as err:
                made["error"] = f"cannot open the container's network namespace: {err}"
                return
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    reason = os.strerror(ctypes.get_errno())
                    made["error"] = f"cannot join the container's network namespace: {reason}"
                    return
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(("127.0.0.1", RELAY_PORT))
                listener.listen(16)
                made["listener"] = listener
                resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                resolver.bind(("127.0.0.1", 53))
                made["resolver"] = resolver
            except OSError as err:
                made["error"] = f"cannot listen in the container: {err}"
            finally:
                os.close(fd)

        joiner = threading.Thread(target=enter_and_listen, name="relay-setns")
        joiner.start()
        joiner.join()
        if "listener" not in made:
            raise RelayError(str(made.get("error", "unknown failure")))
        self._listener = made["listener"]  # type: ignore[assignment]
        self._resolver = made["resolver"]  # type: ignore[assignment]
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()
        threading.Thread(target=refuse_names, args=(self._resolver,), name="relay-dns", daemon=True).start()

    def close(self) -> None:
        if self._resolver is not None:
            self._resolver.close()
            self._resolver = None
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect(self) -> socket.socket:
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        raw.settimeout(None)
        if self.scheme == "https":
            return ssl.create_default_context().wrap_socket(raw, server_hostname=self.host)
        return raw

    def _serve(self, client: socket.socket) -> None:
        with client:
            head, rest = read_head(client)
            if head is None:
                return
            start, fields = parse_head(head)
            netloc = self.host if self.port in (80, 443) else f"{self.host}:{self.port}"
            fields = [(k, v) for k, v in fields if k.lower() not in CREDENTIALS | HOP_BY_HOP]
            fields += [("Host", netloc), ("Connection", "close"), *self.headers.items()]
            try:
                upstream = self._connect()
            except OSError as err:
                self._note(start, f"unreachable: {err}")
                body = f"candlebench relay: {self.upstream} unreachable: {err}\n".encode()
                with contextlib.suppress(OSError):
                    client.sendall(
                        b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                return
            with upstream:
                upstream.sendall(render_head(start, fields) + rest)
                threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
                reply, body = read_head(upstream)
                if reply is None:
                    self._note(start, "no response")
                    return
                status, answer = parse_head(reply)
                answer = [(k, v) for k, v in answer if k.lower() not in ("connection", "keep-alive")]
                self._note(start, status.split(" ", 2)[1] if " " in status else status)
                with contextlib.suppress(OSError):
                    client.sendall(render_head(status, [*answer, ("Connection", "close")]) + body)
                    pipe(upstream, client)

    def _note(self, start: str, outcome: str) -> None:
        method, _, rest = start.partition(" ")
        with self._lock:
            self.requests.append(f"{method} {rest.rpartition(' ')[0] or rest} -> {outcome}")


def refuse_names(resolver: socket.socket) -> None:
    """Answer every DNS query at once with "no such name" (the container's resolv.conf names
    127.0.0.1): with no answer at all, resolvers such as musl's wait out their timeouts (codex
    spent 4-5 s per attempt so, measured), where a host without internet fails at once."""
    while True:
        try:
            query, peer = resolver.recvfrom(4096)
        except OSError:
            return  # closed
        if len(query) < 12:
            continue
        end = 12
        while end < len(query) and query[end]:  # the question's name: length-prefixed labels
            end += 1 + query[end]
        question = query[12 : end + 5]  # the name, its terminator, QTYPE, QCLASS
        flags = bytes([0x80 | (query[2] & 0x79), 0x83])  # a response, RD kept, RA, NXDOMAIN
        with contextlib.suppress(OSError):
            resolver.sendto(query[:2] + flags + query[4:6] + bytes(6) + question, peer)


def read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    """An HTTP message head (up to the blank line) and the bytes read past it."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return None, b""
        if not chunk or len(data) > HEAD_LIMIT:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    start, *lines = head.decode("latin-1").split("\r\n")
    fields = [(k.strip(), v.strip()) for k, sep, v in (line.partition(":") for line in lines) if sep]
    return start, fields


def render_head(start: str, fields: list[tuple[str, str]]) -> bytes:
    return (start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode("latin-1")


def pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until `source` ends; then end `sink`'s writing side."""
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
