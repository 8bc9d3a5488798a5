#!/bin/sh
# Health check of the mosquitto service in docker-compose.yml: healthy when
# the broker lets the stack's account in and delivers a message, here its
# retained uptime.
set -eu
pass=$(tr -d '\r' < /run/secrets/mqtt_password)
# shellcheck disable=SC2016 # $SYS is a topic, not a variable
exec mosquitto_sub -h 127.0.0.1 -p 1883 -u "$MQTT_USERNAME" -P "$pass" \
	-t '$SYS/broker/uptime' -C 1 -W 5 >/dev/null
