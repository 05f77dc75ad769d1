"""SCRAM credentials for the drivers whose client library has no AlterUserScramCredentials /
DescribeUserScramCredentials call (KafkaJS, kcat): kafka-python's KafkaAdminClient through the
PLAINTEXT listener, run as a child process of the driver. Prints one JSON line.

  scram_admin.py <bootstrap> upsert <user> <SCRAM-SHA-256|SCRAM-SHA-512> <password>
      -> {"described": "SCRAM_SHA_256:8192"}   (8192 iterations; waits up to 10 s until described)
  scram_admin.py <bootstrap> delete <user> <mechanism>
      -> {"described_after_delete": "RESOURCE_NOT_FOUND"}   (waits up to 10 s until gone)
On an error: {"error": "..."} and exit status 1."""

import json
import sys
import time

from kafka.admin import KafkaAdminClient, UserScramCredentialDeletion, UserScramCredentialUpsertion


def described(a, user):
    d = a.describe_user_scram_credentials([user]).get(user) or {}
    if d.get("error"):
        return "RESOURCE_NOT_FOUND" if "does not exist" in d["error"] else d["error"].replace(user, "<user>")
    return ",".join(f"{ci['mechanism'].name}:{ci['iterations']}" for ci in d.get("credential_infos", []))


def main():
    bootstrap, op, user, mech = sys.argv[1:5]
    a = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-scram-admin", request_timeout_ms=15000)
    try:
        if op == "upsert":
            r = a.alter_user_scram_credentials([UserScramCredentialUpsertion(user, mech, sys.argv[5], iterations=8192)])
            want, key = f"{mech.replace('-', '_')}:8192", "described"
        else:
            r = a.alter_user_scram_credentials([UserScramCredentialDeletion(user, mech)])
            want, key = "RESOURCE_NOT_FOUND", "described_after_delete"
        if r.get(user):
            print(json.dumps({"error": f"AlterUserScramCredentials {op}: {r[user]}"}), flush=True)
            return 1
        shown, end = "", time.monotonic() + 10
        while time.monotonic() < end:
            shown = described(a, user)
            if shown == want:
                break
            time.sleep(0.2)
        print(json.dumps({key: shown}), flush=True)
        return 0
    finally:
        a.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - reported to the driver
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)
