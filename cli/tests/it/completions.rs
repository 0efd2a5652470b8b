//! `loopsy completions SHELL` and `loopsy man`: generated from the same clap
//! definitions as `--help`, checked by the shells and `man` themselves.

use std::process::Command;

use crate::harness::{Loopsy, stdout};

#[test]
fn bash_loads_the_completions_and_they_know_the_commands() {
    let loopsy = Loopsy::new();
    let script = loopsy.dir.path().join("loopsy.bash");
    std::fs::write(&script, stdout(&loopsy.run(&["completions", "bash"]))).expect("write");
    // Sourced by bash, the function completes `loopsy m…` and `loopsy mcp a…`.
    let probe = format!(
        "source {}; COMP_WORDS=(loopsy m); COMP_CWORD=1; _loopsy loopsy m loopsy; echo \"${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(loopsy mcp a); COMP_CWORD=2; _loopsy loopsy a mcp; echo \"${{COMPREPLY[*]}}\"",
        script.display()
    );
    let out = Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = said.lines().collect();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lines[0].split(' ').any(|w| w == "mcp") && lines[0].split(' ').any(|w| w == "mobile"),
        "{said}"
    );
    assert!(lines[1].split(' ').any(|w| w == "add"), "{said}");
    let zsh = stdout(&loopsy.run(&["completions", "zsh"]));
    assert!(
        zsh.starts_with("#compdef loopsy"),
        "{}",
        &zsh[..40.min(zsh.len())]
    );
    assert!(stdout(&loopsy.run(&["completions", "fish"])).contains("complete -c loopsy"));
    let refused = loopsy.run(&["completions", "tcsh"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a shell clap does not know is a usage error"
    );
}

#[test]
fn the_man_page_renders_and_lists_the_commands() {
    let loopsy = Loopsy::new();
    let page = loopsy.dir.path().join("loopsy.1");
    std::fs::write(&page, stdout(&loopsy.run(&["man"]))).expect("write");
    let Ok(out) = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    else {
        eprintln!("skipped: no `man` to render the page with (apt-get install man-db)");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for word in ["NAME", "SUBCOMMANDS", "mcp", "peers", "completions"] {
        assert!(text.contains(word), "no {word} in the page:\n{text}");
    }
}
