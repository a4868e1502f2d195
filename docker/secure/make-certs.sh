#!/usr/bin/env bash
# Makes what docker/compose.secure.yaml mounts, in DIR (default docker/secure/certs):
#   ca.crt             a CA made here (its key, ca.key, stays beside it for signing more)
#   tls-combined.pem   the brokers' key and certificate (broker-a/b/c, localhost, 127.0.0.1;
#                      server and client auth: brokers present it to each other)
#   scram-credentials  the first SCRAM user, admin, with a random password (printed; also in
#                      admin.password)
# Files are made readable by the container's user (uid 10001): for a local cluster only.
set -euo pipefail
DIR=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/certs}
mkdir -p "$DIR"
chmod 0755 "$DIR"
cd "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=rivulet-compose-ca" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=rivulet-broker" -keyout broker.key -out broker.csr 2>/dev/null
printf '%s\n' \
    "subjectAltName=DNS:broker-a,DNS:broker-b,DNS:broker-c,DNS:localhost,IP:127.0.0.1" \
    "extendedKeyUsage=serverAuth,clientAuth" >broker.ext
openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
    -extfile broker.ext -out broker.crt 2>/dev/null
cat broker.key broker.crt >tls-combined.pem
rm -f broker.csr broker.ext broker.key ca.srl
password=$(openssl rand -hex 12)
printf '%s\n' "$password" >admin.password
printf 'SCRAM-SHA-512=[name=admin,password=%s]\n' "$password" >scram-credentials
chmod 0644 ca.crt broker.crt tls-combined.pem scram-credentials
chmod 0600 ca.key admin.password
echo "certificates and users in $DIR; admin's SCRAM-SHA-512 password: $password"
