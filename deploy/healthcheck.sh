#!/bin/bash
# Container health: GET /readyz on the service's HTTP port ($1, default 8080), with nothing but bash.
port="${1:-8080}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r _ status _ <&3
[ "$status" = "200" ]
