#!/usr/bin/env bash
# Installs what the example tests run (go test ./examples): Node-RED with the
# worldmap node, and a Telegraf built with only the plugins telegraf.conf
# uses. Both go to EXLIVE2MQTT_TOOLS (default /opt/exlive2mqtt-tools), where
# the tests look; an installation that is there already is kept.
#   Node-RED 4.1 (Node.js 18.5 or later; 5.x needs Node.js 22), from npm.
#   Telegraf from the Go module proxy: go install with the build tags that
#   select plugins (Telegraf's "custom builds"), about two minutes.
set -euo pipefail

dir="${EXLIVE2MQTT_TOOLS:-/opt/exlive2mqtt-tools}"
node_red_version=4.1.8
worldmap_version=5.8.1
telegraf_version=v1.37.2

if [ ! -x "$dir/node-red/node_modules/.bin/node-red" ]; then
	if ! command -v npm >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq nodejs npm >/dev/null
	fi
	mkdir -p "$dir/node-red"
	npm install --prefix "$dir/node-red" --no-audit --no-fund --loglevel=error \
		"node-red@$node_red_version" "node-red-contrib-web-worldmap@$worldmap_version"
fi

if [ ! -x "$dir/bin/telegraf" ]; then
	GOBIN="$dir/bin" go install \
		-tags "custom,inputs.mqtt_consumer,outputs.influxdb_v2,parsers.json_v2" \
		"github.com/influxdata/telegraf/cmd/telegraf@$telegraf_version"
fi

"$dir/node-red/node_modules/.bin/node-red" --help >/dev/null
"$dir/bin/telegraf" --version
