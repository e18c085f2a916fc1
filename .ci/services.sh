#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis for the integration tests, bound to 127.0.0.1 only.
#
#   eval "$(.ci/services.sh start)"   # install if missing, start (or reuse), print the env vars
#   npm run test:integration
#   .ci/services.sh stop              # stop both and delete their data
#   .ci/services.sh env               # print the env vars of running services
#
# Or source it and call services_start / services_stop (what .ci/run does); services_start
# exports PGHOST PGPORT PGUSER PGDATABASE REDIS_URL into the calling shell.
#
# Settings (environment):
#   SERVICES_DIR  state directory (default: ${TMPDIR:-/tmp}/asyncbackoff-services-<uid>)
#   PG_PORT       preferred PostgreSQL port (default 55432; the next free one is used if taken)
#   REDIS_PORT    preferred Redis port (default 56379; likewise)
# Running it twice reuses the running servers. As root, PostgreSQL runs as the `postgres` user.

_svc_log() { printf '[services] %s\n' "$*" >&2; }

_svc_dir() {
  printf '%s' "${SERVICES_DIR:-${TMPDIR:-/tmp}/asyncbackoff-services-$(id -u)}"
}

# Runs a command as the user owning the PostgreSQL cluster (`postgres` when we are root).
_svc_as_pg() {
  if [[ ${EUID} -eq 0 ]]; then
    if command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

_svc_port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_svc_free_port() {
  local port=$1 last=$(($1 + 50))
  while ((port <= last)); do
    if ! _svc_port_in_use "${port}"; then
      printf '%s' "${port}"
      return 0
    fi
    port=$((port + 1))
  done
  _svc_log "no free port in $1..${last}"
  return 1
}

_svc_pg_bindir() {
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -z ${dir} ]] && command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir)
  fi
  [[ -n ${dir} && -x ${dir}/initdb ]] || return 1
  printf '%s' "${dir}"
}

_svc_install() {
  local missing=()
  _svc_pg_bindir >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  ((${#missing[@]} == 0)) && return 0

  local sudo=()
  if [[ ${EUID} -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      _svc_log "missing ${missing[*]} and not root: install them (apt-get install ${missing[*]})"
      return 1
    fi
  fi
  _svc_log "installing ${missing[*]} with apt-get"
  # Keep the packages' own init scripts from starting default instances (5432/6379) where no
  # init system would supervise them; our servers are started below. Only if no policy exists.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e ${policy} ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "${policy}" >/dev/null
    "${sudo[@]}" chmod 755 "${policy}"
    added_policy=1
  fi
  local rc=0
  {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
  } || rc=$?
  if ((added_policy)); then "${sudo[@]}" rm -f "${policy}"; fi
  if ((rc != 0)); then
    _svc_log "apt-get failed (exit ${rc})"
    return "${rc}"
  fi
  _svc_pg_bindir >/dev/null || {
    _svc_log 'PostgreSQL installed but initdb not found under /usr/lib/postgresql/*/bin'
    return 1
  }
}

_svc_pg_running() {
  local dir bindir
  dir=$(_svc_dir)
  bindir=$(_svc_pg_bindir) || return 1
  [[ -f ${dir}/pg/PG_VERSION ]] && _svc_as_pg "${bindir}/pg_ctl" status -D "${dir}/pg" >/dev/null 2>&1
}

_svc_redis_running() {
  local dir port
  dir=$(_svc_dir)
  [[ -f ${dir}/redis.port ]] || return 1
  port=$(<"${dir}/redis.port")
  [[ $(redis-cli -h 127.0.0.1 -p "${port}" ping 2>/dev/null) == PONG ]]
}

_svc_start_pg() {
  local dir bindir port
  dir=$(_svc_dir)
  bindir=$(_svc_pg_bindir)
  if _svc_pg_running; then
    _svc_log "PostgreSQL already running (port $(<"${dir}/pg.port"))"
    return 0
  fi
  rm -rf "${dir}/pg" "${dir}/pg-run"
  mkdir -p "${dir}/pg" "${dir}/pg-run"
  chmod 700 "${dir}/pg"
  if [[ ${EUID} -eq 0 ]]; then
    chmod 755 "${dir}"
    chown postgres: "${dir}/pg" "${dir}/pg-run"
  fi
  port=$(_svc_free_port "${PG_PORT:-55432}")
  _svc_log "initdb in ${dir}/pg"
  _svc_as_pg "${bindir}/initdb" -D "${dir}/pg" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync >"${dir}/initdb.log" 2>&1 || {
    cat "${dir}/initdb.log" >&2
    return 1
  }
  cat >>"${dir}/pg/postgresql.conf" <<EOF

# asyncbackoff integration tests: local only, no durability
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${dir}/pg-run'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
shared_buffers = 32MB
EOF
  _svc_log "starting PostgreSQL on 127.0.0.1:${port}"
  _svc_as_pg "${bindir}/pg_ctl" start -D "${dir}/pg" -l "${dir}/pg-run/postgres.log" -w -t 60 \
    >/dev/null || {
    cat "${dir}/pg-run/postgres.log" >&2 || true
    return 1
  }
  printf '%s' "${port}" >"${dir}/pg.port"
  local i
  for ((i = 0; i < 60; i++)); do
    if "${bindir}/pg_isready" -q -h 127.0.0.1 -p "${port}" -U postgres; then return 0; fi
    sleep 0.5
  done
  _svc_log 'PostgreSQL did not accept connections'
  return 1
}

_svc_start_redis() {
  local dir port
  dir=$(_svc_dir)
  if _svc_redis_running; then
    _svc_log "Redis already running (port $(<"${dir}/redis.port"))"
    return 0
  fi
  mkdir -p "${dir}/redis"
  port=$(_svc_free_port "${REDIS_PORT:-56379}")
  _svc_log "starting Redis on 127.0.0.1:${port}"
  printf '%s' "${port}" >"${dir}/redis.port"
  _svc_redis_launch "${port}"
}

# Starts redis-server on `port` with the state in ${dir}/redis (a dump.rdb there is loaded) and
# waits until it answers.
_svc_redis_launch() {
  local dir port=$1 i
  dir=$(_svc_dir)
  redis-server --bind 127.0.0.1 --port "${port}" --daemonize yes --save '' --appendonly no \
    --dir "${dir}/redis" --pidfile "${dir}/redis/redis.pid" --logfile "${dir}/redis/redis.log" \
    >/dev/null
  for ((i = 0; i < 200; i++)); do
    if [[ $(redis-cli -h 127.0.0.1 -p "${port}" ping 2>/dev/null) == PONG ]]; then return 0; fi
    sleep 0.05
  done
  _svc_log 'Redis did not accept connections'
  cat "${dir}/redis/redis.log" >&2 || true
  return 1
}

# Prints `export NAME=value` lines for the running services.
services_env() {
  local dir
  dir=$(_svc_dir)
  [[ -f ${dir}/pg.port && -f ${dir}/redis.port ]] || {
    _svc_log "services not started (no state in ${dir})"
    return 1
  }
  printf 'export PGHOST=127.0.0.1\n'
  printf 'export PGPORT=%s\n' "$(<"${dir}/pg.port")"
  printf 'export PGUSER=postgres\n'
  printf 'export PGDATABASE=postgres\n'
  printf 'export REDIS_URL=redis://127.0.0.1:%s\n' "$(<"${dir}/redis.port")"
}

# Installs (if needed) and starts both services, exports their env vars, prints them on stderr.
services_start() {
  local dir
  dir=$(_svc_dir)
  _svc_install || return 1
  mkdir -p "${dir}"
  _svc_start_pg || return 1
  _svc_start_redis || return 1
  local env
  env=$(services_env) || return 1
  eval "${env}"
  printf '%s\n' "${env}" >"${dir}/env"
  _svc_log 'ready:'
  sed 's/^/[services]   /' "${dir}/env" >&2
}

# Stops both services and deletes their state. Safe to call when nothing runs.
services_stop() {
  local dir bindir port
  dir=$(_svc_dir)
  [[ -d ${dir} ]] || return 0
  if _svc_pg_running; then
    bindir=$(_svc_pg_bindir)
    _svc_log 'stopping PostgreSQL'
    _svc_as_pg "${bindir}/pg_ctl" stop -D "${dir}/pg" -m immediate -w >/dev/null 2>&1 || true
  fi
  if [[ -f ${dir}/redis.port ]]; then
    port=$(<"${dir}/redis.port")
    if _svc_redis_running; then
      _svc_log 'stopping Redis'
      redis-cli -h 127.0.0.1 -p "${port}" shutdown nosave >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "${dir}/pg" "${dir}/pg-run" "${dir}/redis"
  rm -f "${dir}/pg.port" "${dir}/redis.port" "${dir}/env" "${dir}/initdb.log"
  rmdir "${dir}" 2>/dev/null || true
}

# ---- PostgreSQL fault injection (the integration tests stop, start and restart the server) ----
# Only the server in this SERVICES_DIR, keeping its data and port; each waits until it is done.
#   .ci/services.sh pg-stop      # fast shutdown: sessions are terminated (57P01), then it is down
#   .ci/services.sh pg-start     # start again on the same port and wait until it accepts connections
#   .ci/services.sh pg-restart   # both

_svc_pg_state() {
  local dir
  dir=$(_svc_dir)
  [[ -f ${dir}/pg.port && -f ${dir}/pg/PG_VERSION ]] || {
    _svc_log "no PostgreSQL state in ${dir} (start the services first; is SERVICES_DIR set?)"
    return 1
  }
}

services_pg_stop() {
  local dir bindir
  _svc_pg_state || return 1
  dir=$(_svc_dir)
  bindir=$(_svc_pg_bindir) || return 1
  _svc_pg_running || return 0
  _svc_as_pg "${bindir}/pg_ctl" stop -D "${dir}/pg" -m fast -w -t 30 >/dev/null
}

services_pg_start() {
  local dir bindir port i
  _svc_pg_state || return 1
  dir=$(_svc_dir)
  bindir=$(_svc_pg_bindir) || return 1
  port=$(<"${dir}/pg.port")
  if ! _svc_pg_running; then
    _svc_as_pg "${bindir}/pg_ctl" start -D "${dir}/pg" -l "${dir}/pg-run/postgres.log" -w -t 60 \
      >/dev/null || return 1
  fi
  for ((i = 0; i < 200; i++)); do
    if "${bindir}/pg_isready" -q -h 127.0.0.1 -p "${port}" -U postgres; then return 0; fi
    sleep 0.05
  done
  _svc_log 'PostgreSQL did not accept connections after the start'
  return 1
}

services_pg_restart() {
  services_pg_stop && services_pg_start
}
# ---- end of PostgreSQL fault injection ----

# ---- Redis fault injection (integration tests) -------------------------------------------------
# Only ever on the Redis this script started (its pid file and port file in $(_svc_dir)).
#
#   .ci/services.sh redis-pause     # SIGSTOP: the server stalls, connections stay open
#   .ci/services.sh redis-resume    # SIGCONT
#   .ci/services.sh redis-stop      # SHUTDOWN SAVE: the data is kept in dump.rdb for the restart
#   .ci/services.sh redis-restart   # start again on the same port, loading dump.rdb

_svc_redis_pid() {
  local dir pid
  dir=$(_svc_dir)
  [[ -f ${dir}/redis/redis.pid ]] || {
    _svc_log "no Redis pid file in ${dir}/redis"
    return 1
  }
  pid=$(<"${dir}/redis/redis.pid")
  [[ $(cat "/proc/${pid}/comm" 2>/dev/null) == redis-server* ]] || {
    _svc_log "process ${pid} is not our redis-server"
    return 1
  }
  printf '%s' "${pid}"
}

services_redis_pause() {
  local pid
  pid=$(_svc_redis_pid) || return 1
  kill -STOP "${pid}"
}

services_redis_resume() {
  local pid
  pid=$(_svc_redis_pid) || return 1
  kill -CONT "${pid}"
}

services_redis_stop() {
  local dir port pid i
  dir=$(_svc_dir)
  pid=$(_svc_redis_pid) || return 1
  port=$(<"${dir}/redis.port")
  redis-cli -h 127.0.0.1 -p "${port}" shutdown save >/dev/null 2>&1 || true
  # Stopped once the port refuses connections (the process itself lingers a second or so after
  # closing its sockets; redis-restart waits for it).
  for ((i = 0; i < 200; i++)); do
    _svc_port_in_use "${port}" || return 0
    sleep 0.01
  done
  _svc_log "Redis (pid ${pid}) did not stop"
  return 1
}

services_redis_restart() {
  local dir
  dir=$(_svc_dir)
  [[ -f ${dir}/redis.port ]] || {
    _svc_log "Redis was never started (no ${dir}/redis.port)"
    return 1
  }
  if _svc_redis_running; then return 0; fi
  local pid i
  if [[ -f ${dir}/redis/redis.pid ]]; then
    pid=$(<"${dir}/redis/redis.pid")
    for ((i = 0; i < 300; i++)); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.01
    done
  fi
  _svc_redis_launch "$(<"${dir}/redis.port")"
}
# ---- end of Redis fault injection -------------------------------------------------------------

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  case "${1:-start}" in
  start)
    services_start
    cat "$(_svc_dir)/env"
    ;;
  stop) services_stop ;;
  env) services_env ;;
  pg-stop) services_pg_stop ;;
  pg-start) services_pg_start ;;
  pg-restart) services_pg_restart ;;
  redis-pause) services_redis_pause ;;
  redis-resume) services_redis_resume ;;
  redis-stop) services_redis_stop ;;
  redis-restart) services_redis_restart ;;
  *)
    printf 'usage: %s [start|stop|env|pg-stop|pg-start|pg-restart|redis-pause|redis-resume|redis-stop|redis-restart]\n' "$0" >&2
    exit 2
    ;;
  esac
fi
