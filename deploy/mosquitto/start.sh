#!/bin/sh
# Entrypoint of the mosquitto service in docker-compose.production.yml. It
# replaces the image's own entrypoint, which would try to chown the read-only
# config mount. It writes the password file from the mqtt_password secret, so
# that the broker and exlive2mqtt read the same one file, then runs
# mosquitto, which drops root for its own user.
set -eu

secret=/run/secrets/mqtt_password
if [ -z "${MQTT_USERNAME:-}" ]; then
	echo "mosquitto: MQTT_USERNAME is empty (set it in .env)" >&2
	exit 1
fi
if [ ! -s "$secret" ]; then
	echo "mosquitto: $secret is missing or empty (put the broker password into secrets/mqtt_password)" >&2
	exit 1
fi
# Trailing line ends are not part of the password, as for exlive2mqtt.
pass=$(tr -d '\r' < "$secret")

mkdir -p /mosquitto/auth /mosquitto/data
chown mosquitto:mosquitto /mosquitto/data
rm -f /mosquitto/auth/passwd
(
	umask 077
	# -b takes the password as an argument: only this container's
	# processes could see it, for the moment mosquitto_passwd runs.
	mosquitto_passwd -c -b /mosquitto/auth/passwd "$MQTT_USERNAME" "$pass"
)
chown -R mosquitto:mosquitto /mosquitto/auth
unset pass
exec mosquitto -c /mosquitto/config/mosquitto.conf
