"""One JSON snapshot per environment: a template change shows up as a reviewable diff.

Asset hashes (S3 keys, asset paths, the migration function's version id) change with any Lambda
code edit, which is not an infrastructure change, so they are masked.
"""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

ASSET_HASH = re.compile(r"[0-9a-f]{64}")
VERSION_ID = re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}")


def masked(template: dict) -> dict:
    text = json.dumps(template, sort_keys=True)
    text = ASSET_HASH.sub("<asset-hash>", text)
    text = VERSION_ID.sub(r"\1<code-hash>", text)
    return json.loads(text)


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def test_template_snapshot(env, snapshot_json):
    assert masked(env.template_json) == snapshot_json


def test_masking_hides_hashes_only():
    template = {"S3Key": "a" * 64 + ".zip", "Ref": "FnCurrentVersion5EC6188E" + "b" * 32, "Keep": "abc"}
    assert masked(template) == {
        "S3Key": "<asset-hash>.zip",
        "Ref": "FnCurrentVersion5EC6188E<code-hash>",
        "Keep": "abc",
    }
