"""A local TCP forwarder for tests that need something between a client and a real server: a
slow TLS handshake in front of Redis, or TLS in front of a plain HTTP endpoint."""

from __future__ import annotations

import socket
import ssl
import threading
import time

HOST = "127.0.0.1"


class TcpForwarder:
    """Forwards each connection to HOST:<port> to HOST:`upstream_port`, byte for byte both ways.

    `first_reply_delay_s`: the upstream's first bytes (a TLS ServerHello) are held back that long.
    `tls`: a server-side context; connections arrive in TLS and leave plain, as a TLS front would.
    stop() closes the listener and every connection."""

    def __init__(self, upstream_port: int, *, first_reply_delay_s: float = 0.0, tls: ssl.SSLContext | None = None):
        self.upstream_port, self.first_reply_delay_s, self._tls = upstream_port, first_reply_delay_s, tls
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        if self._tls is not None:
            try:
                client = self._tls.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):
                client.close()  # the client refused the certificate
                return
        upstream = socket.create_connection((HOST, self.upstream_port))
        self._sockets += [client, upstream]
        threading.Thread(target=pump, args=(client, upstream, 0.0), daemon=True).start()
        pump(upstream, client, self.first_reply_delay_s)

    def stop(self) -> None:
        for s in self._sockets:
            s.close()


def pump(source: socket.socket, sink: socket.socket, first_delay_s: float = 0.0) -> None:
    """Copies `source` to `sink` until either ends, then shuts both down and closes `source`."""
    try:
        while data := source.recv(65536):
            time.sleep(first_delay_s)
            first_delay_s = 0.0
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        source.close()
