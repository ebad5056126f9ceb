"""A local TCP proxy in front of PostgreSQL that refuses startup options, as RDS Proxy does.

It reads the client's StartupMessage (answering an SSLRequest or GSSENCRequest with 'N', so the
client goes on in plain text). A startup packet that carries an `options` parameter (what
`psycopg.connect(options="-c ...")` sends) is answered with the ErrorResponse RDS Proxy sends
(SQLSTATE 0A000, "Feature not supported: RDS Proxy currently doesn't support command-line
options.") and the connection is closed. Anything else is forwarded, byte for byte, both ways.
"""

from __future__ import annotations

import socket
import struct
import threading

from support.forwarder import pump

REFUSAL = "Feature not supported: RDS Proxy currently doesn't support command-line options."

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client closed during startup")
        data += chunk
    return data


def _startup_parameters(packet: bytes) -> dict[str, str]:
    """The name/value pairs of a StartupMessage (after its length and protocol version)."""
    fields = packet[8:].split(b"\0")
    pairs = fields[: len(fields) - len(fields) % 2]
    return {pairs[i].decode(): pairs[i + 1].decode() for i in range(0, len(pairs) - 1, 2) if pairs[i]}


def error_response(sqlstate: str, message: str) -> bytes:
    body = (
        b"".join(
            code + value.encode() + b"\0"
            for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
        )
        + b"\0"
    )
    return b"E" + struct.pack("!I", len(body) + 4) + body


class StartupOptionsRefusingProxy:
    """Listens on 127.0.0.1:<port>; forwards to (upstream_host, upstream_port). `refused` counts
    the startups it refused, `forwarded` those it passed on."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self.refused = 0
        self.forwarded = 0
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> StartupOptionsRefusingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            while True:
                (length,) = struct.unpack("!I", _recv_exactly(client, 4))
                packet = struct.pack("!I", length) + _recv_exactly(client, length - 4)
                (code,) = struct.unpack("!I", packet[4:8])
                if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                    client.sendall(b"N")
                    continue
                break
            if code != _CANCEL_REQUEST and "options" in _startup_parameters(packet):
                self.refused += 1
                client.sendall(error_response("0A000", REFUSAL))
                client.close()
                return
            upstream = socket.create_connection(self._upstream, timeout=5)
            upstream.settimeout(None)
            upstream.sendall(packet)
            self.forwarded += 1
        except (OSError, ConnectionError, struct.error):
            client.close()
            return
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)
