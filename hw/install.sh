#!/usr/bin/env bash
# hw/install.sh: turn a Raspberry Pi OS machine into a pen dock (or undo it).
#
#   sudo hw/install.sh [--root DIR] [--no-venv] [--source PATH] [--offline DIR] [--tech NAME]... [--sshd]
#                      [--simulated]
#   sudo hw/install.sh --uninstall [--purge] [--root DIR]
#
# Install sets up: system groups gpio, spi (if missing), pendock, pendock-web, pendock-tech;
# system users pendock (the daemon: groups gpio, spi) and pendock-web (the page: group
# pendock, the record's read-only group; no one else is in it); technicians (--tech) go
# in pendock-tech only and reach the record through the daemon's socket, never the file;
# the venv /opt/pendock/venv with the program; /etc/pendock/pendock.toml (only
# when missing: an upgrade keeps the clinic's config); /var/lib/pendock (2750, files 0640)
# and its backups folder (0700, files 0600): records are never changed, only their modes
# tightened (the daemon migrates the schema when it starts); the
# systemd units; the hardware watchdog feed; the boot config lines (SPI on, watchdog on)
# in one marked block; `pendock` on everyone's PATH (/usr/local/bin/pendock, which runs the
# venv's); then, on a running system, enables and (re)starts the services.
# Running it twice is the same as running it once.
#
# Every file is written durably (a temporary file beside it, fsync, rename, fsync of the
# folder) and the installer ends with a flush (sync): "Installed." means it is on disk, so
# a power cut right after it leaves a dock that boots (systemd/README.md).
#
# --offline DIR installs the program from the wheels in DIR alone (pip --no-index): DIR
# holds pen-dock's wheel and its dependencies' (`make wheels` builds them on a networked
# machine); without --source, pen-dock's wheel in DIR is the one installed.
#
# --simulated: a dock without its Pi (a test machine, the system test's guest): a drop-in
# sets PENDOCK_SIMULATED=yes for pendock.service, so the daemon runs on gpiozero's mock
# pins with the simulated pen. Refused on a Raspberry Pi; every install without the flag
# removes that drop-in again, so a clinic's dock never keeps it.
#
# Uninstall removes the units, the venv, the boot block, the users and the groups it made;
# it keeps the records (/var/lib/pendock) and the config (/etc/pendock) unless --purge.
#
# --root DIR installs into a scratch root (an image, or a test): users and groups go into
# DIR/etc/{passwd,group,shadow,gshadow} (which must exist), nothing is started, no venv.
set -euo pipefail

readonly REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly VENV_DIR=/opt/pendock/venv
readonly APP_DIR=/opt/pendock
readonly DATA_DIR=/var/lib/pendock
readonly CONFIG_DIR=/etc/pendock
readonly CONFIG_FILE=/etc/pendock/pendock.toml
readonly UNIT_DIR=/etc/systemd/system
readonly UNITS=(pendock.service pendock-web.service pendock-backup.service pendock-backup.timer)
readonly WATCHDOG_DROPIN=/etc/systemd/system.conf.d/pendock-watchdog.conf
readonly SSHD_DROPIN=/etc/ssh/sshd_config.d/pendock.conf
readonly PATH_LINK=/usr/local/bin/pendock
readonly SIMULATED_DROPIN=/etc/systemd/system/pendock.service.d/simulated.conf
readonly BLOCK_BEGIN="# BEGIN pen-dock"
readonly BLOCK_END="# END pen-dock"

ROOT=/
WANT_VENV=1
MODE=install
PURGE=0
WANT_SSHD=0
WANT_SIMULATED=0
SOURCE=$REPO
SOURCE_GIVEN=0
OFFLINE=
TECHS=()

say() { printf '%s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 2; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

parse_args() {
    local given="$*"
    while (($#)); do
        case $1 in
            --root) [[ $# -ge 2 ]] || die "--root needs a folder"; ROOT=$2; shift ;;
            --root=*) ROOT=${1#--root=} ;;
            --no-venv) WANT_VENV=0 ;;
            --source) [[ $# -ge 2 ]] || die "--source needs a wheel or project folder"; SOURCE=$2; SOURCE_GIVEN=1; shift ;;
            --offline) [[ $# -ge 2 ]] || die "--offline needs the folder of wheels (make wheels)"; OFFLINE=$2; shift ;;
            --tech) [[ $# -ge 2 ]] || die "--tech needs a user name"; TECHS+=("$2"); shift ;;
            --sshd) WANT_SSHD=1 ;;
            --simulated) WANT_SIMULATED=1 ;;
            --uninstall) MODE=uninstall ;;
            --purge) PURGE=1 ;;
            -h|--help) usage; exit 0 ;;
            *) die "unknown option '$1' (try --help)" ;;
        esac
        shift
    done
    [[ $PURGE == 0 || $MODE == uninstall ]] || die "--purge only goes with --uninstall"
    [[ $WANT_SIMULATED == 0 || $MODE == install ]] || die "--simulated only goes with an install"
    [[ $EUID == 0 ]] || die "must run as root (users, groups and /etc): try 'sudo $0 $given'"
    [[ -d $ROOT ]] || die "--root $ROOT is not a folder"
    if [[ -n $OFFLINE ]]; then
        [[ -d $OFFLINE ]] || die "--offline $OFFLINE is not a folder of wheels (make wheels builds one)"
        OFFLINE=$(cd "$OFFLINE" && pwd)
        if ((!SOURCE_GIVEN)); then
            local wheels=("$OFFLINE"/pen_dock-*.whl)
            [[ -f ${wheels[-1]} ]] || die "--offline $OFFLINE holds no pen_dock-*.whl: build it with make wheels, or name one with --source"
            SOURCE=${wheels[-1]}
        fi
    fi
    ROOT=$(cd "$ROOT" && pwd)
    if [[ $ROOT != / ]]; then
        for f in passwd group shadow gshadow; do
            [[ -f $ROOT/etc/$f ]] || die "scratch root $ROOT has no etc/$f; create it first (even a one-line root entry will do)"
        done
        if ((WANT_VENV)) && [[ $MODE == install ]]; then
            say "Not building the venv inside $ROOT: a venv only runs on the machine that built it (use --no-venv with --root)."
            WANT_VENV=0
        fi
    fi
}

# --- paths and account look-ups, always inside ROOT ---------------------------------------

at() { if [[ $ROOT == / ]]; then printf '%s' "$1"; else printf '%s%s' "$ROOT" "$1"; fi; }
root_args() { [[ $ROOT == / ]] || printf -- '--root\n%s\n' "$ROOT"; }
shadow_tool() { local tool=$1; shift; local extra; mapfile -t extra < <(root_args); "$tool" "${extra[@]}" "$@"; }
systemd_live() { [[ $ROOT == / && -d /run/systemd/system ]]; }

field_of() { awk -F: -v n="$2" -v f="$3" '$1 == n { print $f; exit }' "$(at "/etc/$1")"; }
has_group() { [[ -n $(field_of group "$1" 1) ]]; }
has_user() { [[ -n $(field_of passwd "$1" 1) ]]; }
uid_of() { field_of passwd "$1" 3; }
gid_of() { field_of group "$1" 3; }
in_group() {
    awk -F: -v g="$1" -v u="$2" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) found = 1 }
        END { exit !found }' "$(at /etc/group)"
}

# --- durable writes -----------------------------------------------------------------------
# A file the installer wrote but the disk never got is 0 bytes after a power cut: a unit
# cut to nothing is "masked", a dock that never starts. So each file goes to a temporary
# name beside its place, is fsynced, renamed over the old one (never a half-written file
# under the real name) and its folder fsynced (the rename itself); `sync FILE` is
# coreutils' fsync. The installer ends with flush_to_disk before it says "Installed.".

fsync_paths() { sync -- "$@"; }

ensure_folder() { # PATH (inside ROOT already): mkdir -p, each new folder's entry made durable
    local dir=$1 parent
    [[ -d $dir ]] && return 0
    parent=$(dirname "$dir")
    ensure_folder "$parent"
    mkdir "$dir"
    fsync_paths "$parent"
}

write_durably() { # SOURCE DEST(inside ROOT) [MODE UID GID]: replace DEST atomically and durably
    local src=$1 dest=$2 tmp
    tmp="$(dirname "$dest")/.$(basename "$dest").pendock-new"
    ensure_folder "$(dirname "$dest")"
    rm -f -- "$tmp"
    if (($# >= 5)); then
        install -m "$3" -o "$4" -g "$5" "$src" "$tmp"
    else # a FAT boot partition has no modes or owners: the bytes only
        cat "$src" >"$tmp"
    fi
    fsync_paths "$tmp"
    mv -f -- "$tmp" "$dest"
    fsync_paths "$(dirname "$dest")"
}

flush_to_disk() {
    # sync(2) waits on Linux until every file system has written its dirty data: the venv's
    # thousands of files, the users and groups, the units' enable links.
    sync
    say "Flushed everything to disk (sync)."
}

# --- install steps ------------------------------------------------------------------------

ensure_group() {
    if has_group "$1"; then
        say "Group $1 is already there."
    else
        shadow_tool groupadd --system "$1"
        say "Created group $1 ($2)."
    fi
}

ensure_user() { # NAME PRIMARY_GROUP "SUPPLEMENTARY GROUPS" COMMENT
    local name=$1 primary=$2 groups=$3 comment=$4 g
    if has_user "$name"; then
        say "User $name is already there."
    else
        shadow_tool useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --gid "$primary" --comment "$comment" "$name" 2> >(grep -v 'missing or non-executable shell' >&2)
        say "Created system user $name ($comment), no login shell."
    fi
    for g in $groups; do
        if ! in_group "$g" "$name"; then
            shadow_tool usermod --append --groups "$g" "$name"
            say "Added $name to group $g."
        fi
    done
}

ensure_dir() { # PATH MODE OWNER GROUP
    local path dir_uid dir_gid
    path=$(at "$1")
    dir_uid=$(uid_of "$3"); dir_gid=$(gid_of "$4")
    if [[ -d $path ]]; then
        if [[ $(stat -c %u "$path") != "$dir_uid" ]]; then
            # Kept records from an earlier install belong to a deleted user id: give them back.
            chown -R "$dir_uid:$dir_gid" "$path"
            say "Gave $1 and everything in it to $3:$4 (it was left by an earlier install)."
        fi
    else
        ensure_folder "$path"
        say "Created $1."
    fi
    chown "$dir_uid:$dir_gid" "$path"
    chmod "$2" "$path"
    fsync_paths "$path"
}

copy_file() { # SOURCE DEST MODE: reports whether DEST changed
    local src=$1 dest
    dest=$(at "$2")
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        chmod "$3" "$dest"
        fsync_paths "$dest"
        say "$2 is up to date."
    else
        write_durably "$src" "$dest" "$3" 0 0
        say "Installed $2."
    fi
}

# The record and backups hold password and token hashes: the daemon writes them, the page
# (group pendock) reads the record, no one else reads either. Earlier releases left them
# group-writable; only modes change here, never contents.
tighten_records() {
    find "$(at "$DATA_DIR")" -maxdepth 1 -type f -exec chmod 0640 {} +
    find "$(at "$DATA_DIR/backups")" -maxdepth 1 -type f -exec chmod 0600 {} +
}

install_accounts() {
    ensure_group gpio "GPIO pins; Raspberry Pi OS normally has it"
    ensure_group spi "SPI bus; Raspberry Pi OS normally has it"
    ensure_group pendock "the daemon's group: the record's read-only group (the page only) and the config"
    ensure_group pendock-web "the page's own group"
    ensure_group pendock-tech "technicians: the pendock CLI over the socket, SSH"
    ensure_user pendock pendock "gpio spi" "Pen dock daemon"
    ensure_user pendock-web pendock-web "pendock" "Pen dock page"
    local tech
    for tech in "${TECHS[@]}"; do
        has_user "$tech" || die "--tech $tech: no such user in $(at /etc/passwd); create the account first (adduser $tech)"
        ensure_membership "$tech" pendock-tech "may use the pendock CLI over the daemon's socket, and log in over SSH when the sshd drop-in is on"
    done
    keep_technicians_out_of_the_record
}

# An earlier release put technicians in group pendock, which then could write the record:
# they reach it through the daemon's socket now (group pendock-tech), never the file.
keep_technicians_out_of_the_record() {
    local member members
    members=$(field_of group pendock 4)
    for member in ${members//,/ }; do
        [[ $member == pendock-web ]] && continue
        shadow_tool gpasswd --delete "$member" pendock >/dev/null
        say "Took $member out of group pendock (the record's read group): technicians use the socket (group pendock-tech)."
    done
}

ensure_membership() {
    if in_group "$2" "$1"; then
        say "Technician $1 is already in group $2."
    else
        shadow_tool usermod --append --groups "$2" "$1"
        say "Added technician $1 to group $2 ($3)."
    fi
}

install_venv() {
    if ((!WANT_VENV)); then
        say "Skipped the venv ($VENV_DIR), as asked."
        return
    fi
    command -v python3 >/dev/null || die "python3 not found: sudo apt install python3 python3-venv"
    if [[ ! -x $VENV_DIR/bin/python ]]; then
        # System site packages: lets the venv use Raspberry Pi OS's python3-lgpio.
        python3 -m venv --system-site-packages "$VENV_DIR" \
            || die "could not create $VENV_DIR: sudo apt install python3-venv, then run this again"
        say "Created the venv $VENV_DIR."
    fi
    local offline=()
    [[ -z $OFFLINE ]] || offline=(--no-index --find-links "$OFFLINE")
    "$VENV_DIR/bin/pip" install --quiet --disable-pip-version-check "${offline[@]}" --upgrade "$SOURCE" \
        || die "pip could not install $SOURCE into $VENV_DIR (see pip's message above)"
    say "Installed the pendock program from $SOURCE into $VENV_DIR${OFFLINE:+ (offline, wheels from $OFFLINE)}."
    if [[ -r /proc/device-tree/model ]] && grep -q 'Raspberry Pi' /proc/device-tree/model \
        && ! "$VENV_DIR/bin/python" -c 'import lgpio' 2>/dev/null; then
        say "WARNING: this is a Raspberry Pi but the venv cannot import lgpio: sudo apt install python3-lgpio"
    fi
}

install_config() {
    local dest conf_gid
    dest=$(at "$CONFIG_FILE")
    ensure_folder "$(at "$CONFIG_DIR")"
    chmod 0755 "$(at "$CONFIG_DIR")"
    # The trusted cartridge makers' public keys, one PEM a maker (hw/README.md): root's to
    # change, everyone's to read. Empty until the technician adds the makers' keys.
    ensure_folder "$(at "$CONFIG_DIR")/makers"
    chmod 0755 "$(at "$CONFIG_DIR")/makers"
    conf_gid=$(gid_of pendock)
    if [[ -e $dest ]]; then
        # The clinic's settings stay; only owner and mode are put right (root:pendock 0640).
        chown "0:$conf_gid" "$dest"
        chmod 0640 "$dest"
        say "Kept the existing config $CONFIG_FILE (never overwritten)."
    elif [[ -f $REPO/appliance/core/pendock.toml ]]; then
        write_durably "$REPO/appliance/core/pendock.toml" "$dest" 0640 0 "$conf_gid"
        say "Wrote the default config to $CONFIG_FILE; edit it for this clinic."
    else
        say "No default config in $REPO/appliance/core/pendock.toml: the dock will run on built-in defaults."
    fi
}

install_units() {
    local unit
    for unit in "${UNITS[@]}"; do
        copy_file "$REPO/systemd/$unit" "$UNIT_DIR/$unit" 0644
    done
    local dropin
    dropin=$(mktemp)
    cat >"$dropin" <<'EOF'
# Written by pen-dock's hw/install.sh: systemd feeds the Pi's hardware watchdog (enabled by
# dtparam=watchdog=on), so a hung kernel or systemd reboots the dock. 14 s is under the
# BCM2835 watchdog's 15 s limit.
[Manager]
RuntimeWatchdogSec=14s
EOF
    copy_file "$dropin" "$WATCHDOG_DROPIN" 0644
    rm -f "$dropin"
}

# `pendock` for a technician's login shell (README: the first SSH step is `pendock status`):
# a two-line wrapper in /usr/local/bin (on Debian's PATH for every user), not the venv's
# bin on PATH, which would also put the venv's python and pip first.
install_path_command() {
    local wrapper
    wrapper=$(mktemp)
    printf '#!/bin/sh\n# Written by pen-dock'"'"'s hw/install.sh: the pendock CLI in its venv.\nexec %s/bin/pendock "$@"\n' \
        "$VENV_DIR" >"$wrapper"
    copy_file "$wrapper" "$PATH_LINK" 0755
    rm -f "$wrapper"
}

on_a_pi() { [[ -r /proc/device-tree/model ]] && grep -q 'Raspberry Pi' /proc/device-tree/model; }

# PENDOCK_SIMULATED=yes (appliance/processes.py) only through --simulated, never by default.
install_simulated_setting() {
    local dest dropin
    dest=$(at "$SIMULATED_DROPIN")
    if ((!WANT_SIMULATED)); then
        if [[ -e $dest ]]; then
            rm -f -- "$dest"
            fsync_paths "$(dirname "$dest")"
            say "Removed $SIMULATED_DROPIN: the daemon drives this machine's pins (install with --simulated to keep it)."
        fi
        return 0
    fi
    ! on_a_pi || die "--simulated on a Raspberry Pi: the dock would not drive its own latch. Install without it."
    dropin=$(mktemp)
    cat >"$dropin" <<'EOF'
# Written by pen-dock's hw/install.sh --simulated: no Pi here. The daemon runs on
# gpiozero's mock pins with the simulated pen (README, "Running the installed dock
# without its Pi"). Never on a clinic's dock: hw/install.sh without --simulated removes it.
[Service]
Environment=PENDOCK_SIMULATED=yes
EOF
    copy_file "$dropin" "$SIMULATED_DROPIN" 0644
    rm -f "$dropin"
    say "SIMULATED: pendock.service runs on mock pins with the simulated pen ($SIMULATED_DROPIN)."
}

boot_config_path() {
    local candidate
    for candidate in /boot/firmware/config.txt /boot/config.txt; do
        if [[ -f $(at "$candidate") ]]; then
            printf '%s' "$candidate"
            return
        fi
    done
}

# Prints FILE with our marked block replaced by BLOCK_FILE's text (or without it, when
# BLOCK_FILE is empty); the first block stays in place, any duplicates go, and a file
# without a block gets it appended.
rewrite_block() { # FILE BLOCK_FILE
    awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" -v block="$2" '
        function emit(   line) { if (block != "") while ((getline line < block) > 0) print line }
        index($0, begin) == 1 { if (!done) emit(); done = 1; skipping = 1; next }
        skipping && index($0, end) == 1 { skipping = 0; next }
        skipping { next }
        { print }
        END { if (!done) emit() }
    ' "$1"
}

install_boot_lines() {
    local config block new
    config=$(boot_config_path)
    if [[ -z $config ]]; then
        say "No boot config found (neither /boot/firmware/config.txt nor /boot/config.txt under $ROOT): not a Raspberry Pi? Add these lines by hand: dtparam=spi=on, dtparam=watchdog=on."
        return
    fi
    block=$(mktemp); new=$(mktemp)
    cat >"$block" <<EOF
$BLOCK_BEGIN (written by hw/install.sh; uninstall removes it)
[all]
dtparam=spi=on
dtparam=watchdog=on
$BLOCK_END
EOF
    rewrite_block "$(at "$config")" "$block" >"$new"
    if cmp -s "$new" "$(at "$config")"; then
        say "Boot config $config already has the pen-dock lines (SPI on, watchdog on)."
    else
        write_durably "$new" "$(at "$config")"
        say "Wrote the pen-dock lines (SPI on, watchdog on) into $config: reboot once for them to take effect."
    fi
    rm -f "$block" "$new"
}

install_sshd() {
    ((WANT_SSHD)) || return 0
    local members
    members=$(field_of group pendock-tech 4)
    [[ -n $members ]] || die "--sshd would lock everyone out: group pendock-tech is empty. Add a technician with --tech NAME (with an SSH key in ~NAME/.ssh/authorized_keys)."
    [[ -d $(at /etc/ssh/sshd_config.d) ]] || die "no /etc/ssh/sshd_config.d: install openssh-server first (sudo apt install openssh-server)"
    copy_file "$REPO/hw/sshd_pendock.conf" "$SSHD_DROPIN" 0644
    if [[ $ROOT == / ]] && command -v sshd >/dev/null; then
        mkdir -p /run/sshd # sshd -t wants its privilege-separation folder, even when ssh is stopped
        if ! sshd -t; then
            rm -f "$SSHD_DROPIN"
            die "sshd rejected the drop-in (message above); removed it again, SSH unchanged"
        fi
        if systemd_live; then
            systemctl reload ssh.service
            say "Reloaded sshd: keys only, no root login, group pendock-tech ($members) only."
        fi
    fi
    say "SSH now admits only group pendock-tech ($members), with keys; keep this session open until a new login works."
}

start_services() {
    if ! systemd_live; then
        say "Not starting anything: $( [[ $ROOT == / ]] && echo 'systemd is not running here' || echo "installed into $ROOT" )."
        say "On the dock: systemctl daemon-reload && systemctl enable --now pendock.service pendock-web.service pendock-backup.timer"
        return
    fi
    systemctl daemon-reload
    systemctl enable --quiet pendock.service pendock-web.service pendock-backup.timer
    say "Enabled pendock.service, pendock-web.service and pendock-backup.timer (they start at boot)."
    # restart = start when stopped, pick up a new program when running (an upgrade).
    if systemctl restart pendock.service pendock-web.service && systemctl start pendock-backup.timer; then
        say "Started the dock daemon and the page."
    else
        say "WARNING: the dock did not start; see 'journalctl -u pendock -u pendock-web'. If SPI was just enabled, reboot first."
    fi
}

do_install() {
    say "Installing pen-dock from $REPO into $ROOT"
    install_accounts
    install_venv
    install_config
    ensure_dir "$DATA_DIR" 2750 pendock pendock
    ensure_dir "$DATA_DIR/backups" 00700 pendock pendock
    tighten_records
    install_units
    install_path_command
    install_simulated_setting
    install_boot_lines
    install_sshd
    install_time_sources
    bash "$REPO/hw/tls-setup.sh" "$ROOT" # the page over HTTPS: the dock's CA, its certificate, the front
    start_services
    print_setup_code  # first run: the one-time code of the page's setup form
    flush_to_disk
    say "Installed."
}

# --- first run: the setup code (appliance/daemon/first_run.py) -------------------------------
print_setup_code() {
    systemd_live && [[ -x $VENV_DIR/bin/pendock ]] || return 0
    local code="" try
    for try in 1 2 3 4 5 6 7 8 9 10; do  # the daemon has just started: its socket comes up
        code=$(PENDOCK_DATA="$DATA_DIR" "$VENV_DIR/bin/pendock" setup-code 2>/dev/null | sed -n 's/^Setup code: //p') && [[ -n $code ]] && break
        sleep 1
    done
    if [[ -n $code ]]; then
        say "First run: open the dock's page, choose \"Set up this dock\" and enter the setup code $code"
        say "(it works once, until a manager exists; 'sudo pendock setup-code' shows it again)."
    fi
}
# --- end of first run --------------------------------------------------------------------------

# --- uninstall ----------------------------------------------------------------------------

remove_path() { # PATH WHAT
    if [[ -e $(at "$1") ]]; then
        rm -rf -- "$(at "$1")"
        say "Removed $2 ($1)."
    fi
}

remove_boot_lines() {
    local config new
    config=$(boot_config_path)
    [[ -n $config ]] || return 0
    grep -q "^$BLOCK_BEGIN" "$(at "$config")" || return 0
    new=$(mktemp)
    rewrite_block "$(at "$config")" "" >"$new"
    write_durably "$new" "$(at "$config")"
    rm -f "$new"
    say "Removed the pen-dock lines from $config."
}

do_uninstall() {
    say "Uninstalling pen-dock from $ROOT"
    if systemd_live; then
        systemctl disable --now --quiet pendock-backup.timer pendock-web.service pendock.service 2>/dev/null || true
        say "Stopped and disabled the dock's services."
    fi
    local unit
    for unit in "${UNITS[@]}"; do remove_path "$UNIT_DIR/$unit" "unit $unit"; done
    remove_path "$WATCHDOG_DROPIN" "the hardware watchdog setting"
    remove_time_sources
    remove_path "$PATH_LINK" "the pendock command on PATH"
    remove_path "$SIMULATED_DROPIN" "the simulated-hardware setting"
    remove_path /etc/nginx/conf.d/pendock.conf "the page's HTTPS front (nginx)"
    remove_path /etc/systemd/system/pendock-web.service.d/tls.conf "the page's TLS drop-in"
    if [[ -e $(at "$SSHD_DROPIN") ]]; then
        remove_path "$SSHD_DROPIN" "the sshd drop-in"
        if systemd_live; then
            systemctl reload ssh.service || say "WARNING: could not reload sshd; run: systemctl reload ssh"
        fi
    fi
    remove_boot_lines
    remove_path "$APP_DIR" "the program and its venv"
    local name
    for name in pendock-web pendock; do
        if has_user "$name"; then shadow_tool userdel "$name"; say "Removed user $name."; fi
    done
    for name in pendock-web pendock pendock-tech; do
        if has_group "$name"; then shadow_tool groupdel "$name"; say "Removed group $name."; fi
    done
    say "Kept groups gpio and spi (Raspberry Pi OS uses them)."
    if ((PURGE)); then
        remove_path "$DATA_DIR" "the records and backups"
        remove_path "$CONFIG_DIR" "the config"
    else
        if [[ -e $(at "$DATA_DIR") ]]; then
            say "Kept the records and backups in $DATA_DIR (--purge removes them; a reinstall uses them again)."
        fi
        if [[ -e $(at "$CONFIG_DIR") ]]; then
            say "Kept the config in $CONFIG_DIR (--purge removes it)."
        fi
    fi
    if systemd_live; then systemctl daemon-reload; fi
    flush_to_disk
    say "Done."
}

# --- BEGIN time sources (README "The clock"; owned by the clock's code) -------------------
# chrony with NTS-authenticated servers only, and the daemon allowed to ask chronyd's local
# command port. Debian's chrony package replaces systemd-timesyncd when installed.
readonly CHRONY_DROPIN=/etc/chrony/conf.d/pendock-nts.conf
readonly CHRONYC_DROPIN=/etc/systemd/system/pendock.service.d/chronyc.conf
install_time_sources() {
    copy_file "$REPO/hw/chrony-pendock.conf" "$CHRONY_DROPIN" 0644
    copy_file "$REPO/hw/pendock-chronyc.conf" "$CHRONYC_DROPIN" 0644
    if [[ $ROOT == / ]] && ! command -v chronyd >/dev/null; then
        say "chrony is not installed: install it (sudo apt install chrony) for NTS time; until then only the RTC vouches for the time."
    elif systemd_live && systemctl is-active --quiet chrony.service; then
        if systemctl restart chrony.service; then
            say "Restarted chrony with the NTS servers of $CHRONY_DROPIN."
        else
            say "WARNING: chrony did not restart; see 'journalctl -u chrony'."
        fi
    fi
    say "Time: NTS through chrony ($CHRONY_DROPIN); the RTC through /sys/class/rtc (Pi 5 built in; DS3231: hw/README)."
}
remove_time_sources() {
    remove_path "$CHRONY_DROPIN" "the NTS servers for chrony"
    remove_path "$CHRONYC_DROPIN" "the daemon's leave to ask chrony"
}
# --- END time sources -----------------------------------------------------------------------

main() {
    parse_args "$@"
    umask 0022
    if [[ $MODE == install ]]; then do_install; else do_uninstall; fi
}

main "$@"
