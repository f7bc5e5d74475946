#!/usr/bin/env bash
# Install Zhiva Viewer for the current user on Linux: an applications-menu entry that
# opens DICOM files, DICOMDIR media and zip archives ("Open with Zhiva Viewer" in a
# file manager, %F), and the handler of its configuration links
# (zhiva-viewer://oauth?token=...), so clicking one in the browser or a mail opens
# the app, which sets the server up from the token.
#
#   build/install-desktop.sh [BINARY]     install (default BINARY: dist/zhiva-viewer)
#   build/install-desktop.sh --uninstall  remove what install added
#
# BINARY is copied to ~/.local/bin/zhiva-viewer; the two .desktop files go to
# ~/.local/share/applications (XDG_DATA_HOME) with Exec= pointing at it. Files and
# links need one entry each: a desktop entry takes either files (%F) or URLs (%u),
# and a file-only entry is not given URLs of other schemes. The link entry is
# hidden from menus (NoDisplay). The link handler is registered with xdg-mime when
# xdg-utils is installed, else written to ~/.config/mimeapps.list (XDG_CONFIG_HOME)
# as xdg-mime would. No file type is made the default: the app is offered for
# application/dicom and application/zip, and the user picks it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir="${ZHIVA_BIN_DIR:-$HOME/.local/bin}"
apps_dir="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
mimeapps="${XDG_CONFIG_HOME:-$HOME/.config}/mimeapps.list"
desktop_name=zhiva-viewer.desktop
link_name=zhiva-viewer-link.desktop
scheme=x-scheme-handler/zhiva-viewer

# Remove our line from the [Default Applications] section of mimeapps.list.
drop_default() {
  [[ -f "$mimeapps" ]] || return 0
  local tmp
  tmp="$(mktemp "$mimeapps.XXXXXX")"
  grep -v -x -F -e "$scheme=$link_name" -e "$scheme=$desktop_name" "$mimeapps" >"$tmp" || true
  mv "$tmp" "$mimeapps"
}

# Add "scheme=desktop" under [Default Applications] (created when missing).
set_default() {
  mkdir -p "$(dirname "$mimeapps")"
  touch "$mimeapps"
  local tmp
  tmp="$(mktemp "$mimeapps.XXXXXX")"
  awk -v line="$scheme=$link_name" -v key="$scheme=" '
    index($0, key) == 1 { next }                       # an older handler of the scheme
    { print }
    $0 == "[Default Applications]" { print line; done = 1 }
    END { if (!done) { print ""; print "[Default Applications]"; print line } }
  ' "$mimeapps" >"$tmp"
  mv "$tmp" "$mimeapps"
}

if [[ "${1:-}" == "--uninstall" ]]; then
  rm -f "$apps_dir/$desktop_name" "$apps_dir/$link_name" "$bin_dir/zhiva-viewer"
  drop_default
  command -v update-desktop-database >/dev/null && update-desktop-database -q "$apps_dir" || true
  echo "Removed Zhiva Viewer from $bin_dir and $apps_dir."
  exit 0
fi

binary="${1:-dist/zhiva-viewer}"
if [[ ! -x "$binary" ]]; then
  echo "error: $binary is not an executable; build it first (make binary) or name it" >&2
  exit 2
fi
mkdir -p "$bin_dir" "$apps_dir"
install -m 0755 "$binary" "$bin_dir/zhiva-viewer.new"
mv -f "$bin_dir/zhiva-viewer.new" "$bin_dir/zhiva-viewer"
# Exec= with the absolute path: ~/.local/bin is not on every desktop session's PATH.
exec_path="$bin_dir/zhiva-viewer"
for name in "$desktop_name" "$link_name"; do
  sed "s|^Exec=zhiva-viewer |Exec=\"${exec_path//|/\\|}\" |" "build/$name" >"$apps_dir/$name.new"
  mv -f "$apps_dir/$name.new" "$apps_dir/$name"
done
if command -v xdg-mime >/dev/null; then
  xdg-mime default "$link_name" "$scheme"
else
  set_default
fi
command -v update-desktop-database >/dev/null && update-desktop-database -q "$apps_dir" || true
echo "Installed $exec_path, $apps_dir/$desktop_name and $apps_dir/$link_name;"
echo "zhiva-viewer:// links now open Zhiva Viewer, and DICOM files and zips offer it."
