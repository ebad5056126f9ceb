"""SqsWire, the records' SendMessageBatch without boto3's per-call machinery, against moto's SQS
server and the local endpoint: the same bodies arrive, the answer is SQS's own, a request SQS
refuses says why, a kept-alive connection the server dropped is replaced, and over https it trusts
what the boto3 client trusts."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from support.forwarder import TcpForwarder

from local_pipeline.services import make_throwaway_certificates
from local_pipeline.sqs_local import LocalSqsServer
from shared.sqs_wire import SqsRequestFailed, SqsWire


@pytest.fixture(scope="module")
def local_endpoint():
    server = LocalSqsServer().start()
    yield server.endpoint
    server.stop()


def client_for(endpoint: str):
    return boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


@pytest.fixture(params=["moto", "local"])
def sqs(request):
    return client_for(request.getfixturevalue("sqs_endpoint" if request.param == "moto" else "local_endpoint"))


def test_the_bodies_arrive_as_sent_and_the_answer_is_sqs_own(sqs):
    url = sqs.create_queue(QueueName="wire-records")["QueueUrl"]
    bodies = [json.dumps({"kind": "attempt", "n": n, "text": "é" * n}) for n in range(3)]
    wire = SqsWire(sqs)
    reply = wire.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies)]
    )
    assert sorted(e["Id"] for e in reply["Successful"]) == ["0", "1", "2"] and not reply.get("Failed")
    # Again on the same connection.
    wire.send_message_batch(QueueUrl=url, Entries=[{"Id": "3", "MessageBody": "again"}])
    got = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        got += [m["Body"] for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    assert sorted(got) == sorted([*bodies, "again"])


def test_a_request_sqs_refuses_says_why(sqs):
    missing = sqs.create_queue(QueueName="wire-there")["QueueUrl"].replace("wire-there", "wire-never-created")
    with pytest.raises(SqsRequestFailed, match="HTTP 400 .*NonExistentQueue|HTTP 400 .*QueueDoesNotExist"):
        SqsWire(sqs).send_message_batch(QueueUrl=missing, Entries=[{"Id": "0", "MessageBody": "x"}])


class _OneRequestPerConnection:
    """Answers each connection's one request (all entries Successful) and closes it without
    saying so, as an idle keep-alive connection is dropped; keeps each request's headers."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.headers.append(dict(self.headers))
                body = json.dumps({"Successful": [{"Id": e["Id"]} for e in request["Entries"]]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_dropped_keep_alive_connection_is_replaced_and_every_request_is_signed():
    server = _OneRequestPerConnection()
    try:
        wire = SqsWire(client_for(server.endpoint))
        for n in range(3):
            reply = wire.send_message_batch(QueueUrl="https://q/records", Entries=[{"Id": str(n), "MessageBody": "x"}])
            assert reply["Successful"] == [{"Id": str(n)}]
    finally:
        server.close()
    assert len(server.headers) == 3
    for headers in server.headers:
        assert headers["X-Amz-Target"] == "AmazonSQS.SendMessageBatch"
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=k/")
        assert "/us-east-1/sqs/aws4_request" in headers["Authorization"]


def test_no_server_is_an_os_error():
    wire = SqsWire(client_for("http://127.0.0.1:9"))  # the discard port: nothing listens
    with pytest.raises(OSError, match="SendMessageBatch"):
        wire.send_message_batch(QueueUrl="https://q/records", Entries=[{"Id": "0", "MessageBody": "x"}])


def tls_front(directory: str, backend_port: int) -> tuple[TcpForwarder, str]:
    """TLS in front of a plain endpoint, as SQS's own https endpoint is to a client: a throwaway
    CA's certificate for 127.0.0.1. Returns the forwarder and the CA's file."""
    make_throwaway_certificates(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(f"{directory}/server.crt", f"{directory}/server.key")
    return TcpForwarder(backend_port, tls=context), f"{directory}/ca.crt"


def test_over_https_it_verifies_with_the_clients_own_trust_and_keeps_its_connection(local_endpoint, tmp_path):
    plain = client_for(local_endpoint)
    url = plain.create_queue(QueueName="wire-https")["QueueUrl"]
    front, ca_file = tls_front(str(tmp_path), int(local_endpoint.rsplit(":", 1)[1]))
    endpoint = f"https://127.0.0.1:{front.port}"
    try:
        trusting = boto3.client(
            "sqs", endpoint_url=endpoint, region_name="us-east-1", verify=ca_file,
            aws_access_key_id="k", aws_secret_access_key="s",
        )  # fmt: skip
        wire = SqsWire(trusting)
        for n in range(2):
            reply = wire.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"tls-{n}"}])
            assert [e["Id"] for e in reply["Successful"]] == [str(n)]
        assert wire._conn is not None and wire._conn.sock is not None, "one kept-alive TLS connection"
        # A client with the default trust (botocore's bundle) does not know the throwaway CA.
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            SqsWire(client_for(endpoint)).send_message_batch(
                QueueUrl=url, Entries=[{"Id": "x", "MessageBody": "never"}]
            )
    finally:
        front.stop()
    got = [m["Body"] for m in plain.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    assert sorted(got) == ["tls-0", "tls-1"]
