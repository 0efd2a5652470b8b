//! The arguments an agent may be started with by a principal that was not granted
//! auto-approve: a small allowlist per agent (resume or continue a conversation,
//! pick a model, give a prompt). Everything else is refused, so that no spelling
//! of an agent's "act without asking" mode (`--permission-mode=bypassPermissions`,
//! `--settings '{…}'`, `-yd`, `-c approval_policy=never`, `--full-auto`, …)
//! reaches its argv.
//!
//! Arguments are normalised first: `--flag=value` is the flag and its value, a
//! cluster of short flags (`-yd`, `-mopus`) is each flag in turn, and `--` is
//! refused. This is a **guard rail** for principals that may only start agents,
//! not a boundary against one that may open a shell (`sessions:shell`): such a
//! principal can start any program, and type anything into it.

/// Longest model name, session id or subcommand value.
const MAX_WORD: usize = 128;
/// Longest prompt given as an argument.
const MAX_PROMPT: usize = 8192;

/// What follows a flag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// A word: a model name or a session id.
    Word,
    /// An optional word (`--resume [id]`).
    MaybeWord,
    /// Free text (a prompt).
    Text,
}

struct Flag {
    long: &'static str,
    short: Option<char>,
    takes: Takes,
}

const fn flag(long: &'static str, short: Option<char>, takes: Takes) -> Flag {
    Flag { long, short, takes }
}

struct AgentArgs {
    agent: &'static str,
    flags: &'static [Flag],
    /// Words allowed as the first argument (a subcommand that only resumes).
    subcommands: &'static [&'static str],
}

const AGENTS: &[AgentArgs] = &[
    AgentArgs {
        agent: "claude",
        flags: &[
            flag("--continue", Some('c'), Takes::Nothing),
            flag("--resume", Some('r'), Takes::MaybeWord),
            flag("--model", None, Takes::Word),
        ],
        subcommands: &[],
    },
    AgentArgs {
        agent: "codex",
        flags: &[
            flag("--model", Some('m'), Takes::Word),
            flag("--last", None, Takes::Nothing),
        ],
        subcommands: &["resume"],
    },
    AgentArgs {
        agent: "gemini",
        flags: &[
            flag("--model", Some('m'), Takes::Word),
            flag("--resume", Some('r'), Takes::MaybeWord),
            flag("--prompt-interactive", Some('i'), Takes::Text),
        ],
        subcommands: &[],
    },
    AgentArgs {
        agent: "opencode",
        flags: &[
            flag("--continue", Some('c'), Takes::Nothing),
            flag("--session", Some('s'), Takes::Word),
            flag("--model", Some('m'), Takes::Word),
            flag("--prompt", Some('p'), Takes::Text),
        ],
        subcommands: &[],
    },
];

/// Each agent's own flag for acting without asking, which the daemon adds when a
/// granted principal asks for auto-approve.
const AUTO_APPROVE: &[(&str, &str)] = &[
    ("claude", "--dangerously-skip-permissions"),
    ("codex", "--dangerously-bypass-approvals-and-sandbox"),
    ("gemini", "--yolo"),
];

/// The flag that makes `agent` act without asking, if it has one.
pub fn auto_approve_flag(agent: &str) -> Option<&'static str> {
    AUTO_APPROVE
        .iter()
        .find(|(name, _)| *name == agent)
        .map(|(_, flag)| *flag)
}

/// The agents this allowlist knows (every built-in agent of the picker).
pub fn is_agent(base_name: &str) -> bool {
    AGENTS.iter().any(|a| a.agent == base_name)
}

fn word_ok(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_WORD
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/@-".contains(c))
}

fn text_ok(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= MAX_PROMPT && !value.contains('\0')
}

/// Checks `args` for `agent`; the error says what was refused and what is allowed.
pub fn vet(agent: &str, args: &[String]) -> Result<(), String> {
    let Some(spec) = AGENTS.iter().find(|a| a.agent == agent) else {
        return Err(format!("'{agent}' is not an agent loopsy knows"));
    };
    let allowed = || {
        let mut names: Vec<String> = spec
            .flags
            .iter()
            .map(|f| match f.short {
                Some(short) => format!("{}/-{short}", f.long),
                None => f.long.to_owned(),
            })
            .collect();
        names.extend(spec.subcommands.iter().map(|s| format!("'{s}'")));
        names.push("a prompt of several words".into());
        names.join(", ")
    };
    let refuse = |what: &str| {
        format!(
            "{what}: without auto-approve, {agent} starts only with {}; the owner can grant auto-approve (`loopsy auto-approve allow …`)",
            allowed()
        )
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if arg == "--" {
            return Err(refuse("'--' is refused"));
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let Some(found) = spec.flags.iter().find(|f| &f.long[2..] == name) else {
                return Err(refuse(&format!("'--{name}' is refused")));
            };
            match (found.takes, inline) {
                (Takes::Nothing, Some(_)) => {
                    return Err(refuse(&format!("'--{name}' takes no value")));
                }
                (Takes::Nothing, None) => {}
                (takes, Some(value)) => {
                    check_value(takes, &format!("--{name}"), value).map_err(|e| refuse(&e))?
                }
                (takes, None) => {
                    i += take_next(takes, &format!("--{name}"), args.get(i))
                        .map_err(|e| refuse(&e))?;
                }
            }
            continue;
        }
        if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (at, letter) in cluster.char_indices() {
                let Some(found) = spec.flags.iter().find(|f| f.short == Some(letter)) else {
                    return Err(refuse(&format!("'-{letter}' (in '{arg}') is refused")));
                };
                if found.takes == Takes::Nothing {
                    continue;
                }
                let rest = &cluster[at + letter.len_utf8()..];
                if rest.is_empty() {
                    i += take_next(found.takes, &format!("-{letter}"), args.get(i))
                        .map_err(|e| refuse(&e))?;
                } else {
                    check_value(found.takes, &format!("-{letter}"), rest)
                        .map_err(|e| refuse(&e))?;
                }
                break;
            }
            continue;
        }
        if i == 1 && spec.subcommands.contains(&arg) {
            continue;
        }
        // A prompt: a one-word argument could be read as a subcommand
        // (`mcp`, `config`, `exec`), so only text of several words passes.
        if arg.split_whitespace().nth(1).is_none() || !text_ok(arg) {
            return Err(refuse(&format!(
                "'{arg}' could be read as a subcommand (a prompt needs several words; or send it as initialInput)"
            )));
        }
    }
    Ok(())
}

fn check_value(takes: Takes, flag: &str, value: &str) -> Result<(), String> {
    let fine = match takes {
        Takes::Text => text_ok(value),
        Takes::Word | Takes::MaybeWord => word_ok(value),
        Takes::Nothing => value.is_empty(),
    };
    if fine {
        Ok(())
    } else {
        Err(format!("'{value}' is not a value {flag} takes here"))
    }
}

/// How many arguments a flag's value uses from `next`.
fn take_next(takes: Takes, flag: &str, next: Option<&String>) -> Result<usize, String> {
    match (takes, next) {
        (Takes::Nothing, _) => Ok(0),
        (Takes::MaybeWord, Some(next)) => Ok(usize::from(word_ok(next))),
        (Takes::MaybeWord, None) => Ok(0),
        // A separate value that looks like a flag would be read as one (`-i --yolo`).
        (_, Some(next)) if next.starts_with('-') => {
            Err(format!("{flag} needs a value, not '{next}'"))
        }
        (takes, Some(next)) => check_value(takes, flag, next).map(|()| 1),
        (_, None) => Err(format!("{flag} needs a value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vet_line(line: &[&str]) -> Result<(), String> {
        let args: Vec<String> = line[1..].iter().map(|s| s.to_string()).collect();
        vet(line[0], &args)
    }

    /// Every spelling a review got through the old literal-string check, and more.
    #[test]
    fn every_bypass_spelling_is_refused() {
        let attempts: &[&[&str]] = &[
            &["claude", "--dangerously-skip-permissions"],
            &["claude", "--dangerously-skip-permissions=true"],
            &["claude", "--permission-mode", "bypassPermissions"],
            &["claude", "--permission-mode=bypassPermissions"],
            &[
                "claude",
                "--settings",
                r#"{"permissions":{"defaultMode":"bypassPermissions"}}"#,
            ],
            &["claude", "--allowedTools", "Bash"],
            &["claude", "--mcp-config", "evil.json"],
            &["claude", "-c", "--dangerously-skip-permissions"],
            &["claude", "-cr", "--yolo"],
            &["claude", "--continue=yes"],
            &["claude", "mcp"],
            &["claude", "--", "--dangerously-skip-permissions"],
            &["gemini", "-y"],
            &["gemini", "--yolo"],
            &["gemini", "--yolo=true"],
            &["gemini", "--approval-mode=yolo"],
            &["gemini", "--approval-mode", "yolo"],
            &["gemini", "-yd"],
            &["codex", "-a", "never", "-s", "danger-full-access"],
            &["codex", "-c", "approval_policy=\"never\""],
            &["codex", "--config", "approval_policy=never"],
            &["codex", "--full-auto"],
            &["codex", "--dangerously-bypass-approvals-and-sandbox"],
            &["codex", "exec", "--full-auto", "do it"],
            &["codex", "-m", "--full-auto"],
            &["codex", "--model=x", "resume"],
            &["opencode", "run", "do it"],
            &["opencode", "-p"],
            &["gemini", "-i", "--yolo"],
            &["gemini", "--prompt-interactive", "--approval-mode=yolo"],
            &["opencode", "-p", "--dangerously-skip-permissions"],
        ];
        for attempt in attempts {
            assert!(vet_line(attempt).is_err(), "{attempt:?} was let through");
        }
    }

    #[test]
    fn resume_model_and_prompts_pass() {
        let fine: &[&[&str]] = &[
            &["claude"],
            &["claude", "--continue"],
            &["claude", "-c"],
            &["claude", "--resume"],
            &["claude", "--resume", "0a1b-2c3d"],
            &["claude", "-r", "0a1b-2c3d", "fix the failing test"],
            &["claude", "--model=opus", "explain this repo"],
            &["claude", "--model", "claude-sonnet-4.5"],
            &["codex", "resume", "--last"],
            &["codex", "-m", "gpt-5", "write the tests"],
            &["codex", "-mgpt-5"],
            &["gemini", "-m", "gemini-2.5-pro", "-i", "review the diff"],
            &["opencode", "-c"],
            &[
                "opencode",
                "--session",
                "ses_123",
                "--prompt",
                "carry on please",
            ],
        ];
        for line in fine {
            assert_eq!(vet_line(line), Ok(()), "{line:?}");
        }
    }

    #[test]
    fn refusals_say_what_is_allowed() {
        let error = vet_line(&["claude", "--settings", "{}"]).expect_err("refused");
        assert!(
            error.contains("--settings") && error.contains("--continue"),
            "{error}"
        );
        assert!(vet("bash", &[]).is_err());
    }
}
