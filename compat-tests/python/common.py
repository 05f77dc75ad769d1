"""Shared plumbing for the Python-side drivers: argument parsing, the @@RESULT line, checks."""

import json
import os
import sys
import time
import traceback

BASE_TS = (int(time.time()) - 3600) * 1000  # an hour ago: inside every timestamp bound, far from retention


class Fail(Exception):
    pass


class NotApplicable(Exception):
    pass


class NotYet(Exception):
    pass


def expected_brokers():
    """How many brokers the target is (compat-tests sets COMPAT_BROKERS: 1, or 3 for a cluster)."""
    return int(os.environ.get("COMPAT_BROKERS", "1"))


def advertised_is_bootstrap(addrs, bootstrap):
    """Whether the brokers' advertised host:port set is exactly the bootstrap list."""
    return set(addrs) == set(bootstrap.split(","))


def check(ok, msg):
    if not ok:
        raise Fail(msg)


def vals(n, prefix):
    return [f"{prefix}{i}" for i in range(n)]


def main(scenarios):
    """scenarios: dict id -> fn(bootstrap, topic, obs). Prints exactly one @@RESULT line."""
    scenario, bootstrap, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    obs = {}
    status, detail = "pass", ""
    fn = scenarios.get(scenario)
    try:
        if fn is None:
            raise NotYet(f"no driver for {scenario} yet")
        fn(bootstrap, topic, obs)
    except Fail as e:
        status, detail = "fail", str(e)
    except NotApplicable as e:
        status, detail = "n/a", str(e)
    except NotYet as e:
        status, detail = "not_yet", str(e)
    except BaseException as e:  # noqa: BLE001 - anything else is this cell failing
        traceback.print_exc()
        status, detail = "fail", f"{type(e).__name__}: {e}"
    print("@@RESULT " + json.dumps({"status": status, "detail": detail, "obs": obs}, default=str), flush=True)
    sys.stdout.flush()
    os._exit(0)  # client background threads must not keep the process alive


def security():
    """COMPAT_SECURITY (lib/brokers.py security_env): the security listeners' host:port by name
    (plaintext, ssl, mtls, sasl_plaintext, sasl_ssl), the test CA and client certificate files,
    plain_users. Absent when the broker has no security listeners: the cell is `not yet`."""
    raw = os.environ.get("COMPAT_SECURITY")
    if not raw:
        raise NotYet("no COMPAT_SECURITY: the broker has no security listeners")
    return json.loads(raw)


def na(why):
    def f(bootstrap, topic, obs):
        raise NotApplicable(why)
    return f


def deadline(seconds):
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end


# Kafka's own error names by code, so every client's errors are reported in Kafka's words.
KAFKA_ERRORS = {
    -1: "UNKNOWN_SERVER_ERROR", 1: "OFFSET_OUT_OF_RANGE", 2: "CORRUPT_MESSAGE", 3: "UNKNOWN_TOPIC_OR_PARTITION",
    5: "LEADER_NOT_AVAILABLE", 6: "NOT_LEADER_OR_FOLLOWER", 7: "REQUEST_TIMED_OUT", 10: "MESSAGE_TOO_LARGE",
    15: "COORDINATOR_NOT_AVAILABLE", 16: "NOT_COORDINATOR", 17: "INVALID_TOPIC_EXCEPTION",
    18: "RECORD_LIST_TOO_LARGE", 22: "ILLEGAL_GENERATION", 25: "UNKNOWN_MEMBER_ID", 27: "REBALANCE_IN_PROGRESS",
    35: "UNSUPPORTED_VERSION", 36: "TOPIC_ALREADY_EXISTS", 37: "INVALID_PARTITIONS",
    38: "INVALID_REPLICATION_FACTOR", 40: "INVALID_CONFIG", 42: "INVALID_REQUEST", 45: "OUT_OF_ORDER_SEQUENCE_NUMBER",
    47: "INVALID_PRODUCER_EPOCH", 48: "INVALID_TXN_STATE", 49: "INVALID_PRODUCER_ID_MAPPING",
    51: "CONCURRENT_TRANSACTIONS", 87: "INVALID_RECORD",
    33: "UNSUPPORTED_SASL_MECHANISM", 34: "ILLEGAL_SASL_STATE", 58: "SASL_AUTHENTICATION_FAILED",
    91: "RESOURCE_NOT_FOUND",
    29: "TOPIC_AUTHORIZATION_FAILED", 30: "GROUP_AUTHORIZATION_FAILED", 31: "CLUSTER_AUTHORIZATION_FAILED",
    53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", 54: "SECURITY_DISABLED",
}


def err_name(code):
    return KAFKA_ERRORS.get(code, f"code {code}")
