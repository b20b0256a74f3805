# shellcheck shell=bash
# print_help SCRIPT : the script's header comment (after the shebang, without #SBATCH and shellcheck lines).
# Sourced by _common.sh, quickstart.sh and test.sh, which decide when -h / --help asks for it.
print_help() {
    sed -n '2,/^[^#]/p' "$1" | grep '^#' | grep -v '^#SBATCH\|^# shellcheck' | sed 's/^# \{0,1\}//'
}
