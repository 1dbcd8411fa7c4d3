#!/bin/bash
# A private CA and a broker certificate for the compose deployment (PEM, as Kafka's PEM keystore
# reads them). Replace with your organisation's CA in a real deployment.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p certs && cd certs
openssl req -x509 -newkey rsa:3072 -days 365 -nodes -subj "/CN=tally-ca" -keyout ca.key -out ca.crt
openssl req -newkey rsa:3072 -nodes -subj "/CN=kafka" -keyout broker.key -out broker.csr
printf "subjectAltName=DNS:kafka,DNS:localhost\n" > san.ext
openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -extfile san.ext -out broker.crt
cat broker.key broker.crt > broker.pem   # Kafka PEM keystore: private key, then its certificate chain
echo "certs in $(pwd): give clients ca.crt (TALLY_KAFKA_CA_FILE)"
