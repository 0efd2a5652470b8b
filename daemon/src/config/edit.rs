//! Changing `config.yaml` without losing the user's comments or racing another
//! writer: an exclusive lock on `config.lock`, a minimal textual edit verified by
//! re-parsing, and an atomic `0600` replace.

use std::fs::File;
use std::path::Path;

use super::load::ConfigError;
use crate::durable;
use crate::paths::DataDir;

/// Held while a writer changes `config.yaml`; released on drop.
pub struct ConfigWriteLock {
    _file: File,
}

impl ConfigWriteLock {
    pub fn acquire(data_dir: &DataDir) -> Result<Self, ConfigError> {
        let path = data_dir.config_lock();
        let write_error = |source| ConfigError::Write {
            path: path.clone(),
            source,
        };
        let file = durable::open_private_append(&path).map_err(write_error)?;
        file.lock().map_err(write_error)?;
        Ok(Self { _file: file })
    }
}

fn api_key_in(text: &str) -> Option<String> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    value
        .get("auth")?
        .get("apiKey")?
        .as_str()
        .map(str::to_owned)
}

/// The `auth.apiKey` written in `config.yaml`, read without the other layers or
/// validation (for `key show` and `doctor` while no daemon runs).
pub fn file_api_key(data_dir: &DataDir) -> Result<Option<String>, ConfigError> {
    let path = data_dir.config();
    let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ConfigError::Missing { path: path.clone() },
        _ => ConfigError::Read {
            path: path.clone(),
            source,
        },
    })?;
    serde_yaml::from_str::<serde_yaml::Value>(&text).map_err(|e| ConfigError::Invalid {
        path: path.clone(),
        problems: format!("not valid YAML: {e}"),
    })?;
    Ok(api_key_in(&text).filter(|key| !key.is_empty()))
}

/// The one way `config.yaml` is changed: under the write lock, `edit` turns the
/// current text into the new text, `holds` checks the re-parsed result says what
/// was intended, and only then is the file replaced (atomically, `0600`).
fn edit_config(
    data_dir: &DataDir,
    what: &str,
    edit: impl FnOnce(&str) -> Result<String, ConfigError>,
    holds: impl FnOnce(&serde_yaml::Value) -> bool,
) -> Result<(), ConfigError> {
    let _lock = ConfigWriteLock::acquire(data_dir)?;
    let path = data_dir.config();
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let new_text = edit(&text)?;
    let invalid = |problems: String| ConfigError::Invalid {
        path: path.clone(),
        problems,
    };
    let parsed: serde_yaml::Value = serde_yaml::from_str(&new_text)
        .map_err(|e| invalid(format!("changing {what} would break the file: {e}")))?;
    if !holds(&parsed) {
        return Err(invalid(format!(
            "the edited file does not hold the intended {what}"
        )));
    }
    durable::write_private_atomic(&path, new_text.as_bytes())
        .map_err(|source| ConfigError::Write { path, source })
}

fn invalid_in(data_dir: &DataDir, problems: String) -> ConfigError {
    ConfigError::Invalid {
        path: data_dir.config(),
        problems,
    }
}

/// Sets `auth.apiKey` to `new_key`. Keeps the file byte-for-byte apart from the key
/// when the old key appears exactly once; otherwise rewrites the YAML (comments lost).
pub fn set_api_key(data_dir: &DataDir, new_key: &str) -> Result<(), ConfigError> {
    edit_config(
        data_dir,
        "auth.apiKey",
        |text| {
            let in_place = match api_key_in(text) {
                Some(old) if !old.is_empty() && text.matches(old.as_str()).count() == 1 => {
                    Some(text.replacen(old.as_str(), new_key, 1))
                }
                _ => None,
            }
            .filter(|candidate| api_key_in(candidate).as_deref() == Some(new_key));
            match in_place {
                Some(text) => Ok(text),
                None => rewrite_with_key(&data_dir.config(), text, new_key),
            }
        },
        |parsed| parsed["auth"]["apiKey"].as_str() == Some(new_key),
    )
}

fn rewrite_with_key(path: &Path, text: &str, new_key: &str) -> Result<String, ConfigError> {
    let invalid = |problems: String| ConfigError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let mut value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| invalid(format!("not valid YAML: {e}")))?;
    if value.is_null() {
        value = serde_yaml::Value::Mapping(Default::default());
    }
    let root = value
        .as_mapping_mut()
        .ok_or_else(|| invalid("the top level must be a mapping".to_owned()))?;
    let auth = root
        .entry("auth".into())
        .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
    let auth = auth
        .as_mapping_mut()
        .ok_or_else(|| invalid("`auth` must be a mapping".to_owned()))?;
    auth.insert("apiKey".into(), new_key.into());
    serde_yaml::to_string(&value).map_err(|e| invalid(format!("cannot serialise: {e}")))
}

/// Replaces the top-level `customCommands:` block (or appends one), leaving every
/// other line of the file as it was.
pub fn set_custom_commands(
    data_dir: &DataDir,
    commands: &[super::CustomCommand],
) -> Result<(), ConfigError> {
    edit_config(
        data_dir,
        "customCommands",
        |text| {
            let block = if commands.is_empty() {
                "customCommands: []\n".to_owned()
            } else {
                let yaml = serde_yaml::to_string(commands)
                    .map_err(|e| invalid_in(data_dir, format!("cannot serialise: {e}")))?;
                let indented: String = yaml.lines().map(|line| format!("  {line}\n")).collect();
                format!("customCommands:\n{indented}")
            };
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            Ok(
                match lines.iter().position(|l| l.starts_with("customCommands:")) {
                    Some(start) => {
                        // The block ends at the next top-level key (comments and blank
                        // lines directly before it stay with it).
                        let mut end = lines[start + 1..]
                            .iter()
                            .position(|l| l.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
                            .map_or(lines.len(), |i| start + 1 + i);
                        while end > start + 1
                            && (lines[end - 1].trim().is_empty() || lines[end - 1].starts_with('#'))
                        {
                            end -= 1;
                        }
                        format!(
                            "{}{block}{}",
                            lines[..start].concat(),
                            lines[end..].concat()
                        )
                    }
                    None => append(text, &block),
                },
            )
        },
        |parsed| {
            serde_yaml::from_value::<Vec<super::CustomCommand>>(parsed["customCommands"].clone())
                .is_ok_and(|stored| stored == commands)
        },
    )
}

/// `text` with `block` added at the end, on a line of its own.
fn append(text: &str, block: &str) -> String {
    let mut out = text.to_owned();
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    out.push_str(block);
    out
}

/// Sets `session.autoApproveFor`, editing only that key's line (or adding it).
pub fn set_auto_approve_for(data_dir: &DataDir, peers: &[String]) -> Result<(), ConfigError> {
    let list = format!(
        "[{}]",
        peers
            .iter()
            .map(|p| serde_json::to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", ")
    );
    edit_config(
        data_dir,
        "session.autoApproveFor",
        |text| {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let session = lines.iter().position(|l| l.trim_end() == "session:");
            let key = session.and_then(|start| {
                lines[start + 1..]
                    .iter()
                    .take_while(|l| !l.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
                    .position(|l| l.trim_start().starts_with("autoApproveFor:"))
                    .map(|i| start + 1 + i)
            });
            Ok(match (session, key) {
                (_, Some(at)) => {
                    let indent = &lines[at][..lines[at].len() - lines[at].trim_start().len()];
                    // A block-style list continues on deeper-indented `- item` lines.
                    let mut end = at + 1;
                    while end < lines.len()
                        && lines[end].trim_start().starts_with("- ")
                        && lines[end].len() - lines[end].trim_start().len() > indent.len()
                    {
                        end += 1;
                    }
                    format!(
                        "{}{indent}autoApproveFor: {list}\n{}",
                        lines[..at].concat(),
                        lines[end..].concat()
                    )
                }
                (Some(start), None) => format!(
                    "{}  autoApproveFor: {list}\n{}",
                    lines[..=start].concat(),
                    lines[start + 1..].concat()
                ),
                (None, None) => append(text, &format!("session:\n  autoApproveFor: {list}\n")),
            })
        },
        |parsed| {
            serde_yaml::from_value::<Vec<String>>(parsed["session"]["autoApproveFor"].clone())
                .is_ok_and(|stored| stored == peers)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_edit_keeps_comments() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        let old = "a".repeat(64);
        std::fs::write(
            data.config(),
            format!("# mine\nauth:\n  apiKey: \"{old}\" # keep\n"),
        )?;
        set_api_key(&data, &"b".repeat(64))?;
        let text = std::fs::read_to_string(data.config())?;
        assert_eq!(
            text,
            format!("# mine\nauth:\n  apiKey: \"{}\" # keep\n", "b".repeat(64))
        );
        Ok(())
    }

    #[test]
    fn key_edit_rewrites_when_the_key_is_missing() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        std::fs::write(data.config(), "server:\n  port: 1234\n")?;
        set_api_key(&data, "newkey")?;
        let text = std::fs::read_to_string(data.config())?;
        assert_eq!(api_key_in(&text).as_deref(), Some("newkey"));
        assert!(text.contains("1234"));
        Ok(())
    }
}

#[cfg(test)]
mod custom_command_tests {
    use super::*;
    use crate::config::CustomCommand;

    #[test]
    fn the_block_is_replaced_and_the_rest_kept() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        std::fs::write(
            data.config(),
            "# top\nserver:\n  port: 1\n\n# commands\ncustomCommands: []\n\n# after\nlogging:\n  level: info\n",
        )?;
        let command = CustomCommand {
            id: "1".into(),
            label: "Build".into(),
            command: "cargo".into(),
            args: vec!["build".into()],
            cwd: None,
            icon: None,
            created_at: None,
        };
        set_custom_commands(&data, std::slice::from_ref(&command))?;
        let text = std::fs::read_to_string(data.config())?;
        assert!(
            text.starts_with("# top\nserver:\n  port: 1\n\n# commands\ncustomCommands:\n"),
            "{text}"
        );
        assert!(
            text.contains("# after\nlogging:\n  level: info\n"),
            "{text}"
        );
        set_custom_commands(&data, &[])?;
        let text = std::fs::read_to_string(data.config())?;
        assert!(text.contains("customCommands: []\n\n# after"), "{text}");
        Ok(())
    }

    #[test]
    fn grants_replace_block_lists_and_are_added_where_missing()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        std::fs::write(
            data.config(),
            "session:\n  autoApproveFor:\n    - old\n  ringBytes: 10\n# end\n",
        )?;
        set_auto_approve_for(&data, &["laptop".to_owned()])?;
        let text = std::fs::read_to_string(data.config())?;
        assert_eq!(
            text,
            "session:\n  autoApproveFor: [\"laptop\"]\n  ringBytes: 10\n# end\n"
        );
        std::fs::write(data.config(), "server:\n  port: 1\n")?;
        set_auto_approve_for(&data, &[])?;
        let text = std::fs::read_to_string(data.config())?;
        assert_eq!(text, "server:\n  port: 1\nsession:\n  autoApproveFor: []\n");
        Ok(())
    }
}
