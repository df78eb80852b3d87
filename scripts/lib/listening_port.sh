# Sourced by the project's shell scripts (bash). listening_port LOG PID: waits up to 60 s for the fathom
# server PID to log "listening on http://HOST:PORT" in LOG and prints PORT. Returns 1 when the server exited
# first, 2 when it never logged the line.
listening_port() {
  local log=$1 pid=$2 port=""
  for _ in $(seq 1 600); do
    port=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$log" 2>/dev/null | head -1 | sed 's/.*://') || true
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 2
}
