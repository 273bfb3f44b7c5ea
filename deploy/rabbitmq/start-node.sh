#!/bin/sh
# The entrypoint of every RabbitMQ node in the compose files. It fills the accounts
# from .env into the definitions that clinic.conf imports at boot
# (render-definitions.sh); in a cluster (docker-compose.cluster.yml) it gives the
# node the cluster's Erlang cookie; then it starts RabbitMQ as the image does.
set -eu
umask 077

sh /etc/rabbitmq/clinic/render-definitions.sh /etc/rabbitmq/clinic/definitions.template.json \
  > /etc/rabbitmq/definitions.json
chown rabbitmq:rabbitmq /etc/rabbitmq/definitions.json

if [ -n "${RABBITMQ_CLUSTER_COOKIE:-}" ]; then
  # The cookie is the password between the nodes: anyone holding it controls them.
  case $RABBITMQ_CLUSTER_COOKIE in
    change-me* | CHANGE-ME*)
      echo "RABBITMQ_CLUSTER_COOKIE still has its example value from .env.example: set a real one" >&2
      exit 1
      ;;
  esac
  cookie=/var/lib/rabbitmq/.erlang.cookie
  rm -f "$cookie"
  printf '%s' "$RABBITMQ_CLUSTER_COOKIE" > "$cookie"
  chown rabbitmq:rabbitmq "$cookie"
  chmod 400 "$cookie"
fi

exec docker-entrypoint.sh rabbitmq-server
