"""Creates the compatibility suite's SCRAM user on the broker's SASL_SSL listener (run.sh runs it
once, before the client checks): confluent-kafka's AdminClient, authenticated as the PLAIN user,
upserts SCRAM-SHA-256 and SCRAM-SHA-512 credentials for the user with AlterUserScramCredentials,
then DescribeUserScramCredentials must list both mechanisms with the iterations asked for.

Usage: scram_user.py --secure-bootstrap host:port --ca-file ca.pem --sasl-user user
         --sasl-password password --scram-user user --scram-password password [--timeout seconds]
Exits non-zero with the reason on stderr if the user could not be created or is not listed.
"""

import argparse
import sys

from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

ITERATIONS = 8192
MECHANISMS = [ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512]


def parse_args():
    parser = argparse.ArgumentParser(description="create the suite's SCRAM user")
    parser.add_argument("--secure-bootstrap", required=True, help="the SASL_SSL listener")
    parser.add_argument("--ca-file", required=True, help="PEM CA certificate of the broker")
    parser.add_argument("--sasl-user", required=True, help="the PLAIN user to log in as")
    parser.add_argument("--sasl-password", required=True)
    parser.add_argument("--scram-user", required=True, help="the SCRAM user to create")
    parser.add_argument("--scram-password", required=True)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    return parser.parse_args()


def mechanism_name(mechanism):
    return mechanism.name.replace("_", "-")


def create(args):
    admin = AdminClient(
        {
            "bootstrap.servers": args.secure_bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": args.sasl_user,
            "sasl.password": args.sasl_password,
            "ssl.ca.location": args.ca_file,
        }
    )
    upsertions = [
        UserScramCredentialUpsertion(
            args.scram_user,
            ScramCredentialInfo(mechanism, ITERATIONS),
            args.scram_password.encode(),
        )
        for mechanism in MECHANISMS
    ]
    futures = admin.alter_user_scram_credentials(upsertions, request_timeout=args.timeout)
    for user, future in futures.items():
        try:
            future.result(timeout=args.timeout)
        except Exception as error:
            raise SystemExit(f"AlterUserScramCredentials for {user} failed: {error}") from None

    futures = admin.describe_user_scram_credentials([args.scram_user], request_timeout=args.timeout)
    try:
        description = futures[args.scram_user].result(timeout=args.timeout)
    except Exception as error:
        raise SystemExit(
            f"DescribeUserScramCredentials for {args.scram_user} failed: {error}"
        ) from None
    listed = {info.mechanism: info.iterations for info in description.scram_credential_infos}
    shown = (
        ", ".join(f"{mechanism_name(m)} ({i} iterations)" for m, i in sorted(listed.items()))
        or "nothing"
    )
    if any(listed.get(mechanism) != ITERATIONS for mechanism in MECHANISMS):
        raise SystemExit(
            f"DescribeUserScramCredentials for {args.scram_user} lists {shown}; expected "
            + " and ".join(f"{mechanism_name(m)} ({ITERATIONS} iterations)" for m in MECHANISMS)
        )
    return f"SCRAM user {args.scram_user} created: {shown}"


def main():
    args = parse_args()
    print(create(args), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
