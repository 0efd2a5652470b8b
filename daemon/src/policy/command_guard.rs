//! The execution denylist and allowlist (spec §1.7), with the original's rules
//! (program basename, `sh -c`/`python -c`/`node -e` recursion, `find -exec`,
//! `xargs`) plus the prefix wrappers people use to get around them (`env`,
//! `sudo`, `nice`, `nohup`, `timeout`, `busybox`, …) and shell quoting tricks
//! (`r""m`). It is a guard rail against mistakes, not a sandbox: anyone holding a
//! key can still run a script that does what a denied program does.

use std::collections::HashSet;

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Denied(String),
    NotAllowed(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(base) => write!(f, "Command '{base}' is denied (execution.denylist)"),
            Self::NotAllowed(base) => write!(
                f,
                "Command '{base}' is not in the allowlist (execution.allowlist)"
            ),
        }
    }
}

/// Shells whose `-c SCRIPT` runs another command line.
const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "ash", "fish", "script"];
/// Interpreters whose inline code is scanned token by token (as the original does).
/// Each has its code flags: short letters (also inside clusters such as `-Ic`,
/// `-we`, `-pe`) and long names (also as `--eval=CODE`).
const INTERPRETERS: &[(&str, &[char], &[&str])] = &[
    ("python", &['c'], &[]),
    ("python3", &['c'], &[]),
    ("python2", &['c'], &[]),
    ("node", &['e', 'p'], &["--eval", "--print"]),
    ("perl", &['e', 'E'], &[]),
    ("ruby", &['e'], &[]),
];
/// Characters that end a word in the original's token scan.
const SEPARATORS: &[char] = &[
    ';', '&', '|', '`', '<', '>', '(', ')', '{', '}', '[', ']', '\n', '$', ',',
];

/// Program name as the guard compares it: the last path component, lower-cased
/// (so `/bin/rm` and `RM` on a case-insensitive file system are both `rm`).
pub fn base_name(program: &str) -> String {
    let last = program.rsplit(['/', '\\']).next().unwrap_or(program);
    let last = last.strip_suffix(".exe").unwrap_or(last);
    last.to_lowercase()
}

/// Removes shell quoting (`'…'`, `"…"`, `\x`), so `r""m` and `'rm'` are `rm`.
fn unquote(word: &str) -> String {
    word.chars()
        .filter(|c| !matches!(c, '\'' | '"' | '\\'))
        .collect()
}

pub struct CommandGuard {
    denylist: HashSet<String>,
    allowlist: Option<HashSet<String>>,
}

impl CommandGuard {
    pub fn new(denylist: &[String], allowlist: Option<&[String]>) -> Self {
        Self {
            denylist: denylist.iter().map(|d| d.to_lowercase()).collect(),
            allowlist: allowlist.map(|list| list.iter().map(|a| a.to_lowercase()).collect()),
        }
    }

    /// Checks a program and its arguments, and every command they would start.
    pub fn check(&self, program: &str, args: &[String]) -> Result<(), Refusal> {
        let (commands, words) = expand(program, args);
        for (base, _) in &commands {
            if self.denylist.contains(base) {
                return Err(Refusal::Denied(base.clone()));
            }
            if let Some(allow) = &self.allowlist
                && !allow.contains(base)
            {
                return Err(Refusal::NotAllowed(base.clone()));
            }
        }
        // Inline interpreter code: scanned against the denylist only (every word
        // would fail an allowlist).
        for word in words {
            let base = base_name(&word);
            if self.denylist.contains(&base) {
                return Err(Refusal::Denied(base));
            }
        }
        Ok(())
    }
}

/// Every command `program args…` would start, itself first, as (base name, args),
/// and the words of inline interpreter code. The auto-approve gate uses it to find
/// an agent started through a wrapper.
pub fn expand(program: &str, args: &[String]) -> (Vec<(String, Vec<String>)>, Vec<String>) {
    let mut queue: Vec<(String, Vec<String>)> = vec![(program.to_owned(), args.to_vec())];
    let mut seen: HashSet<(String, Vec<String>)> = HashSet::new();
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    while let Some((program, args)) = queue.pop() {
        if !seen.insert((program.clone(), args.clone())) || seen.len() > 256 {
            continue;
        }
        let base = base_name(&program);
        if base.is_empty() {
            continue;
        }
        queue.extend(nested_commands(&base, &args, &mut words));
        commands.push((base, args));
    }
    (commands, words)
}

/// The commands that `base args…` would run in turn.
fn nested_commands(
    base: &str,
    args: &[String],
    words: &mut Vec<String>,
) -> Vec<(String, Vec<String>)> {
    if SHELLS.contains(&base) {
        return shell_script(args)
            .map(|script| split_command_line(&script))
            .unwrap_or_default();
    }
    if let Some((_, letters, long)) = INTERPRETERS.iter().find(|(name, _, _)| *name == base) {
        if let Some(code) = flag_value(args, letters, long) {
            words.extend(
                code.split(|c: char| c.is_whitespace() || SEPARATORS.contains(&c))
                    .map(unquote)
                    .filter(|w| !w.is_empty() && !w.starts_with('-')),
            );
        }
        return Vec::new();
    }
    match base {
        "find" => find_exec(args),
        "xargs" => after_options(
            args,
            &[
                "-n",
                "-I",
                "-i",
                "-d",
                "-P",
                "-L",
                "-l",
                "-s",
                "-a",
                "-E",
                "-e",
                "--max-args",
                "--max-procs",
                "--delimiter",
                "--arg-file",
                "--replace",
            ],
            0,
        ),
        "env" => env_command(args),
        "sudo" | "doas" => after_options(
            args,
            &[
                "-u",
                "-g",
                "-C",
                "-D",
                "-h",
                "-p",
                "-r",
                "-t",
                "-T",
                "-U",
                "--user",
                "--group",
                "--chdir",
                "--host",
                "--prompt",
                "--role",
                "--type",
                "--command-timeout",
                "--other-user",
            ],
            0,
        ),
        "nice" => after_options(args, &["-n", "--adjustment"], 0),
        "ionice" => after_options(
            args,
            &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
            0,
        ),
        "timeout" => after_options(args, &["-s", "-k", "--signal", "--kill-after"], 1),
        "stdbuf" => after_options(args, &["-i", "-o", "-e"], 0),
        "exec" => after_options(args, &["-a"], 0),
        "nohup" | "setsid" | "time" | "command" | "busybox" | "unbuffer" => {
            after_options(args, &[], 0)
        }
        _ => Vec::new(),
    }
}

/// The script of `sh -c SCRIPT` (also `-ec`, `-lc`, … clusters that include `c`,
/// and `sh -c -- SCRIPT`).
fn shell_script(args: &[String]) -> Option<String> {
    let position = args
        .iter()
        .position(|a| short_cluster(a).is_some_and(|c| c.contains('c')))?;
    let mut rest = args[position + 1..].iter();
    match rest.next()? {
        dashes if dashes == "--" => rest.next().cloned(),
        script => Some(script.clone()),
    }
}

/// The letters of a short-option cluster (`-Ic` → `Ic`); `None` for anything else.
fn short_cluster(arg: &str) -> Option<&str> {
    let letters = arg.strip_prefix('-')?;
    (!letters.is_empty() && !letters.starts_with('-')).then_some(letters)
}

/// The value of a code flag: `-c CODE`, `-cCODE`, a cluster ending in or
/// containing the letter (`-Ic CODE`, `-we CODE`), `--eval CODE`, `--eval=CODE`.
fn flag_value(args: &[String], letters: &[char], long: &[&str]) -> Option<String> {
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            return None;
        }
        for flag in long {
            if arg == flag {
                return args.get(i + 1).cloned();
            }
            if let Some(code) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                return Some(code.to_owned());
            }
        }
        if let Some(cluster) = short_cluster(arg)
            && let Some(at) = cluster.find(|c| letters.contains(&c))
        {
            let rest = &cluster[at + 1..];
            // `-pe CODE`: a rest made only of code letters is more flags, not code.
            return if rest.chars().all(|c| letters.contains(&c)) {
                args.get(i + 1).cloned()
            } else {
                Some(rest.to_owned())
            };
        }
    }
    None
}

/// A shell redirection word (`>f`, `2>err`, `&>f`, `<in`, `>>f`); `Some(true)` when
/// its target is the next word (`>` alone, `2>`).
fn redirection(word: &str) -> Option<bool> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '&');
    let target = rest
        .strip_prefix(">>")
        .or_else(|| rest.strip_prefix(">|"))
        .or_else(|| rest.strip_prefix('>'))
        .or_else(|| rest.strip_prefix("<<"))
        .or_else(|| rest.strip_prefix('<'))?;
    let target = target.trim_start_matches('&');
    Some(target.is_empty())
}

/// Splits a shell command line into simple commands (program + words).
fn split_command_line(script: &str) -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    // Line continuations join words; `>&`, `<&` and `&>` are redirections, not `&`;
    // a redirection stuck to a word (`rm>/dev/null`) is a word of its own.
    let script = script
        .replace("\\\n", "")
        .replace(">&", ">")
        .replace("<&", "<")
        .replace("&>", ">");
    let mut spaced = String::with_capacity(script.len());
    let mut previous = ' ';
    for c in script.chars() {
        let joined = matches!(previous, '<' | '>' | ' ' | '\t') || previous.is_ascii_digit();
        if matches!(c, '<' | '>') && !joined {
            spaced.push(' ');
        }
        spaced.push(c);
        previous = c;
    }
    for segment in spaced.split([';', '&', '|', '\n', '(', ')', '{', '}', '`']) {
        let segment = segment.replace("$(", " ");
        let mut words: Vec<String> = Vec::new();
        let mut skip_target = false;
        for word in segment.split_whitespace().map(unquote) {
            if std::mem::take(&mut skip_target) || word.is_empty() {
                continue;
            }
            // Redirections may stand anywhere in a simple command, before its name too.
            if let Some(target_follows) = redirection(&word) {
                skip_target = target_follows;
                continue;
            }
            let keyword = matches!(
                word.as_str(),
                "!" | "then" | "do" | "else" | "if" | "while" | "until"
            );
            if words.is_empty() && (keyword || is_assignment(&word)) {
                continue;
            }
            words.push(word);
        }
        let mut words = words.into_iter();
        if let Some(program) = words.next() {
            commands.push((program, words.collect()));
        }
    }
    commands
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// The command after a wrapper's options; `positionals` extra words (e.g. the
/// duration of `timeout`) are skipped first.
fn after_options(
    args: &[String],
    with_value: &[&str],
    positionals: usize,
) -> Vec<(String, Vec<String>)> {
    let mut i = 0;
    let mut skipped = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            let takes_value = with_value.contains(&arg.as_str());
            i += if takes_value { 2 } else { 1 };
            continue;
        }
        if skipped < positionals {
            skipped += 1;
            i += 1;
            continue;
        }
        break;
    }
    command_at(args, i)
}

/// The command that starts at `args[i]`, if any.
fn command_at(args: &[String], i: usize) -> Vec<(String, Vec<String>)> {
    match args.get(i) {
        Some(program) => vec![(program.clone(), args[i + 1..].to_vec())],
        None => Vec::new(),
    }
}

/// `env [OPTION]… [NAME=VALUE]… [COMMAND [ARG]…]`, with GNU env's options in every
/// spelling: `-S LINE`, `-SLINE`, `-iS LINE` (clusters), `--split-string=LINE`,
/// `-u NAME`, `--unset=NAME`, `-C DIR`, `--chdir=DIR`.
fn env_command(args: &[String]) -> Vec<(String, Vec<String>)> {
    let split = |line: Option<&String>| line.map(|l| split_command_line(l)).unwrap_or_default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (long, None),
            };
            match name {
                "split-string" => return split(inline.as_ref().or(args.get(i + 1))),
                "unset" | "chdir" if inline.is_none() => i += 2,
                _ => i += 1,
            }
            continue;
        }
        if let Some(cluster) = short_cluster(arg) {
            let mut step = 1;
            for (at, letter) in cluster.char_indices() {
                let rest = &cluster[at + 1..];
                match letter {
                    'S' if rest.is_empty() => return split(args.get(i + 1)),
                    'S' => return split_command_line(rest),
                    'u' | 'C' => {
                        step = if rest.is_empty() { 2 } else { 1 };
                        break;
                    }
                    _ => {}
                }
            }
            i += step;
            continue;
        }
        if is_assignment(arg) {
            i += 1;
            continue;
        }
        break;
    }
    command_at(args, i)
}

/// `find … -exec X args… ;` (also `-execdir`, `-ok`, `-okdir`).
fn find_exec(args: &[String]) -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if matches!(args[i].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir")
            && let Some(program) = args.get(i + 1)
        {
            let rest: Vec<String> = args[i + 2..]
                .iter()
                .take_while(|a| a.as_str() != ";" && a.as_str() != "+")
                .cloned()
                .collect();
            i += 2 + rest.len();
            commands.push((program.clone(), rest));
            continue;
        }
        i += 1;
    }
    commands
}

#[cfg(test)]
mod tests;
