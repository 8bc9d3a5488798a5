#!/usr/bin/env bash
# Checks the container and compose files without a Docker engine:
#  1. the Dockerfile's go build, run here with the same flags, gives static
#     binaries that report the injected version;
#  2. the Dockerfile follows the rules a container needs (hadolint-style),
#     and parses (dockerfile-utils lint, where npm is at hand);
#  3. docker-compose.yml is valid, with and without the demo profile, when
#     set up exactly as docs/deployment.md says (cp .env.example .env and
#     the secret files), and wires what it must;
#  4. .env.example names only real settings;
#  5. deploy/mosquitto: the scripts parse, and where mosquitto is installed
#     and we are root, the broker starts from that config and script, lets
#     the stack's account in and refuses anonymous clients;
#  6. then exlive2mqtt, with the environment compose gives its container,
#     becomes ready against exlive-sim and that broker, and stops cleanly;
#  7. deploy/prometheus: promtool checks the scrape config and the alerting
#     rules and runs their unit tests (the Go tests in cmd/exlive2mqtt check
#     their metric names and the Grafana dashboard against a running bridge).
# Exits non-zero on the first broken file. Called from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "check-deploy: $*" >&2
	exit 1
}
step() { echo "check-deploy: $*"; }

# --- 1. the Dockerfile's build ---------------------------------------------
# The exact build line of the Dockerfile; if it changes there, change it here.
# shellcheck disable=SC2016 # ${VERSION} is the Dockerfile's, not expanded here
build_flags='-trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}"'
grep -qF "go build $build_flags" Dockerfile ||
	fail "Dockerfile: its go build line is not 'go build $build_flags'; keep .ci/check-deploy.sh in step"
grep -qF 'CGO_ENABLED=0' Dockerfile || fail "Dockerfile: no CGO_ENABLED=0"
step "go build with the Dockerfile's flags"
VERSION=9.9.9-check
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" \
	-o "$tmp/bin/" ./cmd/exlive2mqtt ./cmd/exlive-sim
for b in exlive2mqtt exlive-sim; do
	info=$(file "$tmp/bin/$b")
	[[ $info == *"statically linked"* ]] || fail "$b is not statically linked: $info"
	if ldd "$tmp/bin/$b" >/dev/null 2>&1; then
		fail "$b: ldd finds dynamic dependencies: $(ldd "$tmp/bin/$b")"
	fi
done
got=$("$tmp/bin/exlive2mqtt" version)
[[ $got == "$VERSION "* ]] || fail "exlive2mqtt version printed '$got', want '$VERSION (go…)'"
"$tmp/bin/exlive-sim" -h >/dev/null 2>&1 || fail "exlive-sim -h failed"
if HTTP_ADDR=127.0.0.1:1 "$tmp/bin/exlive2mqtt" healthcheck >/dev/null 2>&1; then
	fail "exlive2mqtt healthcheck exited 0 with no bridge listening"
fi

# --- 2. the Dockerfile, hadolint-style -------------------------------------
step "Dockerfile rules"
# DL3006/DL3007: every external base image has a tag, and not latest.
stages=$(sed -n 's/^FROM .* AS \([a-z0-9_-]*\)$/\1/p' Dockerfile)
while read -r image; do
	if grep -qx "$image" <<<"$stages"; then
		continue # an earlier stage
	fi
	if [[ $image != *:* || $image == *:latest ]]; then
		fail "Dockerfile: base image $image has no tag, or :latest"
	fi
done < <(sed -n 's/^FROM \(--platform=[^ ]* \)\{0,1\}\([^ ]*\).*/\2/p' Dockerfile)
# DL3025: JSON (exec) form for ENTRYPOINT and the HEALTHCHECK command: the
# runtime image has no shell.
if [[ $(grep -c '^ENTRYPOINT ' Dockerfile) != 2 ]] || grep -E '^ENTRYPOINT ' Dockerfile | grep -vqE '^ENTRYPOINT \["[^"]*"\]$'; then
	fail "Dockerfile: want two ENTRYPOINTs (exlive-sim, exlive2mqtt), each in exec form"
fi
grep -qE '^    CMD \["/usr/local/bin/exlive2mqtt", "healthcheck"\]$' Dockerfile ||
	fail "Dockerfile: no exec-form HEALTHCHECK running exlive2mqtt healthcheck"
if grep -qE '^CMD ' Dockerfile; then
	fail "Dockerfile: CMD found; the images have an ENTRYPOINT only"
fi
# DL3002: the runtime user is not root.
user=$(sed -n 's/^USER //p' Dockerfile | tail -1)
if [[ -z $user || $user == root* || $user == 0* ]]; then
	fail "Dockerfile: the last USER is '$user', want a non-root user"
fi
# DL3020: COPY, not ADD.
if grep -qE '^ADD ' Dockerfile; then
	fail "Dockerfile: ADD found, use COPY"
fi
grep -qx 'EXPOSE 9883' Dockerfile || fail "Dockerfile: port 9883 is not exposed"
for label in source version revision title description; do
	grep -q "org.opencontainers.image.$label=" Dockerfile || fail "Dockerfile: no org.opencontainers.image.$label label"
done
# A real Dockerfile parser where npm is at hand: unknown instructions or
# flags, malformed JSON forms, bad ports. Its absence (or no registry) only
# skips this part.
if command -v npm >/dev/null 2>&1 &&
	npm install --silent --no-audit --no-fund --prefix "$tmp/npm" dockerfile-utils@0.16.3 >/dev/null 2>&1; then
	"$tmp/npm/node_modules/.bin/dockerfile-utils" lint Dockerfile || fail "Dockerfile: dockerfile-utils lint found problems"
else
	step "dockerfile-utils not run (no npm, or it could not install dockerfile-utils)"
fi
# The build context must not carry the stack's settings or secrets.
for p in .env secrets .git; do
	grep -qx "$p" .dockerignore || fail ".dockerignore does not exclude $p"
done

# --- 3. docker-compose.yml ---------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
	step "installing docker-compose"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq docker-compose >/dev/null
fi
# The user's first steps, in a copy of what they clone.
stack=$tmp/stack
mkdir -p "$stack"
cp -r docker-compose.yml .env.example Dockerfile deploy "$stack/"
cp "$stack/.env.example" "$stack/.env"
mkdir -m 700 "$stack/secrets"
printf 000000 >"$stack/secrets/exlive_password"
printf 'check-%s\n' "$RANDOM" >"$stack/secrets/mqtt_password"
chmod 644 "$stack/secrets/"*

composers=("docker-compose")
if docker compose version >/dev/null 2>&1; then
	composers+=("docker compose")
fi
for dc in "${composers[@]}"; do
	step "$dc: $($dc version 2>/dev/null | head -1)"
	(cd "$stack" && $dc config -q) || fail "$dc config: docker-compose.yml is not valid"
	(cd "$stack" && $dc --profile demo config -q) || fail "$dc --profile demo config: not valid"
	services=$(cd "$stack" && $dc --profile demo config --services | sort | tr '\n' ' ')
	[[ $services == "exlive-sim exlive2mqtt mosquitto " ]] ||
		fail "$dc --profile demo: services are '$services', want exlive-sim exlive2mqtt mosquitto"
done
# The resolved file, in docker-compose v1's layout.
(cd "$stack" && docker-compose config) >"$tmp/config.yml"

# What the stack must wire, read from the resolved file (docker-compose
# depends on python3-yaml, so it is here).
step "compose wiring"
python3 - "$tmp/config.yml" "$root/Dockerfile" <<'EOF' || fail "docker-compose.yml does not wire the stack as it must"
import re, sys, yaml

cfg = yaml.safe_load(open(sys.argv[1]))
targets = set(re.findall(r"^FROM .* AS ([a-z0-9_-]+)$", open(sys.argv[2]).read(), re.M))
svc = cfg["services"]
problems = []

def want(cond, msg):
    if not cond:
        problems.append(msg)

for name, s in svc.items():
    want(s.get("restart") in ("unless-stopped", "always"), f"{name}: no restart policy")
    b = s.get("build")
    if b:
        want(b.get("target") in targets, f"{name}: build target {b.get('target')} is not a stage of the Dockerfile")
    for sec in s.get("secrets", []):
        src = sec["source"] if isinstance(sec, dict) else sec
        want(src in cfg.get("secrets", {}), f"{name}: secret {src} is not defined")

m = svc["mosquitto"]
want(m["image"].startswith("eclipse-mosquitto:2"), "mosquitto: not eclipse-mosquitto:2")
want("mosquitto_sub" in open("deploy/mosquitto/healthcheck.sh").read(), "mosquitto: health check is not mosquitto_sub")
want(any("healthcheck.sh" in t for t in m["healthcheck"]["test"]), "mosquitto: no healthcheck")
want(any(v.endswith(":/mosquitto/config:ro") for v in m["volumes"]), "mosquitto: config not mounted read-only")
want(any(v.endswith(":/mosquitto/data:rw") or v.endswith(":/mosquitto/data") for v in m["volumes"]), "mosquitto: no persistence volume")

e = svc["exlive2mqtt"]
env = e["environment"]
want(env.get("EXLIVE_PASS_FILE") == "/run/secrets/exlive_password", "exlive2mqtt: EXLIVE_PASS_FILE is not the secret")
want(env.get("MQTT_PASSWORD_FILE") == "/run/secrets/mqtt_password", "exlive2mqtt: MQTT_PASSWORD_FILE is not the secret")
want("EXLIVE_PASS" not in env and "MQTT_PASSWORD" not in env, "exlive2mqtt: a password in the environment")
want(env.get("HTTP_ADDR") == ":9883", "exlive2mqtt: HTTP_ADDR is not :9883 (the port mapping and health check use it)")
want(env.get("MQTT_URL", "").startswith("tcp://mosquitto:"), "exlive2mqtt: MQTT_URL does not point at mosquitto by default")
want(env.get("EXLIVE_ADDR", "").startswith("exlive-sim:"), "exlive2mqtt: .env.example does not point at the demo's simulator")
want("healthcheck" not in e, "exlive2mqtt: the image's HEALTHCHECK is overridden")
want(any(str(p).endswith(":9883/tcp") or str(p).endswith(":9883") for p in e.get("ports", [])), "exlive2mqtt: port 9883 not published")

sim = svc["exlive-sim"]
want(sim.get("profiles") == ["demo"], "exlive-sim: not only in the demo profile")
want("profiles" not in e and "profiles" not in m, "the bridge and the broker must run without a profile")

for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

# --- 4. .env.example ---------------------------------------------------------
step ".env.example names real settings"
help=$("$tmp/bin/exlive2mqtt" -h)
while IFS= read -r line; do
	line=${line#\#}
	[[ $line =~ ^([A-Z][A-Z0-9_]*)= ]] || continue
	name=${BASH_REMATCH[1]}
	case $name in
	PUBLISH_* | EXLIVE2MQTT_*) continue ;; # docker-compose.yml's own
	esac
	grep -qE "^  $name " <<<"$help" || fail ".env.example: $name is not a setting (exlive2mqtt -h)"
done <.env.example

# --- 5. deploy/mosquitto -----------------------------------------------------
step "deploy/mosquitto scripts"
for s in deploy/mosquitto/*.sh; do
	sh -n "$s" || fail "$s: syntax error"
done
if command -v shellcheck >/dev/null 2>&1; then
	shellcheck -s sh deploy/mosquitto/*.sh
fi
mosquitto=$(command -v mosquitto || true)
[[ -z $mosquitto && -x /usr/sbin/mosquitto ]] && mosquitto=/usr/sbin/mosquitto
if [[ -n $mosquitto && $(id -u) == 0 ]] && id mosquitto >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; then
	step "mosquitto from deploy/mosquitto ($($mosquitto -h 2>&1 | head -1))"
	# The container's paths moved under a temporary directory, the port to
	# a free one on the loopback address.
	m=$tmp/mosquitto
	mkdir -p "$m/mosquitto/config" "$m/secrets"
	# mosquitto reads its password file after dropping root for its user.
	chmod 711 "$tmp"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	for f in mosquitto.conf start.sh healthcheck.sh; do
		sed -e "s|/mosquitto/|$m/mosquitto/|g; s|/run/secrets/|$m/secrets/|g" \
			-e "s|^listener 1883\$|listener $port 127.0.0.1|; s|-p 1883|-p $port|; s|exec mosquitto |exec $mosquitto |" \
			"deploy/mosquitto/$f" >"$m/mosquitto/config/$f"
	done
	grep -q "^listener $port 127.0.0.1\$" "$m/mosquitto/config/mosquitto.conf" || fail "mosquitto.conf: no 'listener 1883' line"
	printf 's3cret\r\n' >"$m/secrets/mqtt_password"
	# The account is the one the compose file gives the broker.
	mqtt_user=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"]["mosquitto"]["environment"]["MQTT_USERNAME"])' "$tmp/config.yml")
	MQTT_USERNAME=$mqtt_user sh "$m/mosquitto/config/start.sh" >"$m/log" 2>&1 &
	broker=$!
	pids+=("$broker")
	up=""
	for _ in $(seq 100); do
		if MQTT_USERNAME=$mqtt_user sh "$m/mosquitto/config/healthcheck.sh" 2>/dev/null; then
			up=1
			break
		fi
		kill -0 "$broker" 2>/dev/null || break
		sleep 0.1
	done
	[[ -n $up ]] || fail "mosquitto did not become healthy:
$(cat "$m/log")"
	# The account is the one exlive2mqtt uses: the password without its line end.
	# shellcheck disable=SC2016 # $SYS is a topic
	mosquitto_sub -h 127.0.0.1 -p "$port" -u "$mqtt_user" -P s3cret -t '$SYS/broker/version' -C 1 -W 5 >/dev/null ||
		fail "mosquitto: the stack's account cannot log in"
	# shellcheck disable=SC2016 # $SYS is a topic
	if mosquitto_sub -h 127.0.0.1 -p "$port" -t '$SYS/broker/version' -C 1 -W 5 >/dev/null 2>&1; then
		fail "mosquitto: an anonymous client got in"
	fi
	if MQTT_USERNAME=nobody sh "$m/mosquitto/config/healthcheck.sh" 2>/dev/null; then
		fail "mosquitto: the health check passed for an unknown account"
	fi

	# --- 6. the stack's settings, end to end, without containers ---------
	# exlive2mqtt with exactly the environment compose gives it (.env.example
	# and docker-compose.yml), the container's names and paths swapped for
	# this machine's, against the simulator and this broker: it must become
	# ready, and stop cleanly on SIGTERM.
	step "the stack's settings: exlive2mqtt against exlive-sim and this mosquitto"
	free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
	sim_port=$(free_port)
	http_port=$(free_port)
	sim_args=$(python3 -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["services"]["exlive-sim"]["command"]))' "$tmp/config.yml")
	# shellcheck disable=SC2086 # the compose command's words
	"$tmp/bin/exlive-sim" ${sim_args/-listen :1502/-listen 127.0.0.1:$sim_port} >"$tmp/sim.log" 2>&1 &
	pids+=($!)
	# The container's names and paths, swapped for this machine's.
	mapfile -t bridge_env < <(python3 - "$tmp/config.yml" <<PY
import sys, yaml
env = yaml.safe_load(open(sys.argv[1]))["services"]["exlive2mqtt"]["environment"]
here = {
    "EXLIVE_ADDR": ("exlive-sim:1502", "127.0.0.1:$sim_port"),
    "MQTT_URL": ("tcp://mosquitto:1883", "tcp://127.0.0.1:$port"),
    "EXLIVE_PASS_FILE": ("/run/secrets/exlive_password", "$stack/secrets/exlive_password"),
    "MQTT_PASSWORD_FILE": ("/run/secrets/mqtt_password", "$m/secrets/mqtt_password"),
    "MQTT_STORE_DIR": ("/data/mqtt", "$tmp/data/mqtt"),
    "HTTP_ADDR": (":9883", "127.0.0.1:$http_port"),
}
out = []
for k, v in sorted(env.items()):
    if k in here:
        if v != here[k][0]:
            sys.exit(f"exlive2mqtt's environment: {k}={v}, want {here[k][0]}")
        v = here[k][1]
    out.append(f"{k}={v}")
print("\n".join(out))
PY
	)
	[[ ${#bridge_env[@]} -gt 6 ]] || fail "exlive2mqtt's environment could not be read from the compose file"
	env -i "${bridge_env[@]}" "$tmp/bin/exlive2mqtt" >"$tmp/bridge.log" 2>&1 &
	bridge=$!
	pids+=("$bridge")
	ready=""
	for _ in $(seq 150); do
		if env -i "HTTP_ADDR=127.0.0.1:$http_port" "$tmp/bin/exlive2mqtt" healthcheck >/dev/null 2>&1; then
			ready=1
			break
		fi
		kill -0 "$bridge" 2>/dev/null || break
		sleep 0.1
	done
	[[ -n $ready ]] || fail "exlive2mqtt with the stack's settings did not become ready:
$(tail -20 "$tmp/bridge.log")"
	if grep -q '"level":"warn"' "$tmp/bridge.log"; then
		fail "exlive2mqtt warned with the stack's settings:
$(grep '"level":"warn"' "$tmp/bridge.log")"
	fi
	[[ -d $tmp/data/mqtt ]] || fail "exlive2mqtt did not create MQTT_STORE_DIR"
	kill -TERM "$bridge"
	wait "$bridge" || fail "exlive2mqtt exited $? on SIGTERM:
$(tail -20 "$tmp/bridge.log")"

	kill "$broker"
	wait "$broker" || true
	[[ -s $m/mosquitto/data/mosquitto.db ]] || fail "mosquitto: nothing persisted in its data directory"
else
	step "mosquitto not run (needs root, mosquitto, its user and mosquitto_sub)"
fi

# --- 7. deploy/prometheus ----------------------------------------------------
# promtool comes from Debian's prometheus package. Only the package's files
# are unpacked, not installed: installing it would start a Prometheus server.
promtool=$(command -v promtool || true)
if [[ -z $promtool ]]; then
	step "fetching promtool (Debian's prometheus package, unpacked, no server)"
	export DEBIAN_FRONTEND=noninteractive
	(cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get download prometheus >/dev/null; }; }) ||
		fail "could not download Debian's prometheus package for promtool"
	dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/prometheus"
	promtool=$tmp/prometheus/usr/bin/promtool
fi
step "promtool: $("$promtool" --version 2>&1 | head -1)"
"$promtool" check config deploy/prometheus/prometheus.yml || fail "deploy/prometheus/prometheus.yml: promtool check config failed"
"$promtool" check rules deploy/prometheus/alerts.yml || fail "deploy/prometheus/alerts.yml: promtool check rules failed"
"$promtool" test rules deploy/prometheus/alerts_test.yml || fail "deploy/prometheus/alerts_test.yml: the alerts' unit tests failed"
python3 -m json.tool deploy/grafana/exlive2mqtt.json >/dev/null || fail "deploy/grafana/exlive2mqtt.json is not JSON"

step "ok"
