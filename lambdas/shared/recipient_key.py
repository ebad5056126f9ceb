"""The recipient limit's hash key, read where it lives: Secrets Manager when deployed, a variable
locally. The dialer hashes numbers with it; the ledger's restore hashes them the same way."""

from __future__ import annotations


def read_recipient_key(secret_arn: str | None, local_key: str | None) -> bytes | None:
    """The key's bytes; None when neither is set (no recipient limit to keep)."""
    if secret_arn:
        from aws_lambda_powertools.utilities import parameters  # its boto3 only when deployed

        return str(parameters.get_secret(secret_arn, max_age=3600)).encode()
    return local_key.encode() if local_key else None
