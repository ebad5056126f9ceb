"""Runs checkov over the synthesized templates and holds its findings to scan/checkov_baseline.yaml.

Exit 1 on a failed check that no baseline entry accepts (a new finding) and on an entry that no
longer fires in an environment it names (a stale one), so the baseline stays the true list.
Run with the scan venv's Python (`make scan`), which has checkov and PyYAML:

    .venv-scan/bin/python scan/checkov_gate.py scan/checkov_baseline.yaml cdk.out/*.template.json
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ENVIRONMENTS = ("dev", "staging", "prod")
STACK_PREFIX = "DialPipeline-"


def run_checkov(templates: list[str]) -> list[dict]:
    checkov = Path(sys.executable).with_name("checkov")
    files = [arg for template in templates for arg in ("--file", template)]
    # --skip-download: no guidelines or severities from the vendor's API (nothing leaves the machine).
    command = [str(checkov), "--framework", "cloudformation", "--skip-download", "--quiet", "--compact", "-o", "json"]
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    done = subprocess.run([*command, *files], capture_output=True, text=True, env=env, check=False)
    if done.returncode not in (0, 1):  # 1: some check failed, which the baseline decides on
        sys.exit(f"checkov failed ({done.returncode}):\n{done.stderr}")
    reports = json.loads(done.stdout)
    return reports if isinstance(reports, list) else [reports]


def environment(file_path: str) -> str:
    return Path(file_path).name.removesuffix(".template.json").removeprefix(STACK_PREFIX)


def main(argv: list[str]) -> int:
    baseline_path, *templates = argv
    baseline = yaml.safe_load(Path(baseline_path).read_text())
    entries = baseline["accepted"]
    for entry in entries:
        if not entry.get("reason", "").strip():
            sys.exit(f"{baseline_path}: every entry needs a reason ({entry['checks']})")
    reports = run_checkov(templates)
    failed = [check for report in reports for check in report["results"]["failed_checks"]]
    passed = sum(report["summary"]["passed"] for report in reports)
    version = reports[0]["summary"]["checkov_version"]
    envs_scanned = sorted({environment(t) for t in templates})

    used: set[tuple[int, str, str, str]] = set()  # (entry, check, environment, resource pattern) that fired
    new = []
    for check in failed:
        env = environment(check["file_path"])
        matched = False
        for index, entry in enumerate(entries):
            if check["check_id"] in entry["checks"] and env in entry.get("envs", ENVIRONMENTS):
                for pattern in entry["resources"]:
                    if fnmatch.fnmatchcase(check["resource"], pattern):
                        used.add((index, check["check_id"], env, pattern))
                        matched = True
        if not matched:
            new.append(check)
    stale = [
        (check_id, env, pattern)
        for index, entry in enumerate(entries)
        for check_id in entry["checks"]
        for env in entry.get("envs", ENVIRONMENTS)
        if env in envs_scanned
        for pattern in entry["resources"]
        if (index, check_id, env, pattern) not in used
    ]

    for check in sorted(new, key=lambda c: (c["check_id"], c["file_path"], c["resource"])):
        print(f"NEW  {check['check_id']} {environment(check['file_path'])} {check['resource']}: {check['check_name']}")
    for check_id, env, pattern in stale:
        print(f"STALE {check_id} {env} {pattern}: accepted in {baseline_path} but no longer fires")
    print(
        # Not in a test runner's "N passed, N failed" words: these are findings, not tests.
        f"checkov {version} on {', '.join(envs_scanned)}: {len(failed)} findings, {len(failed) - len(new)} "
        f"accepted in {baseline_path}, {len(new)} new, {len(stale)} stale ({passed} checks pass)"
    )
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
