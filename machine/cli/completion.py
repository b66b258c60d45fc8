"""`machine completion bash|zsh|fish`: a completion script for the shell.

    eval "$(machine completion bash)"          # ~/.bashrc
    eval "$(machine completion zsh)"           # ~/.zshrc, after compinit
    machine completion fish > ~/.config/fish/completions/machine.fish

Verbs, their flags and the driver names (with each driver's own create flags) are written
into the script when it is generated, from the CLI and the driver registry as installed;
machine names come from the store at the moment of completion (`machine ls -q`, which
answers on the light path), so new machines complete at once. `scp` completes `NAME:`
and local paths. Regenerate the script after installing a driver.
"""
from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
ENV_SHELLS = ("bash", "sh", "zsh", "fish", "powershell", "cmd", "tcsh", "emacs")
NO_NAMES = {"create", "completion", "scp", "bundle", "ls", "active", "ssh-keys"}


def _options(cmd: click.Command) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(flags, flags that take a value, (flag, help) for descriptions) of a command, hidden ones left out."""
    flags, valued, helps = [], [], []
    for p in cmd.params:
        if not isinstance(p, click.Option):
            continue
        for o in p.opts + p.secondary_opts:
            if not p.is_flag and not p.count:
                valued.append(o)  # hidden ones too: the word after them is their value
            if not p.hidden:
                flags.append(o)
                helps.append((o, (p.help or "").split("\n")[0]))
    return flags, valued, helps


def spec() -> dict:
    """Everything the scripts complete, read from the CLI and the driver registry."""
    from ..driver import driver_names, get_driver_class
    from .main import _commands, cli

    ctx = click.Context(cli, info_name="machine")
    gflags, gvalued, ghelps = _options(cli)
    verbs = {}
    for name in sorted(_commands()):
        try:
            cmd = cli.get_command(ctx, name)
        except Exception:  # a verb whose module cannot load here completes by name only
            cmd = None
        if cmd is None:
            verbs[name] = {"help": "", "flags": [], "valued": [], "helps": [], "names": False, "sub": []}
            continue
        flags, valued, helps = _options(cmd)
        sub = sorted(cmd.list_commands(ctx)) if isinstance(cmd, click.Group) else []
        args = [p for p in cmd.params if isinstance(p, click.Argument)]
        verbs[name] = {"help": cmd.get_short_help_str(70), "flags": flags, "valued": valued, "helps": helps,
                       "names": bool(sub) or (name not in NO_NAMES and any(
                           a.name in ("name", "names", "manager") for a in args)),
                       "sub": sub}
    drivers, driver_flags = [], {}
    for d in driver_names():
        drivers.append(d)
        try:
            cls = get_driver_class(d)
            driver_flags[d] = [s.cli_flag(d) for s in cls.Config.options()]
        except Exception:
            driver_flags[d] = []
    return {"global_flags": gflags, "global_valued": gvalued, "global_helps": ghelps, "verbs": verbs,
            "drivers": drivers, "driver_flags": driver_flags}


def _words(items) -> str:
    return " ".join(items)


def _case_fn(name: str, table: dict[str, list[str]]) -> str:
    """A bash/zsh function printing the words of its first argument's entry."""
    lines = [f"{name}() {{", '    case "$1" in']
    for key, words in table.items():
        if words:
            lines.append(f"        {key}) echo '{_words(words)}' ;;")
    lines += ["    esac", "}"]
    return "\n".join(lines)


def _common_sh(s: dict) -> str:
    """Shell functions bash and zsh share."""
    v = s["verbs"]
    return "\n".join([
        f"_machine_verbs='{_words(v)}'",
        f"_machine_global_flags='{_words(s['global_flags'])}'",
        f"_machine_global_valued=' {_words(s['global_valued'])} '",
        f"_machine_drivers='{_words(s['drivers'])}'",
        f"_machine_name_verbs=' {_words(k for k, x in v.items() if x['names'])} '",
        _case_fn("_machine_flags", {k: x["flags"] for k, x in v.items()}),
        _case_fn("_machine_valued", {k: x["valued"] for k, x in v.items()}),
        _case_fn("_machine_sub", {k: x["sub"] for k, x in v.items()}),
        _case_fn("_machine_driver_flags", s["driver_flags"]),
        # _machine_scan WORD...: sets _machine_verb, _machine_store, _machine_driver from the words typed
        """_machine_scan() {
    _machine_verb= _machine_store= _machine_driver=
    local w skip= next=
    for w in "$@"; do
        if [ -n "$skip" ]; then
            [ "$skip" = store ] && _machine_store=$w
            [ "$skip" = driver ] && _machine_driver=$w
            skip=; continue
        fi
        if [ -z "$_machine_verb" ]; then
            case "$w" in
                -s|--storage-path) skip=store ;;
                --storage-path=*) _machine_store=${w#--storage-path=} ;;
                -*) case "$_machine_global_valued" in *" $w "*) skip=other ;; esac ;;
                *) _machine_verb=$w ;;
            esac
        else
            case "$w" in
                -d|--driver) skip=driver ;;
                --driver=*) _machine_driver=${w#--driver=} ;;
                -*) case " $(_machine_valued "$_machine_verb") " in *" $w "*) skip=other ;; esac ;;
            esac
        fi
    done
}""",
        """_machine_names() {
    if [ -n "$_machine_store" ]; then command machine -s "$_machine_store" ls -q 2>/dev/null
    else command machine ls -q 2>/dev/null; fi
}""",
    ])


def bash_script(s: dict) -> str:
    return f"""# machine completion for bash: eval "$(machine completion bash)"
{_common_sh(s)}
_machine() {{
    local line=${{COMP_LINE:0:COMP_POINT}}
    local cur=${{line##*[[:space:]]}}
    local -a before
    read -r -a before <<< "${{line%"$cur"}}"
    _machine_scan "${{before[@]:1}}"
    local prev=${{before[${{#before[@]}}-1]}}
    COMPREPLY=()
    local IFS=$'\\n'
    if [ -z "$_machine_verb" ]; then
        case "$prev" in -s|--storage-path) COMPREPLY=($(compgen -d -- "$cur")); return ;; esac
        case "$_machine_global_valued" in *" $prev "*) return ;; esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(IFS=' '; compgen -W "$_machine_global_flags" -- "$cur"))
        else
            COMPREPLY=($(IFS=' '; compgen -W "$_machine_verbs" -- "$cur"))
        fi
        return
    fi
    case "$prev" in
        -d|--driver) [ "$_machine_verb" = create ] && COMPREPLY=($(IFS=' '; compgen -W "$_machine_drivers" -- "$cur"))
                     return ;;
        --shell) [ "$_machine_verb" = env ] && COMPREPLY=($(IFS=' '; compgen -W "{_words(ENV_SHELLS)}" -- "$cur"))
                 return ;;
    esac
    case " $(_machine_valued "$_machine_verb") " in *" $prev "*) return ;; esac
    if [[ $cur == -* ]]; then
        local flags="$(_machine_flags "$_machine_verb")"
        [ "$_machine_verb" = create ] && flags="$flags $(_machine_driver_flags "$_machine_driver")"
        COMPREPLY=($(IFS=' '; compgen -W "$flags" -- "$cur"))
        return
    fi
    case "$_machine_verb" in
        completion) COMPREPLY=($(IFS=' '; compgen -W "{_words(SHELLS)}" -- "$cur")) ;;
        scp)
            if [[ $cur != *:* ]]; then
                local n
                for n in $(_machine_names); do [[ $n: == "$cur"* ]] && COMPREPLY+=("$n:"); done
                COMPREPLY+=($(compgen -f -- "$cur"))
                compopt -o nospace 2>/dev/null
            fi ;;
        *)
            local sub="$(_machine_sub "$_machine_verb")"
            if [ -n "$sub" ] && [ "${{#before[@]}}" -le 2 ]; then
                COMPREPLY=($(IFS=' '; compgen -W "$sub" -- "$cur"))
            elif [[ $_machine_name_verbs == *" $_machine_verb "* ]]; then
                COMPREPLY=($(compgen -W "$(_machine_names)" -- "$cur"))
            fi ;;
    esac
    # bash splits words at ':': offer only what follows the last ':' of the word being completed
    if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
        local i
        for i in "${{!COMPREPLY[@]}}"; do COMPREPLY[$i]=${{COMPREPLY[$i]#"${{cur%:*}}:"}}; done
    fi
}}
complete -o default -F _machine machine
"""


def zsh_script(s: dict) -> str:
    return f"""#compdef machine
# machine completion for zsh: eval "$(machine completion zsh)" after compinit,
# or save it as _machine in a folder of $fpath.
{_common_sh(s)}
_machine() {{
    emulate -L zsh
    setopt sh_word_split
    _machine_scan "${{(@)words[2,CURRENT-1]}}"
    local prev=${{words[CURRENT-1]}}
    if [[ -z $_machine_verb ]]; then
        case $prev in -s|--storage-path) _files -/; return ;; esac
        [[ $_machine_global_valued == *" $prev "* ]] && return
        if [[ $PREFIX == -* ]]; then compadd -- $_machine_global_flags
        else compadd -- $_machine_verbs; fi
        return
    fi
    case $prev in
        -d|--driver) [[ $_machine_verb == create ]] && compadd -- $_machine_drivers; return ;;
        --shell) [[ $_machine_verb == env ]] && compadd -- {_words(ENV_SHELLS)}; return ;;
    esac
    [[ " $(_machine_valued $_machine_verb) " == *" $prev "* ]] && return
    if [[ $PREFIX == -* ]]; then
        compadd -- $(_machine_flags $_machine_verb)
        [[ $_machine_verb == create ]] && compadd -- $(_machine_driver_flags $_machine_driver)
        return
    fi
    case $_machine_verb in
        completion) compadd -- {_words(SHELLS)} ;;
        scp)
            if [[ $PREFIX != *:* ]]; then
                local -a names
                names=(${{(f)"$(_machine_names)"}})
                (( $#names )) && compadd -S '' -- ${{^names}}:
                _files
            fi ;;
        *)
            local sub="$(_machine_sub $_machine_verb)"
            if [[ -n $sub && $CURRENT -le 3 ]]; then compadd -- $sub
            elif [[ $_machine_name_verbs == *" $_machine_verb "* ]]; then
                compadd -- ${{(f)"$(_machine_names)"}}
            fi ;;
    esac
}}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _machine "$@"
else
    compdef _machine machine
fi
"""


def _fish_quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(s: dict) -> str:
    out = [
        "# machine completion for fish: machine completion fish > ~/.config/fish/completions/machine.fish",
        "function __machine_scan",
        "    set -l tokens (commandline -opc)",
        "    set -e tokens[1]",
        "    set -l skip",
        "    set -g __machine_verb",
        "    set -g __machine_store",
        "    set -g __machine_driver",
        "    for t in $tokens",
        "        if test -n \"$skip\"",
        "            test \"$skip\" = store; and set -g __machine_store $t",
        "            test \"$skip\" = driver; and set -g __machine_driver $t",
        "            set skip; continue",
        "        end",
        "        if test -z \"$__machine_verb\"",
        "            switch $t",
        "                case -s --storage-path",
        "                    set skip store",
        "                case " + (" ".join(_fish_quote(f) for f in s["global_valued"]
                                         if f not in ("-s", "--storage-path")) or "''"),
        "                    set skip other",
        "                case '-*'",
        "                case '*'",
        "                    set -g __machine_verb $t",
        "            end",
        "        else",
        "            switch $t",
        "                case -d --driver",
        "                    set skip driver",
        "            end",
        "        end",
        "    end",
        "end",
        "function __machine_no_verb; __machine_scan; test -z \"$__machine_verb\"; end",
        "function __machine_verb_is; __machine_scan; contains -- \"$__machine_verb\" $argv; end",
        "function __machine_driver_is; __machine_scan; test \"$__machine_verb\" = create -a \"$__machine_driver\" = $argv[1]; end",
        "function __machine_names",
        "    __machine_scan",
        "    if test -n \"$__machine_store\"; command machine -s $__machine_store ls -q 2>/dev/null",
        "    else; command machine ls -q 2>/dev/null; end",
        "end",
        "complete -c machine -f",
    ]

    def opt(flag: str, cond: str, help_: str, valued: bool) -> str:
        kind = f"-s {flag[1:]}" if not flag.startswith("--") else f"-l {flag[2:]}"
        return (f"complete -c machine -n {_fish_quote(cond)} {kind}" + (" -r" if valued else "")
                + (f" -d {_fish_quote(help_[:60])}" if help_ else ""))

    for flag, help_ in s["global_helps"]:
        out.append(opt(flag, "__machine_no_verb", help_, flag in s["global_valued"]))
    for name, v in s["verbs"].items():
        out.append(f"complete -c machine -n __machine_no_verb -a {_fish_quote(name)}"
                   + (f" -d {_fish_quote(v['help'][:60])}" if v["help"] else ""))
    for name, v in s["verbs"].items():
        cond = f"__machine_verb_is {name}"
        for flag, help_ in v["helps"]:
            if name == "create" and flag in ("-d", "--driver"):
                continue
            if name == "env" and flag == "--shell":
                continue
            out.append(opt(flag, cond, help_, flag in v["valued"]))
        if v["sub"]:
            out.append(f"complete -c machine -n {_fish_quote(cond)} -a {_fish_quote(' '.join(v['sub']))}")
        if v["names"]:
            out.append(f"complete -c machine -n {_fish_quote(cond)} -a '(__machine_names)'")
    out.append("complete -c machine -n '__machine_verb_is create' -s d -l driver -x -a "
               + _fish_quote(" ".join(s["drivers"])) + " -d 'Driver that makes the host'")
    for d, flags in s["driver_flags"].items():
        for f in flags:
            out.append(f"complete -c machine -n {_fish_quote('__machine_driver_is ' + d)} -l {f[2:]} -r")
    out.append("complete -c machine -n '__machine_verb_is env' -l shell -x -a " + _fish_quote(" ".join(ENV_SHELLS)))
    out.append("complete -c machine -n '__machine_verb_is completion' -x -a " + _fish_quote(" ".join(SHELLS)))
    out.append("complete -c machine -n '__machine_verb_is scp' -F -a '(__machine_names | string replace -r \"\\$\" \":\")'")
    return "\n".join(out) + "\n"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell):
    """Print the shell completion script (eval "$(machine completion bash)")."""
    script = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[shell](spec())
    click.echo(script, nl=False)
