"""RS256 JSON Web Tokens for the compatibility suite's oauthbearer step, with nothing but the
Python standard library and the openssl command line (run.sh needs openssl for its CA anyway).

  mint_token.py genkey KEY.pem      a new 2048-bit RSA private key (openssl genpkey)
  mint_token.py jwks KEY.pem        prints the JSON Web Key Set holding KEY's public half: one
                                    RSA key, use sig, alg RS256, n and e base64url, and as kid
                                    the key's RFC 7638 thumbprint
  mint_token.py token KEY.pem --subject SUB --lifetime SECONDS [--issuer ISS] [--audience AUD]
                [--kid KID]         prints a token signed by KEY (openssl dgst -sha256 -sign):
                                    header {"alg":"RS256","typ":"JWT","kid":...}, claims sub, iss,
                                    aud, iat, exp = now + SECONDS (negative: already expired) and
                                    a random jti. The kid defaults to KEY's own thumbprint; --kid
                                    names another key's, to forge a token that claims that key.

run.sh makes one trusted key (its key set is the broker's sasl.oauthbearer.jwks.endpoint.url)
and one foreign key, then mints for each client a good token, an expired one and one the
foreign key signed under the trusted key's kid.
"""

import argparse
import base64
import hashlib
import json
import secrets
import subprocess
import sys
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def openssl(*args, data=None):
    result = subprocess.run(
        ["openssl", *args], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False
    )
    if result.returncode != 0:
        raise SystemExit(
            f"openssl {' '.join(args)} failed: {result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout


def der_element(data, offset):
    """(tag, contents, offset after the element) of the DER element at offset."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[offset : offset + size], "big")
        offset += size
    return tag, data[offset : offset + length], offset + length


def der_unsigned(contents):
    """A DER INTEGER's big-endian bytes without the sign byte, as JWK wants them."""
    return contents.lstrip(b"\x00") or b"\x00"


def rsa_public_numbers(key_file):
    """(n, e) of the RSA key in key_file, as big-endian bytes, from its DER
    SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID, NULL }, BIT STRING { 00 RSAPublicKey } }
    with RSAPublicKey = SEQUENCE { INTEGER n, INTEGER e }."""
    spki = openssl("pkey", "-in", key_file, "-pubout", "-outform", "DER")
    _, outer, _ = der_element(spki, 0)
    _, algorithm, offset = der_element(outer, 0)
    if b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01" not in algorithm:  # rsaEncryption
        raise SystemExit(f"{key_file} is not an RSA key")
    tag, bits, _ = der_element(outer, offset)
    if tag != 0x03 or bits[:1] != b"\x00":
        raise SystemExit(f"{key_file}: unexpected public key encoding")
    _, public_key, _ = der_element(bits[1:], 0)
    _, n, offset = der_element(public_key, 0)
    _, e, _ = der_element(public_key, offset)
    return der_unsigned(n), der_unsigned(e)


def jwk(key_file):
    n, e = rsa_public_numbers(key_file)
    members = {"e": b64url(e), "kty": "RSA", "n": b64url(n)}
    # RFC 7638: the SHA-256 of the required members, lexicographic, no whitespace.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    thumbprint = b64url(hashlib.sha256(canonical).digest())
    return {**members, "kid": thumbprint, "use": "sig", "alg": "RS256"}


def token(key_file, subject, lifetime, issuer=None, audience=None, kid=None):
    now = int(time.time())
    exp = now + lifetime
    header = {"alg": "RS256", "typ": "JWT", "kid": kid or jwk(key_file)["kid"]}
    claims = {"sub": subject, "iat": min(now, exp - 60), "exp": exp, "jti": secrets.token_hex(8)}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = openssl("dgst", "-sha256", "-sign", key_file, data=signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def main():
    parser = argparse.ArgumentParser(description="RS256 JWTs and their key set, for run.sh")
    commands = parser.add_subparsers(dest="command", required=True)
    genkey = commands.add_parser("genkey", help="a new 2048-bit RSA private key (PEM)")
    genkey.add_argument("key")
    keyset = commands.add_parser("jwks", help="print the key set of a key's public half")
    keyset.add_argument("key")
    mint = commands.add_parser("token", help="print a token signed by a key")
    mint.add_argument("key")
    mint.add_argument("--subject", required=True, help="the sub claim")
    mint.add_argument("--lifetime", type=int, required=True, help="exp - now, in seconds")
    mint.add_argument("--issuer", help="the iss claim")
    mint.add_argument("--audience", help="the aud claim")
    mint.add_argument("--kid", help="the header's kid (default: the key's own thumbprint)")
    args = parser.parse_args()
    if args.command == "genkey":
        openssl(
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", args.key
        )
    elif args.command == "jwks":
        print(json.dumps({"keys": [jwk(args.key)]}, indent=2))
    else:
        print(token(args.key, args.subject, args.lifetime, args.issuer, args.audience, args.kid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
