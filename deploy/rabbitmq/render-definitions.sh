#!/bin/sh
# Prints the broker's definitions: the template named by $1 with the clinic's two
# broker accounts filled in from the environment (RABBITMQ_ADMIN_USER,
# RABBITMQ_ADMIN_PASSWORD, RABBITMQ_APP_USER, RABBITMQ_APP_PASSWORD). The rabbitmq
# service runs it at every start, so the passwords live in .env only, never in
# the repository, and a changed password takes effect on the next restart.
set -eu

template=$1
for name in RABBITMQ_ADMIN_USER RABBITMQ_ADMIN_PASSWORD RABBITMQ_APP_USER RABBITMQ_APP_PASSWORD; do
  eval "value=\${$name:-}"
  # URL-safe characters only: the app's password is part of an amqp:// URL, and
  # nothing can then break out of the JSON strings or the substitution below.
  case $value in
    '' | *[!A-Za-z0-9._~-]*)
      echo "$name must be set, with only the characters A-Z a-z 0-9 . _ ~ -" >&2
      exit 1
      ;;
    change-me* | CHANGE-ME*)
      # .env.example's placeholders: a broker must never start with a published password.
      echo "$name still has its example value from .env.example: set a real one" >&2
      exit 1
      ;;
  esac
done
# The administrator's account is for people; the app must not hold its rights.
if [ "$RABBITMQ_ADMIN_USER" = "$RABBITMQ_APP_USER" ]; then
  echo "RABBITMQ_APP_USER must not be the administrator, RABBITMQ_ADMIN_USER" >&2
  exit 1
fi

sed -e "s/@RABBITMQ_ADMIN_USER@/$RABBITMQ_ADMIN_USER/g" \
  -e "s/@RABBITMQ_ADMIN_PASSWORD@/$RABBITMQ_ADMIN_PASSWORD/g" \
  -e "s/@RABBITMQ_APP_USER@/$RABBITMQ_APP_USER/g" \
  -e "s/@RABBITMQ_APP_PASSWORD@/$RABBITMQ_APP_PASSWORD/g" \
  "$template"
