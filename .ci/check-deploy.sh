#!/usr/bin/env bash
# Checks the container and compose files without a Docker engine:
#  1. the Dockerfile's go build, run here with the same flags, gives static
#     binaries that report the injected version;
#  2. the Dockerfile follows the rules a container needs (hadolint-style),
#     and parses (dockerfile-utils lint, where npm is at hand);
#  3. the compose files: the demo (docker compose --profile demo up) is
#     valid in a fresh clone, with no .env and no secrets/; the production
#     files (docker-compose.production.yml over docker-compose.yml) refuse
#     without a .env, and with .env.example not filled in, saying what to
#     set, and are valid when set up as docs/deployment.md says; both wire
#     what they must;
#     the two-account example (examples/compose-two-accounts) refuses
#     without the second account, and keeps the two bridges apart;
#  4. .env.example names only real settings;
#  5. deploy/mosquitto: the scripts parse, and where mosquitto is installed
#     and we are root, the production broker starts from that config and
#     script, lets the stack's account in and refuses anonymous clients, and
#     the demo's broker starts from demo.conf and passes its health check;
#  6. then exlive2mqtt, with the environment compose gives its container in
#     each stack, becomes ready against exlive-sim and that stack's broker,
#     and stops cleanly;
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

# --- 3. the compose files ----------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
	step "installing docker-compose"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq docker-compose >/dev/null
fi
# A copy of what a user clones: no .env and no secrets/.
stack=$tmp/stack
mkdir -p "$stack"
cp -r docker-compose.yml docker-compose.production.yml .env.example Dockerfile deploy "$stack/"
production_files=docker-compose.yml:docker-compose.production.yml

composers=("docker-compose")
if docker compose version >/dev/null 2>&1; then
	composers+=("docker compose")
fi
for dc in "${composers[@]}"; do
	step "$dc: $($dc version 2>/dev/null | head -1)"
	# The demo: one command in a fresh clone.
	(cd "$stack" && $dc --profile demo config -q) ||
		fail "$dc --profile demo config: the demo needs set-up, or docker-compose.yml is not valid"
	# The production files refuse without a .env, and with .env.example
	# copied but not filled in, saying what to set.
	if out=$(cd "$stack" && COMPOSE_FILE=$production_files COMPOSE_PATH_SEPARATOR=: $dc config -q 2>&1); then
		fail "$dc: the production files were accepted with no .env"
	fi
	[[ $out == *"in .env (cp .env.example .env; see docs/deployment.md)"* ]] ||
		fail "$dc: with no .env the production files refuse without saying what to do: $out"
	cp "$stack/.env.example" "$stack/.env"
	if out=$(cd "$stack" && $dc config -q 2>&1); then
		fail "$dc: .env.example copied and not filled in was accepted"
	fi
	[[ $out == *"set EXLIVE_ADDR in .env to your platform's host:port"* ]] ||
		fail "$dc: with .env.example as it is, compose does not ask for EXLIVE_ADDR: $out"
	rm "$stack/.env"
done
(cd "$stack" && docker-compose --profile demo config) >"$tmp/demo.yml"

# The user's first steps for a platform of theirs, as docs/deployment.md
# says; the platform here is the demo's simulator, for step 6.
sed -e 's/^EXLIVE_ADDR=$/EXLIVE_ADDR=exlive-sim:1502/' -e 's/^EXLIVE_USER=$/EXLIVE_USER=exlive/' \
	"$stack/.env.example" >"$stack/.env"
mkdir -m 700 "$stack/secrets"
printf 000000 >"$stack/secrets/exlive_password"
printf 'check-%s\n' "$RANDOM" >"$stack/secrets/mqtt_password"
chmod 644 "$stack/secrets/"*
for dc in "${composers[@]}"; do
	(cd "$stack" && $dc config -q) ||
		fail "$dc config: the production stack, set up as docs/deployment.md says, is not valid"
	(cd "$stack" && $dc --profile demo config -q) || fail "$dc --profile demo config with a .env: not valid"
done
# The resolved production files, in docker-compose v1's layout.
(cd "$stack" && docker-compose config) >"$tmp/config.yml"

# Two accounts into one broker (examples/compose-two-accounts, set up as
# docs/scaling.md says), in a copy of the production stack: it refuses
# without the second account's settings, saying what to set, and is valid,
# with the two bridges kept apart, with them.
step "compose: two accounts into one broker"
two=$tmp/two
cp -r "$stack" "$two"
mkdir -p "$two/examples"
cp -r examples/compose-two-accounts "$two/examples/"
sed -i 's|^COMPOSE_FILE=.*|COMPOSE_FILE=docker-compose.yml:docker-compose.production.yml:examples/compose-two-accounts/docker-compose.yml|' "$two/.env"
for dc in "${composers[@]}"; do
	if out=$(cd "$two" && $dc config -q 2>&1); then
		fail "$dc: the two-account example was accepted without EXLIVE2MQTT_B_ADDR"
	fi
	[[ $out == *"set EXLIVE2MQTT_B_ADDR in .env"* ]] ||
		fail "$dc: without EXLIVE2MQTT_B_ADDR the two-account example does not say what to set: $out"
done
printf 'EXLIVE2MQTT_B_ADDR=exlive-sim:1502\nEXLIVE2MQTT_B_USER=exlive\n' >>"$two/.env"
printf 000000 >"$two/secrets/exlive_password_b"
chmod 644 "$two/secrets/exlive_password_b"
for dc in "${composers[@]}"; do
	(cd "$two" && $dc config -q) ||
		fail "$dc config: the two-account example, set up as docs/scaling.md says, is not valid"
done
(cd "$two" && docker-compose config) >"$tmp/two.yml"
python3 - "$tmp/two.yml" "$two" <<'EOF' || fail "examples/compose-two-accounts does not keep the two bridges apart"
import os, sys, yaml

cfg = yaml.safe_load(open(sys.argv[1]))
two = sys.argv[2]
problems = []
s = cfg["services"]
bridges = [n for n, v in s.items() if n.startswith("exlive2mqtt") and "production" in v.get("profiles", [])]
if sorted(bridges) != ["exlive2mqtt", "exlive2mqtt-b"]:
    problems.append(f"the production profile runs the bridges {sorted(bridges)}, want exlive2mqtt and exlive2mqtt-b")
else:
    a, b = s["exlive2mqtt"], s["exlive2mqtt-b"]
    ea, eb = a["environment"], b["environment"]
    for k in ("MQTT_TOPIC_PREFIX", "MQTT_CLIENT_ID", "EXLIVE_PASS_FILE"):
        if ea.get(k) == eb.get(k):
            problems.append(f"both bridges have {k}={ea.get(k)}")
    pa, pb = ea.get("MQTT_TOPIC_PREFIX", ""), eb.get("MQTT_TOPIC_PREFIX", "")
    for outer, inner in ((pa, pb), (pb, pa)):
        if inner.startswith(outer + "/bridge") or inner.startswith(outer + "/vehicles"):
            problems.append(f"prefix {inner} is inside {outer}'s own topics")
    if ea.get("MQTT_URL") != eb.get("MQTT_URL"):
        problems.append(f"the bridges go to different brokers: {ea.get('MQTT_URL')} and {eb.get('MQTT_URL')}")
    if eb.get("MQTT_USERNAME") != s["mosquitto"]["environment"].get("MQTT_USERNAME"):
        problems.append("the second bridge does not log in with the broker's account")
    def data(svc):
        return {v.split(":")[0] for v in svc.get("volumes", []) if v.endswith(":/data") or v.endswith(":/data:rw")}
    if not data(a) or data(a) == data(b):
        problems.append(f"the bridges share their /data volume: {data(a)} {data(b)}")
    def published(svc):
        return {str(p).rsplit(":", 1)[0] for p in svc.get("ports", [])}
    if published(a) & published(b):
        problems.append(f"the bridges publish the same host port: {published(a) & published(b)}")
    secrets = {sec if isinstance(sec, str) else sec["source"] for sec in b.get("secrets", [])}
    if "exlive_password_b" not in secrets or cfg["secrets"]["exlive_password_b"]["file"] != os.path.join(two, "secrets", "exlive_password_b"):
        problems.append("the second bridge's password is not secrets/exlive_password_b")
    if eb.get("EXLIVE_ADDR") != "exlive-sim:1502" or eb.get("EXLIVE_USER") != "exlive":
        problems.append("the second bridge's EXLIVE_ADDR and EXLIVE_USER are not .env's EXLIVE2MQTT_B_ADDR and _USER")
    if eb.get("EXLIVE_PASS_FILE") != "/run/secrets/exlive_password_b":
        problems.append("the second bridge's EXLIVE_PASS_FILE is not its secret")
for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

# What each stack must wire, read from the resolved files (docker-compose
# depends on python3-yaml, so it is here). docker-compose v1 lists every
# service whatever the profile: which ones each path starts is worked out
# here, as compose v2 does.
step "compose wiring, demo and production"
python3 - "$tmp/demo.yml" "$tmp/config.yml" "$root/Dockerfile" "$stack" <<'EOF' || fail "the compose files do not wire the stacks as they must"
import os, re, sys, yaml

demo = yaml.safe_load(open(sys.argv[1]))
prod = yaml.safe_load(open(sys.argv[2]))
targets = set(re.findall(r"^FROM .* AS ([a-z0-9_-]+)$", open(sys.argv[3]).read(), re.M))
stack = sys.argv[4]
problems = []

def want(cond, msg):
    if not cond:
        problems.append(msg)

def source(sec):
    return sec["source"] if isinstance(sec, dict) else sec

def started(cfg, profiles):
    return {n for n, s in cfg["services"].items() if not s.get("profiles") or set(s["profiles"]) & profiles}

def secret_files(cfg, name):
    return {source(sec): cfg["secrets"][source(sec)]["file"] for sec in cfg["services"][name].get("secrets", [])}

for label, cfg in (("demo", demo), ("production", prod)):
    for name, s in cfg["services"].items():
        want(s.get("restart") in ("unless-stopped", "always"), f"{label} {name}: no restart policy")
        b = s.get("build")
        if b:
            want(b.get("target") in targets, f"{label} {name}: build target {b.get('target')} is not a stage of the Dockerfile")
        for sec in s.get("secrets", []):
            want(source(sec) in cfg.get("secrets", {}), f"{label} {name}: secret {source(sec)} is not defined")
    m = cfg["services"]["mosquitto"]
    want(m["image"].startswith("eclipse-mosquitto:2"), f"{label} mosquitto: not eclipse-mosquitto:2")
    want(any("healthcheck.sh" in t for t in m["healthcheck"]["test"]), f"{label} mosquitto: no healthcheck")
    want(any(v.endswith(":/mosquitto/config:ro") for v in m["volumes"]), f"{label} mosquitto: config not mounted read-only")
    want(any(v.endswith(":/mosquitto/data:rw") or v.endswith(":/mosquitto/data") for v in m["volumes"]), f"{label} mosquitto: no persistence volume")
    e = cfg["services"]["exlive2mqtt"]
    env = e["environment"]
    want(env.get("EXLIVE_PASS_FILE") == "/run/secrets/exlive_password", f"{label} exlive2mqtt: EXLIVE_PASS_FILE is not the secret")
    want("EXLIVE_PASS" not in env and "MQTT_PASSWORD" not in env, f"{label} exlive2mqtt: a password in the environment")
    want(env.get("HTTP_ADDR") == ":9883", f"{label} exlive2mqtt: HTTP_ADDR is not :9883 (the port mapping and health check use it)")
    want(env.get("MQTT_STORE_DIR") == "/data/mqtt", f"{label} exlive2mqtt: MQTT_STORE_DIR is not in the volume")
    want(env.get("MQTT_URL", "").startswith("tcp://mosquitto:"), f"{label} exlive2mqtt: MQTT_URL does not point at mosquitto by default")
    want("healthcheck" not in e, f"{label} exlive2mqtt: the image's HEALTHCHECK is overridden")
    want(any(str(p).endswith(":9883/tcp") or str(p).endswith(":9883") for p in e.get("ports", [])), f"{label} exlive2mqtt: port 9883 not published")
    want(cfg["services"]["exlive-sim"].get("profiles") == ["demo"], f"{label} exlive-sim: not only in the demo profile")
want("mosquitto_sub" in open(os.path.join(stack, "deploy/mosquitto/healthcheck.sh")).read(), "mosquitto: health check is not mosquitto_sub")

# The demo: no .env, no secrets/, nothing to set up.
want(started(demo, {"demo"}) == {"exlive-sim", "exlive2mqtt", "mosquitto"}, f"demo: --profile demo starts {sorted(started(demo, {'demo'}))}")
want(started(demo, set()) == set(), f"demo: with no profile and no .env, {sorted(started(demo, set()))} would start (a half demo)")
for name in started(demo, {"demo"}):
    for src, f in secret_files(demo, name).items():
        # Compose does not check that a secret's file exists: the demo
        # must not need one the user has to write.
        want(os.path.isfile(f) and not f.startswith(os.path.join(stack, "secrets")), f"demo {name}: secret {src} is {f}, which a fresh clone does not have")
dm, de = demo["services"]["mosquitto"], demo["services"]["exlive2mqtt"]
want(dm["entrypoint"] == ["mosquitto", "-c", "/mosquitto/config/demo.conf"], f"demo mosquitto: entrypoint {dm['entrypoint']}, want demo.conf")
want(all(str(p).startswith("127.0.0.1:") for p in dm["ports"] + de["ports"]), "demo: a port published beyond 127.0.0.1 (the demo broker has no accounts)")
want(de["environment"].get("EXLIVE_ADDR", "").startswith("exlive-sim:"), "demo exlive2mqtt: EXLIVE_ADDR is not the simulator")
want("MQTT_PASSWORD_FILE" not in de["environment"] and "MQTT_USERNAME" not in de["environment"], "demo exlive2mqtt: logs in to a broker with no accounts")
want(open(os.path.join(stack, "deploy/demo/exlive_password")).read().strip() == "000000", "demo: deploy/demo/exlive_password is not the simulator's password")

# Production: passwords from secrets/, settings from .env.
want(started(prod, {"production"}) == {"exlive2mqtt", "mosquitto"}, f"production: starts {sorted(started(prod, {'production'}))}")
pm, pe = prod["services"]["mosquitto"], prod["services"]["exlive2mqtt"]
want(pm["entrypoint"] == ["/bin/sh", "/mosquitto/config/start.sh"], f"production mosquitto: entrypoint {pm['entrypoint']}, want start.sh")
want(pe["environment"].get("MQTT_PASSWORD_FILE") == "/run/secrets/mqtt_password", "production exlive2mqtt: MQTT_PASSWORD_FILE is not the secret")
want(pe["environment"].get("MQTT_USERNAME") == pm["environment"].get("MQTT_USERNAME"), "production: the bridge and the broker have different accounts")
for name in ("mosquitto", "exlive2mqtt"):
    for src, f in secret_files(prod, name).items():
        want(f == os.path.join(stack, "secrets", src), f"production {name}: secret {src} is {f}, not secrets/{src}")
want(pe["environment"].get("EXLIVE_ADDR") == "exlive-sim:1502" and pe["environment"].get("EXLIVE_USER") == "exlive",
     "production exlive2mqtt: EXLIVE_ADDR and EXLIVE_USER are not .env's")

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
	PUBLISH_* | EXLIVE2MQTT_* | COMPOSE_*) continue ;; # compose's own
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
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_healthy DIR PID [ACCOUNT]: waits for the broker PID to pass the health
# check as it was copied into DIR.
wait_healthy() {
	for _ in $(seq 100); do
		if MQTT_USERNAME=${3:-} sh "$1/mosquitto/config/healthcheck.sh" 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	fail "mosquitto from $1 did not become healthy:
$(cat "$1/log")"
}
mosquitto=$(command -v mosquitto || true)
[[ -z $mosquitto && -x /usr/sbin/mosquitto ]] && mosquitto=/usr/sbin/mosquitto
if [[ -n $mosquitto && $(id -u) == 0 ]] && id mosquitto >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; then
	step "mosquitto from deploy/mosquitto, as the production stack runs it ($($mosquitto -h 2>&1 | head -1))"
	# The container's paths moved under a temporary directory, the port to
	# a free one on the loopback address.
	m=$tmp/mosquitto
	mkdir -p "$m/mosquitto/config" "$m/secrets"
	# mosquitto reads its password file after dropping root for its user.
	chmod 711 "$tmp"
	port=$(free_port)
	for f in mosquitto.conf start.sh healthcheck.sh; do
		sed -e "s|/mosquitto/|$m/mosquitto/|g; s|/run/secrets/|$m/secrets/|g" \
			-e "s|^listener 1883\$|listener $port 127.0.0.1|; s|-p 1883|-p $port|; s|exec mosquitto |exec $mosquitto |" \
			"deploy/mosquitto/$f" >"$m/mosquitto/config/$f"
	done
	grep -q "^listener $port 127.0.0.1\$" "$m/mosquitto/config/mosquitto.conf" || fail "mosquitto.conf: no 'listener 1883' line"
	printf 's3cret\r\n' >"$m/secrets/mqtt_password"
	# The account is the one the compose files give the broker.
	mqtt_user=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"]["mosquitto"]["environment"]["MQTT_USERNAME"])' "$tmp/config.yml")
	MQTT_USERNAME=$mqtt_user sh "$m/mosquitto/config/start.sh" >"$m/log" 2>&1 &
	broker=$!
	pids+=("$broker")
	wait_healthy "$m" "$broker" "$mqtt_user"
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

	# The demo's broker: the demo's entrypoint and demo.conf, no accounts,
	# no secret. Its health check passes as an anonymous client.
	step "mosquitto from deploy/mosquitto, as the demo stack runs it"
	d=$tmp/demo-mosquitto
	mkdir -p "$d/mosquitto/config" "$d/mosquitto/data"
	chown mosquitto: "$d/mosquitto/data" # as the image's volume is
	demo_port=$(free_port)
	for f in demo.conf healthcheck.sh; do
		sed -e "s|/mosquitto/|$d/mosquitto/|g; s|/run/secrets/|$d/secrets/|g" \
			-e "s|^listener 1883\$|listener $demo_port 127.0.0.1|; s|-p 1883|-p $demo_port|" \
			"deploy/mosquitto/$f" >"$d/mosquitto/config/$f"
	done
	grep -q "^listener $demo_port 127.0.0.1\$" "$d/mosquitto/config/demo.conf" || fail "demo.conf: no 'listener 1883' line"
	mapfile -t entrypoint < <(python3 -c 'import sys, yaml; print("\n".join(yaml.safe_load(open(sys.argv[1]))["services"]["mosquitto"]["entrypoint"]))' "$tmp/demo.yml")
	[[ ${entrypoint[0]} == mosquitto ]] || fail "the demo's mosquitto entrypoint is '${entrypoint[*]}', want mosquitto -c …"
	entrypoint[0]=$mosquitto
	"${entrypoint[@]//\/mosquitto\//$d/mosquitto/}" >"$d/log" 2>&1 &
	demo_broker=$!
	pids+=("$demo_broker")
	wait_healthy "$d" "$demo_broker"

	# --- 6. the stacks' settings, end to end, without containers ---------
	# exlive2mqtt with exactly the environment compose gives it, demo and
	# production, the container's names and paths swapped for this
	# machine's, against the simulator and that stack's broker: it must
	# become ready, warn of nothing, and stop cleanly on SIGTERM.
	sim_port=$(free_port)
	sim_args=$(python3 -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["services"]["exlive-sim"]["command"]))' "$tmp/config.yml")
	# shellcheck disable=SC2086 # the compose command's words
	"$tmp/bin/exlive-sim" ${sim_args/-listen :1502/-listen 127.0.0.1:$sim_port} >"$tmp/sim.log" 2>&1 &
	pids+=($!)
	# bridge_ready STACK CONFIG BROKER_PORT MQTT_PASSWORD_FILE [SERVICE]
	bridge_ready() {
		local stack_name=$1 config=$2 broker_port=$3 mqtt_pass_file=$4 service=${5:-exlive2mqtt}
		local http_port data=$tmp/data-$1 log=$tmp/bridge-$1.log bridge ready=""
		step "the $stack_name stack's settings: exlive2mqtt against exlive-sim and its mosquitto"
		http_port=$(free_port)
		# The container's names and paths, swapped for this machine's; a
		# secret is the file compose would mount.
		local bridge_env
		mapfile -t bridge_env < <(python3 - "$config" "$sim_port" "$broker_port" "$mqtt_pass_file" "$data" "$http_port" "$service" <<'PY'
import sys, yaml
config, sim_port, broker_port, mqtt_pass_file, data, http_port, service = sys.argv[1:]
cfg = yaml.safe_load(open(config))
env = cfg["services"][service]["environment"]
# The bridge's own secret: exlive_password, or exlive_password_b.
secret = env.get("EXLIVE_PASS_FILE", "").removeprefix("/run/secrets/")
here = {
    "EXLIVE_ADDR": ("exlive-sim:1502", "127.0.0.1:" + sim_port),
    "MQTT_URL": ("tcp://mosquitto:1883", "tcp://127.0.0.1:" + broker_port),
    "EXLIVE_PASS_FILE": ("/run/secrets/" + secret, cfg["secrets"].get(secret, {}).get("file")),
    "MQTT_PASSWORD_FILE": ("/run/secrets/mqtt_password", mqtt_pass_file),
    "MQTT_STORE_DIR": ("/data/mqtt", data + "/mqtt"),
    "HTTP_ADDR": (":9883", "127.0.0.1:" + http_port),
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
		[[ ${#bridge_env[@]} -gt 5 ]] || fail "$stack_name: exlive2mqtt's environment could not be read from the compose file"
		env -i "${bridge_env[@]}" "$tmp/bin/exlive2mqtt" >"$log" 2>&1 &
		bridge=$!
		pids+=("$bridge")
		for _ in $(seq 150); do
			if env -i "HTTP_ADDR=127.0.0.1:$http_port" "$tmp/bin/exlive2mqtt" healthcheck >/dev/null 2>&1; then
				ready=1
				break
			fi
			kill -0 "$bridge" 2>/dev/null || break
			sleep 0.1
		done
		[[ -n $ready ]] || fail "$stack_name: exlive2mqtt with the stack's settings did not become ready:
$(tail -20 "$log")"
		if grep -q '"level":"warn"' "$log"; then
			fail "$stack_name: exlive2mqtt warned with the stack's settings:
$(grep '"level":"warn"' "$log")"
		fi
		[[ -d $data/mqtt ]] || fail "$stack_name: exlive2mqtt did not create MQTT_STORE_DIR"
		kill -TERM "$bridge"
		wait "$bridge" || fail "$stack_name: exlive2mqtt exited $? on SIGTERM:
$(tail -20 "$log")"
	}
	bridge_ready production "$tmp/config.yml" "$port" "$m/secrets/mqtt_password"
	bridge_ready demo "$tmp/demo.yml" "$demo_port" ""
	bridge_ready two-accounts "$tmp/two.yml" "$port" "$m/secrets/mqtt_password" exlive2mqtt-b

	for b in "$broker:$m" "$demo_broker:$d"; do
		kill "${b%%:*}"
		wait "${b%%:*}" || true
		[[ -s ${b#*:}/mosquitto/data/mosquitto.db ]] || fail "mosquitto from ${b#*:}: nothing persisted in its data directory"
	done
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
