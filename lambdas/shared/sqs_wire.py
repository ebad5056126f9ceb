"""SendMessageBatch on one kept-alive connection: the SQS JSON protocol, signed with botocore's
SigV4 signer. The ledger's records go this way, with every batch a function handles: boto3's
per-call machinery (parameter validation, event hooks, endpoint rules, retry handlers, response
parsing) took about a fifth of the dialer's CPU (`benchmarks/bench_lambda_share.py`). boto3 still
resolves the endpoint, the region and the credentials, once, and sends everything that is rare
(deferrals, restore requests)."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 3.0
# Worth one more try on a fresh connection: the keep-alive one went stale, or SQS had a moment.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class SqsRequestFailed(Exception):
    """SQS refused the request as a whole (its JSON error type and message), or kept failing."""


class SqsWire:
    """`send_message_batch(QueueUrl=..., Entries=...)` as boto3's, for the endpoint, region and
    credentials of the boto3 SQS `client` given: returns SQS's answer (`Successful`, `Failed`), or
    raises SqsRequestFailed or OSError when no answer says which entries were taken."""

    def __init__(self, client: Any) -> None:
        from botocore.auth import SigV4Auth  # botocore comes with the runtime, as boto3 does
        from botocore.awsrequest import AWSRequest

        self._signer_class, self._request_class = SigV4Auth, AWSRequest
        self._endpoint = client.meta.endpoint_url.rstrip("/")
        self._region = client.meta.region_name
        # botocore's own object: refreshable credentials refresh as they would for the client.
        self._credentials = client._get_credentials()
        # What the client verifies TLS with: True (botocore's bundle), False, or a CA bundle path
        # (the client's `verify=` or AWS_CA_BUNDLE), so both trust the same certificates.
        session = getattr(getattr(client, "_endpoint", None), "http_session", None)
        self._verify: bool | str = getattr(session, "_verify", True)
        parts = urlsplit(self._endpoint)
        self._host, self._https = parts.hostname, parts.scheme == "https"
        self._port = parts.port or (443 if self._https else 80)
        self._conn: http.client.HTTPConnection | None = None

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        payload = json.dumps({"QueueUrl": QueueUrl, "Entries": Entries}).encode()
        for attempt in (1, 2):
            try:
                status, body = self._post(payload)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise OSError(f"SendMessageBatch: {type(exc).__name__}: {exc}") from exc
                continue
            if status in _RETRY_STATUSES and attempt == 1:
                self.close()
                continue
            break
        reply = json.loads(body) if body else {}
        if status != 200:
            raise SqsRequestFailed(f"SendMessageBatch: HTTP {status} {reply.get('__type')}: {reply.get('message')}")
        return reply

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post(self, payload: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessageBatch"}
        request = self._request_class(method="POST", url=self._endpoint + "/", data=payload, headers=headers)
        # Frozen per request, so a refresh cannot mix two sets of keys in one signature.
        self._signer_class(self._credentials.get_frozen_credentials(), "sqs", self._region).add_auth(request)
        conn = self._connection()
        conn.request("POST", "/", body=payload, headers=dict(request.headers.items()))
        response = conn.getresponse()
        body = response.read()
        if response.will_close:
            self.close()
        return response.status, body

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=TIMEOUT_S, context=self._tls_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT_S)
        return self._conn

    def _tls_context(self) -> ssl.SSLContext:
        from botocore.httpsession import get_cert_path  # the trust boto3's own requests use

        if self._verify is False:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=get_cert_path(self._verify))


def wire_factory(sqs: Callable[[], Any]) -> Callable[[], SqsWire]:
    """What a function gives its RecordSender: the boto3 client's factory, made into an SqsWire's."""
    return lambda: SqsWire(sqs())
