# machine-prompt.sh: show the active machine in a bash or zsh prompt
# (the successor of docker-machine's docker-machine-prompt.bash; its function name works too).
#
#   source /path/to/machine-prompt.sh
#   bash:  PS1='[\u@\h \W$(__machine_ps1)]\$ '
#   zsh:   setopt PROMPT_SUBST; PROMPT='%n@%m %~$(__machine_ps1) %# '
#
# __machine_ps1 [FORMAT]   prints FORMAT (default " [%s]") with the active machine's name,
# or nothing when there is none. The name is $DOCKER_MACHINE_NAME when `eval $(machine env
# NAME)` set it (no process is started); otherwise the machine of the current docker context
# (`machine use NAME`), asked of `machine active`, which answers without loading the full CLI.
#
#   MACHINE_PS1_ACTIVE=false      only $DOCKER_MACHINE_NAME, never run `machine active`
#   MACHINE_PS1_SHOWSTATUS=true   add the state: R running, S stopped, E error (runs `machine status`)

__machine_ps1() {
    local format="${1:- [%s]}" name="${DOCKER_MACHINE_NAME:-}" state=""
    if [ -z "$name" ] && [ "${MACHINE_PS1_ACTIVE:-true}" = true ]; then
        name="$(command machine active 2>/dev/null)" || name=""
    fi
    [ -n "$name" ] || return 0
    if [ "${MACHINE_PS1_SHOWSTATUS:-${DOCKER_MACHINE_PS1_SHOWSTATUS:-false}}" = true ]; then
        case "$(command machine status "$name" 2>/dev/null)" in
            Running) state=" R" ;;
            Stopping) state=" R->S" ;;
            Starting) state=" S->R" ;;
            Error|Timeout) state=" E" ;;
            *) state=" S" ;;
        esac
    fi
    printf -- "$format" "$name$state"
}

# docker-machine's name for it, so existing PS1 lines keep working
__docker_machine_ps1() { __machine_ps1 "$@"; }
