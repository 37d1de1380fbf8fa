#!/usr/bin/env bash
# Installs ocinet-hook, ocinet-shim, ocinet-agent and ocinet-resolver (the overlay's agent and the
# names' resolver, started by the hook) under a prefix, with a podman hooks.d file, ocinet-cni as
# the CNI plugin `ocinet`, and ocinet-docker (Docker's network plugin) with its systemd unit;
# records every file and directory it creates so that --uninstall removes exactly those.
#
#   scripts/install.sh [--prefix DIR] [--hooks-dir DIR] [--cni-dir DIR]... [--unit-dir DIR] [--state-root DIR] [--config-dir DIR]
#   scripts/install.sh --uninstall [--prefix DIR]
#
# --prefix      default /usr/local; binaries go to PREFIX/bin
# --hooks-dir   default PREFIX/share/containers/oci/hooks.d (podman reads /usr/share/... and
#               /etc/containers/oci/hooks.d by default; otherwise pass podman --hooks-dir)
# --cni-dir     a CNI plugin directory to install `ocinet` into (made if missing), repeatable;
#               default: those of /usr/lib/cni (Debian's, podman's) and /opt/cni/bin
#               (containerd's) that exist; `--cni-dir none`: no CNI plugin
# --unit-dir    where ocinet-docker.service and .socket go; default PREFIX/lib/systemd/system
#               (systemd reads /usr/local/lib/systemd/system); then
#               `systemctl enable --now ocinet-docker.socket`
# --state-root, --config-dir: baked into the hook's and the plugin's arguments (defaults: their own,
#               /run/ocinet and /etc/ocinet)
# Builds the release binaries first unless OCINET_BIN_DIR names a directory that has them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local hooks_dir="" unit_dir="" state_root="" config_dir="" uninstall=0 cni_dirs=() cni_asked=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --hooks-dir) hooks_dir=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --cni-dir) cni_asked=1; [ "$2" = none ] || cni_dirs+=("$2"); shift 2 ;;
    --state-root) state_root=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    *) echo "install.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
case $prefix in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
manifest=$prefix/share/ocinet/install-manifest

if [ "$uninstall" = 1 ]; then
  [ -f "$manifest" ] || { echo "install.sh: nothing installed under $prefix ($manifest missing)" >&2; exit 1; }
  # Files first (the manifest last), then the directories this install created, deepest first,
  # and only if empty: anything else put there since stays.
  mapfile -t dirs < <(grep '^dir ' "$manifest" | cut -d' ' -f2- | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
  grep '^file ' "$manifest" | cut -d' ' -f2- | while IFS= read -r f; do rm -f -- "$f"; done
  rm -f -- "$manifest"
  for d in "${dirs[@]}"; do rmdir -- "$d" 2>/dev/null || true; done
  echo "ocinet removed from $prefix"
  exit 0
fi

bin_dir=${OCINET_BIN_DIR:-}
if [ -z "$bin_dir" ] || [ ! -x "$bin_dir/ocinet-hook" ] || [ ! -x "$bin_dir/ocinet-shim" ] \
  || [ ! -x "$bin_dir/ocinet-agent" ] || [ ! -x "$bin_dir/ocinet-resolver" ] || [ ! -x "$bin_dir/ocinet-cni" ] \
  || [ ! -x "$bin_dir/ocinet-docker" ]; then
  bin_dir=$("$here/scripts/build-release.sh" --bins)
fi
hooks_dir=${hooks_dir:-$prefix/share/containers/oci/hooks.d}
unit_dir=${unit_dir:-$prefix/lib/systemd/system}
case $unit_dir in /*) ;; *) echo "install.sh: --unit-dir must be absolute" >&2; exit 2 ;; esac
if [ "$cni_asked" = 0 ]; then
  for d in /usr/lib/cni /opt/cni/bin; do [ -d "$d" ] && cni_dirs+=("$d"); done
fi
for d in "${cni_dirs[@]}"; do
  case $d in /*) ;; *) echo "install.sh: --cni-dir must be absolute" >&2; exit 2 ;; esac
done

created=()
make_dir() { # creates a directory and each missing parent, remembering which it created
  local d=$1 missing=()
  while [ ! -d "$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
  for d in "${missing[@]}"; do mkdir -m 0755 -- "$d"; created+=("dir $d"); done
}
make_dir "$(dirname "$manifest")"
make_dir "$prefix/bin"
make_dir "$hooks_dir"
install -m 0755 "$bin_dir/ocinet-hook" "$prefix/bin/ocinet-hook"
install -m 0755 "$bin_dir/ocinet-shim" "$prefix/bin/ocinet-shim"
install -m 0755 "$bin_dir/ocinet-agent" "$prefix/bin/ocinet-agent"
install -m 0755 "$bin_dir/ocinet-resolver" "$prefix/bin/ocinet-resolver"
install -m 0755 "$bin_dir/ocinet-docker" "$prefix/bin/ocinet-docker"
install -m 0755 "$bin_dir/ocinet-cni" "$prefix/bin/ocinet-cni"
# CNI finds a plugin by its type in its directories: a link named for the type to the binary
# in the prefix, whose real path is beside the helpers it starts (ocinet-resolver for names,
# ocinet-agent for overlays).
cni_files=()
for d in "${cni_dirs[@]}"; do
  make_dir "$d"
  ln -sfn "$prefix/bin/ocinet-cni" "$d/ocinet"
  cni_files+=("$d/ocinet")
done

# One entry for both stages: the argv cannot differ per stage, so the hook takes its stage from
# the state's status ("auto").
args='"ocinet-hook"'
[ -n "$state_root" ] && args="$args, \"--root\", \"$state_root\""
[ -n "$config_dir" ] && args="$args, \"--config-dir\", \"$config_dir\""
cat > "$hooks_dir/ocinet.json" <<JSON
{
  "version": "1.0.0",
  "hook": {"path": "$prefix/bin/ocinet-hook", "args": [$args, "auto"]},
  "when": {"annotations": {"^io\\\\.ocinet\\\\.network\$": ".*"}},
  "stages": ["prestart", "poststop"]
}
JSON
# The Docker plugin's unit, with this install's paths.
make_dir "$unit_dir"
plugin_args=""
[ -n "$state_root" ] && plugin_args="$plugin_args --root $state_root"
[ -n "$config_dir" ] && plugin_args="$plugin_args --config-dir $config_dir"
sed -e "s|@BIN@|$prefix/bin|" -e "s|@ARGS@|$plugin_args|" "$here/docker/ocinet-docker.service" \
  > "$unit_dir/ocinet-docker.service"
install -m 0644 "$here/docker/ocinet-docker.socket" "$unit_dir/ocinet-docker.socket"
chmod 0644 "$unit_dir/ocinet-docker.service"
{
  printf '%s\n' "${created[@]}"
  printf 'file %s\n' "$prefix/bin/ocinet-hook" "$prefix/bin/ocinet-shim" "$prefix/bin/ocinet-agent" \
    "$prefix/bin/ocinet-resolver" "$prefix/bin/ocinet-docker" "$prefix/bin/ocinet-cni" "$unit_dir/ocinet-docker.service" \
    "$unit_dir/ocinet-docker.socket" "$hooks_dir/ocinet.json" "${cni_files[@]}"
} > "$manifest"
echo "ocinet installed: $prefix/bin/ocinet-hook, $prefix/bin/ocinet-shim, $prefix/bin/ocinet-agent, $prefix/bin/ocinet-resolver, $prefix/bin/ocinet-docker, $prefix/bin/ocinet-cni, $unit_dir/ocinet-docker.{service,socket}, $hooks_dir/ocinet.json${cni_files[*]:+, CNI plugin ${cni_files[*]}}"
