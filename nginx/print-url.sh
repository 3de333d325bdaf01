#!/bin/sh
# Tells whoever ran "docker compose up" where to open the demo. The nginx image runs it from
# /docker-entrypoint.d/ right before nginx starts, and compose starts nginx only once the demo
# answers its health check. The ports are the host ports docker-compose.yml publishes.
set -eu

echo "
  Sluice demo: open https://localhost:${SLUICE_HTTPS_PORT:-8443}/
  (HTTP/2; the certificate is self-signed, so accept the browser's warning once)
  or http://localhost:${SLUICE_HTTP_PORT:-8080}/ (HTTP/1.1: at most six open streams per browser)
"
