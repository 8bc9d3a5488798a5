#!/bin/sh
# Health check of the mosquitto service of the compose stacks: healthy when
# the broker lets the stack's account in and delivers a message, here its
# retained uptime. The demo broker has no account (no mqtt_password secret):
# there an anonymous client must get in.
set -eu
secret=/run/secrets/mqtt_password
if [ -e "$secret" ]; then
	pass=$(tr -d '\r' < "$secret")
	# shellcheck disable=SC2016 # $SYS is a topic, not a variable
	exec mosquitto_sub -h 127.0.0.1 -p 1883 -u "$MQTT_USERNAME" -P "$pass" \
		-t '$SYS/broker/uptime' -C 1 -W 5 >/dev/null
fi
# shellcheck disable=SC2016 # $SYS is a topic, not a variable
exec mosquitto_sub -h 127.0.0.1 -p 1883 -t '$SYS/broker/uptime' -C 1 -W 5 >/dev/null
