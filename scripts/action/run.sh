#!/usr/bin/env bash
# The step of runrollback's GitHub Action (action.yml): check the inputs,
# install a released runrollback verified against the release's checksums.txt,
# then exec it, so that runrollback is the process the runner signals when the
# job is cancelled (docs/github-actions.md, "Cancellation").
#
# Inputs arrive as INPUT_<NAME> environment variables (action.yml maps them).
# Nothing from an input is ever evaluated by a shell. Exit codes before
# runrollback runs: 2 for a bad input, 1 for a failed install; after that,
# runrollback's own.
#
# Tests: internal/release/action_test.go runs this script with bash against a
# local release server and the fake Cloud Run. Keep it working on bash 3.2
# (macOS runners): no mapfile, no ${x,,}, no associative arrays.
set -euo pipefail

# annotate prints a workflow command; the message is escaped the way the
# runner's toolkit escapes data, so it cannot end the command or start another.
annotate() {
  local kind=$1 msg=$2
  msg=${msg//'%'/'%25'}
  msg=${msg//$'\r'/'%0D'}
  msg=${msg//$'\n'/'%0A'}
  printf '::%s title=runrollback action::%s\n' "$kind" "$msg"
}
fail() {
  local code=$1
  shift
  annotate error "$*"
  exit "$code"
}
usage() { fail 2 "$@"; }

# Cancelled while installing: stop the download, change nothing, exit.
child=
on_signal() {
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; fi
  annotate warning "cancelled before runrollback started; nothing was changed"
  exit 130
}
trap on_signal INT TERM

command=${INPUT_COMMAND:-}
case $command in
  test | guard | rollback | recover | status | snapshot | probe) ;;
  '') usage "the command input is required: test, guard, rollback, recover, status, snapshot or probe" ;;
  *) usage "command \"$command\" is not one of test, guard, rollback, recover, status, snapshot, probe" ;;
esac

# Inputs that only some commands take: refuse them elsewhere rather than drop them.
only() { # only VARIABLE INPUT COMMAND...
  local value=${!1:-} name=$2 c
  shift 2
  [ -n "$value" ] || return 0
  for c in "$@"; do [ "$command" = "$c" ] && return 0; done
  usage "the $name input applies to $* only, not to $command"
}
only INPUT_CANDIDATE_TAG candidate_tag guard
only INPUT_RESTORE_FROM restore_from guard rollback
only INPUT_BREAK break test
only INPUT_SHARD shard test recover
only INPUT_NOTIFY_URL notify_url test guard
only INPUT_OUT out snapshot
only INPUT_EXPECT_VERSION expect_version test guard rollback recover status probe
only INPUT_HEALTH_PATH health_path test guard rollback recover status probe
only INPUT_URL url test guard rollback recover status probe
if [ "$command" = probe ] && [ -z "${INPUT_URL:-}" ]; then
  usage "probe needs the url input"
fi
if [ -n "${INPUT_CANDIDATE_TAG:-}" ] && [ -n "${INPUT_RESTORE_FROM:-}" ]; then
  usage "candidate_tag and restore_from both given: a candidate guard keeps the prior split itself"
fi

version=${INPUT_VERSION:-latest}
if [ "$version" != latest ]; then
  if ! printf '%s' "$version" | grep -Eq '^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$'; then
    usage "version \"$version\" is neither latest nor a release tag such as v0.3.0"
  fi
  version=v${version#v}
fi

base=${INPUT_DOWNLOAD_URL:-${RUNROLLBACK_DOWNLOAD_URL:-https://github.com/runrollback/runrollback/releases}}
base=${base%/}
case $base in
  *@* | *[[:space:]]*) usage "download_url \"$base\" must not hold credentials or spaces" ;;
  https://?*) ;;
  http://127.0.0.1 | http://127.0.0.1[:/]* | http://localhost | http://localhost[:/]* | 'http://[::1]' | 'http://[::1]'[:/]*) ;;
  file:///*) ;;
  *) usage "download_url \"$base\" must be https:// (http:// only on loopback, or file:///)" ;;
esac
if [ "$version" = latest ]; then
  release_url=$base/latest/download
else
  release_url=$base/download/$version
fi

os=${RUNNER_OS:-$(uname -s)}
case $os in
  Linux | linux) goos=linux ;;
  macOS | Darwin) goos=darwin ;;
  Windows | MINGW* | MSYS* | CYGWIN*) goos=windows ;;
  *) fail 1 "no runrollback release for the runner OS \"$os\"" ;;
esac
arch=${RUNNER_ARCH:-$(uname -m)}
case $arch in
  X64 | x86_64 | amd64) goarch=amd64 ;;
  ARM64 | arm64 | aarch64) goarch=arm64 ;;
  *) fail 1 "no runrollback release for the runner architecture \"$arch\"" ;;
esac
# The names of .goreleaser.yaml's archives: runrollback_<os>_<arch>.tar.gz (.zip on Windows).
exe=runrollback
archive=runrollback_${goos}_${goarch}.tar.gz
if [ "$goos" = windows ]; then
  exe=runrollback.exe
  archive=runrollback_${goos}_${goarch}.zip
fi

# Relative paths in inputs are relative to working_directory.
if [ -n "${INPUT_WORKING_DIRECTORY:-}" ]; then
  cd -- "$INPUT_WORKING_DIRECTORY" || usage "working_directory \"$INPUT_WORKING_DIRECTORY\" cannot be entered"
fi
# absolute VARIABLE PATH sets VARIABLE to PATH made absolute.
absolute() {
  case $2 in
    *[$'\r\n']*) usage "the path \"$2\" has a line break in it" ;;
    /* | [A-Za-z]:[\\/]*) printf -v "$1" '%s' "$2" ;;
    *) printf -v "$1" '%s/%s' "$PWD" "$2" ;;
  esac
}

# More arguments: split as xargs splits (spaces and newlines, with quotes and
# backslashes honoured), which expands nothing.
extra=()
if [ -n "$(printf '%s' "${INPUT_ARGS:-}" | tr -d '[:space:]')" ]; then
  split=$(mktemp)
  if ! printf '%s\n' "$INPUT_ARGS" | xargs printf '%s\0' >"$split"; then
    rm -f "$split"
    usage "the args input could not be split (an unmatched quote?)"
  fi
  while IFS= read -r -d '' a; do extra+=("$a"); done <"$split"
  rm -f "$split"
fi

tmp_root=${RUNNER_TEMP:-${TMPDIR:-/tmp}}

args=("$command")
services=$(printf '%s' "${INPUT_SERVICE:-}" | tr ',' '\n')
while IFS= read -r s; do
  s=$(printf '%s' "$s" | tr -d '[:space:]')
  if [ -n "$s" ]; then args+=(--service "$s"); fi
done <<EOF
$services
EOF
if [ -n "${INPUT_REGION:-}" ]; then args+=(--region "$INPUT_REGION"); fi
if [ -n "${INPUT_PROJECT_ID:-}" ]; then args+=(--project "$INPUT_PROJECT_ID"); fi
if [ -n "${INPUT_CANDIDATE_TAG:-}" ]; then args+=(--candidate "$INPUT_CANDIDATE_TAG"); fi
if [ -n "${INPUT_RESTORE_FROM:-}" ]; then args+=(--restore-from "$INPUT_RESTORE_FROM"); fi
if [ -n "${INPUT_EXPECT_VERSION:-}" ]; then args+=(--expect-version "$INPUT_EXPECT_VERSION"); fi
if [ -n "${INPUT_HEALTH_PATH:-}" ]; then args+=(--health-path "$INPUT_HEALTH_PATH"); fi
if [ -n "${INPUT_URL:-}" ]; then args+=(--url "$INPUT_URL"); fi
if [ -n "${INPUT_BREAK:-}" ]; then args+=(--break "$INPUT_BREAK"); fi
if [ -n "${INPUT_SHARD:-}" ]; then args+=(--shard "$INPUT_SHARD"); fi
# The webhook URL is a secret: through the environment, not the command line.
if [ -n "${INPUT_NOTIFY_URL:-}" ]; then export RUNROLLBACK_NOTIFY_URL=$INPUT_NOTIFY_URL; fi

# Reports (and the snapshot) go where the inputs say, by default under
# $RUNNER_TEMP/runrollback; their paths become outputs.
reports=$tmp_root/runrollback
absolute report "${INPUT_REPORT:-$reports/$command.report.json}"
absolute junit "${INPUT_JUNIT:-$reports/$command.junit.xml}"
args+=(--report "$report" --junit "$junit")
if [ "$command" = snapshot ]; then
  absolute snapshot "${INPUT_OUT:-$reports/snapshot.json}"
  if [ "$snapshot" = "$report" ] || [ "$snapshot" = "$junit" ]; then
    usage "out and report (or junit) name the same file $snapshot"
  fi
  args+=(--out "$snapshot")
fi
work=$(mktemp -d "$tmp_root/runrollback-install.XXXXXX")

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | awk '{print $1}'
  else
    shasum -a 256 "$1" | awk '{print $1}'
  fi
}

# download URL FILE, in the background so that a signal ends it at once.
download() {
  curl --fail --silent --show-error --location \
    --proto '=https,http,file' --proto-redir '=https' \
    --retry 3 --connect-timeout 20 --max-time 300 \
    --output "$2" "$1" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=
  return "$rc"
}

download "$release_url/checksums.txt" "$work/checksums.txt" ||
  fail 1 "could not download $release_url/checksums.txt: is $version a runrollback release?"
# A line is "<sha256>  <file>" (GoReleaser), or "<sha256> *<file>" (binary mode).
want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$work/checksums.txt")
case $want in
  '') fail 1 "checksums.txt of $version has no line for $archive: refusing to install an unverified binary" ;;
  *[!0-9a-f]* | *$'\n'*) fail 1 "checksums.txt of $version has a bad or duplicate line for $archive" ;;
esac
[ ${#want} -eq 64 ] || fail 1 "checksums.txt of $version has a bad line for $archive"

# One install per archive digest: a second step of the job reuses it after
# checking that the binary is still the one extracted.
dir=${RUNNER_TOOL_CACHE:-$tmp_root}/runrollback/$want
bin=$dir/$exe
if [ -x "$bin" ] && [ -f "$dir/$exe.sha256" ] && [ "$(sha256 "$bin")" = "$(cat "$dir/$exe.sha256")" ]; then
  echo "runrollback: reusing $bin (from $archive, sha256 $want)"
else
  download "$release_url/$archive" "$work/$archive" ||
    fail 1 "could not download $release_url/$archive"
  got=$(sha256 "$work/$archive")
  if [ "$got" != "$want" ]; then
    fail 1 "$archive from $release_url has sha256 $got, but checksums.txt says $want: refusing to install it"
  fi
  mkdir -p "$work/x"
  case $archive in
    *.zip)
      if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$work/$archive" "$exe" -d "$work/x" || fail 1 "could not extract $exe from $archive"
      else
        pwsh -NoProfile -Command "Expand-Archive -LiteralPath '$work/$archive' -DestinationPath '$work/x' -Force" ||
          fail 1 "could not extract $archive"
      fi
      ;;
    *) tar -xzf "$work/$archive" -C "$work/x" "$exe" || fail 1 "could not extract $exe from $archive" ;;
  esac
  [ -f "$work/x/$exe" ] || fail 1 "$archive has no $exe"
  chmod 0755 "$work/x/$exe"
  mkdir -p "$dir"
  sha256 "$work/x/$exe" >"$dir/$exe.sha256"
  mv -f "$work/x/$exe" "$bin"
  echo "runrollback: installed $bin from $release_url/$archive (sha256 $want, as in checksums.txt)"
fi
rm -rf "$work"

# The binary says which version it is; a pinned version must match.
version_line=$("$bin" --version) || fail 1 "$bin --version failed"
installed=$(printf '%s\n' "$version_line" | awk 'NR == 1 { print $2 }')
echo "$version_line"
if [ "$version" != latest ] && [ "$installed" != "$version" ]; then
  fail 1 "the $version release holds runrollback $installed"
fi
if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$dir" >>"$GITHUB_PATH"
fi

mkdir -p "$(dirname "$report")" "$(dirname "$junit")"
outputs="junit=$junit"$'\n'"version=$installed"
if [ "$command" = snapshot ]; then
  mkdir -p "$(dirname "$snapshot")"
  outputs+=$'\n'"snapshot=$snapshot"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  printf '%s\n' "$outputs" >>"$GITHUB_OUTPUT"
fi

# From here on runrollback is this process: the runner's SIGINT reaches it.
trap - INT TERM
exec "$bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
