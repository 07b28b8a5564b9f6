/**
 * `si completion bash|zsh`: a shell completion script, generated from the commander program
 * itself (every command, subcommand and option registered, so it never lags behind a new
 * command). Issue 15 item 6.
 *
 * Both scripts work alike: walk the words typed so far, skipping options and the values of
 * options that take one, and descend into a subcommand when a word names one; then offer
 * the subcommands of where the walk stopped, or its options after `-`, or file names after
 * an option that takes a value and for positional arguments.
 */
import type { Command, Option } from "commander";
import { UsageError } from "../../errors.js";
import { siVersion } from "../../version.js";
import type { CliContext } from "../context.js";

interface Word {
  name: string;
  description: string;
}

/** One level of the command tree: "" (the program), "channel", "channel create", ... */
interface Level {
  path: string;
  subcommands: Word[];
  options: Word[];
  /** Flags whose option takes a value (`--config <path>`): the next word is not a command. */
  valueFlags: string[];
}

const HELP: Word[] = [
  { name: "-h", description: "display help for command" },
  { name: "--help", description: "display help for command" },
];

function optionWords(options: readonly Option[]): Word[] {
  return options
    .filter((o) => !o.hidden)
    .flatMap((o) => [o.short, o.long].filter((f): f is string => !!f).map((name) => ({ name, description: o.description })));
}

function valueFlags(options: readonly Option[]): string[] {
  return options.filter((o) => o.required || o.optional).flatMap((o) => [o.short, o.long].filter((f): f is string => !!f));
}

/** Every level of the program's command tree, the program first. */
export function commandLevels(program: Command): Level[] {
  const globalValues = valueFlags(program.options);
  const levels: Level[] = [];
  const visit = (cmd: Command, path: string) => {
    const subs = cmd.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden);
    const subcommands = subs.flatMap((c) => [c.name(), ...c.aliases()].map((name) => ({ name, description: c.description() })));
    // commander adds `help [command]` to every command that has subcommands.
    if (subs.length > 0) subcommands.push({ name: "help", description: "display help for command" });
    levels.push({
      path,
      subcommands,
      options: [...optionWords(cmd.options), ...HELP],
      // The program's options are recognised after a subcommand too (commander's default).
      valueFlags: [...new Set([...valueFlags(cmd.options), ...globalValues])],
    });
    for (const c of subs) visit(c, path ? `${path} ${c.name()}` : c.name());
  };
  visit(program, "");
  return levels;
}

/** A single-quoted shell word (bash and zsh). */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** `case` arms of a function printing (bash) or setting `reply` (zsh) per level. */
function caseFunction(name: string, levels: Level[], body: (l: Level) => string): string[] {
  return [`${name}() {`, '  case "$1" in', ...levels.map((l) => `    ${q(l.path)}) ${body(l)} ;;`), "  esac", "}"];
}

export function bashScript(program: Command): string {
  const levels = commandLevels(program);
  return [
    `# bash completion for si ${siVersion()} (made by \`si completion bash\`).`,
    '# Use: eval "$(si completion bash)" in ~/.bashrc, or save the output as',
    "# ~/.local/share/bash-completion/completions/si (or /etc/bash_completion.d/si).",
    ...caseFunction("_si_subcommands", levels, (l) => `echo ${q(l.subcommands.map((w) => w.name).join(" "))}`),
    ...caseFunction("_si_options", levels, (l) => `echo ${q(l.options.map((w) => w.name).join(" "))}`),
    ...caseFunction("_si_value_options", levels, (l) => `echo ${q(l.valueFlags.join(" "))}`),
    "_si() {",
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" level="" word i',
    "  for ((i = 1; i < COMP_CWORD; i++)); do",
    '    word="${COMP_WORDS[i]}"',
    '    if [[ " $(_si_value_options "$level") " == *" $word "* ]]; then ((i++)); continue; fi',
    "    [[ $word == -* ]] && continue",
    '    if [[ " $(_si_subcommands "$level") " == *" $word "* ]]; then level="${level:+$level }$word"; fi',
    "  done",
    '  ((COMP_CWORD > 1)) && prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  if [[ -n $prev && " $(_si_value_options "$level") " == *" $prev "* ]]; then',
    '    mapfile -t COMPREPLY < <(compgen -f -- "$cur")',
    "  elif [[ $cur == -* ]]; then",
    '    mapfile -t COMPREPLY < <(compgen -W "$(_si_options "$level")" -- "$cur")',
    '  elif [[ -n $(_si_subcommands "$level") ]]; then',
    '    mapfile -t COMPREPLY < <(compgen -W "$(_si_subcommands "$level")" -- "$cur")',
    "  else",
    '    mapfile -t COMPREPLY < <(compgen -f -- "$cur")',
    "  fi",
    "}",
    "complete -o filenames -F _si si",
    "",
  ].join("\n");
}

/** `name:description` for zsh's _describe (a colon in the name would need a backslash). */
const described = (words: Word[]) => words.map((w) => q(`${w.name.replace(/:/g, "\\:")}:${w.description.replace(/\s+/g, " ")}`)).join(" ");

export function zshScript(program: Command): string {
  const levels = commandLevels(program);
  return [
    "#compdef si",
    `# zsh completion for si ${siVersion()} (made by \`si completion zsh\`).`,
    "# Use: source <(si completion zsh) in ~/.zshrc after compinit, or save the output as _si",
    "# in a directory of $fpath.",
    ...caseFunction("_si_subcommands", levels, (l) => `reply=(${described(l.subcommands)})`),
    ...caseFunction("_si_options", levels, (l) => `reply=(${described(l.options)})`),
    ...caseFunction("_si_value_options", levels, (l) => `reply=(${l.valueFlags.map(q).join(" ")})`),
    "_si() {",
    // Not `path`: in zsh that is the array tied to $PATH.
    '  local level="" word i',
    "  local -a reply",
    "  for ((i = 2; i < CURRENT; i++)); do",
    "    word=${words[i]}",
    '    _si_value_options "$level"',
    "    if (( ${reply[(Ie)$word]} )); then ((i++)); continue; fi",
    "    [[ $word == -* ]] && continue",
    '    _si_subcommands "$level"',
    '    if (( ${reply[(I)${(b)word}:*]} )); then level="${level:+$level }$word"; fi',
    "  done",
    '  _si_value_options "$level"',
    "  if (( CURRENT > 2 && ${reply[(Ie)${words[CURRENT-1]}]} )); then _files; return; fi",
    '  if [[ ${words[CURRENT]} == -* ]]; then _si_options "$level"; _describe -t options option reply; return; fi',
    '  _si_subcommands "$level"',
    "  if (( ${#reply} )); then _describe -t commands command reply; else _files; fi",
    "}",
    'if [[ ${funcstack[1]} == _si ]]; then _si "$@"; else compdef _si si; fi',
    "",
  ].join("\n");
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("completion")
    .description('print a shell completion script for bash or zsh (eval "$(si completion bash)" in ~/.bashrc)')
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      // Generated when run, so the commands every module registered are all there.
      if (shell === "bash") ctx.out(bashScript(program).trimEnd());
      else if (shell === "zsh") ctx.out(zshScript(program).trimEnd());
      else throw new UsageError(`Cannot make a completion script for '${shell}': bash and zsh are supported`);
    });
}
