#!/bin/sh
# Makes the self-signed certificate nginx.conf uses (certs/cert.pem and certs/key.pem), unless
# both files already exist. Usage: gen-cert.sh [DIR] (default /etc/nginx/certs, where the nginx
# image looks). In the image it runs from /docker-entrypoint.d/ before nginx starts; the tests run
# it on a temporary directory.
set -eu

dir="${1:-/etc/nginx/certs}"
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then
  echo "gen-cert.sh: using the existing certificate in $dir"
  exit 0
fi

mkdir -p "$dir"
# P-256 key (fast to make, accepted everywhere), valid 825 days (the most browsers accept), for
# localhost and the loopback addresses. Written to temporary names first, so an interrupted run
# never leaves half a pair behind.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
  -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  -keyout "$dir/key.pem.tmp" -out "$dir/cert.pem.tmp" 2>/dev/null
chmod 600 "$dir/key.pem.tmp"
mv "$dir/key.pem.tmp" "$dir/key.pem"
mv "$dir/cert.pem.tmp" "$dir/cert.pem"
echo "gen-cert.sh: created a self-signed certificate for localhost in $dir"
