//! Reading the configuration: defaults < `config.yaml` < `LOOPSY_*` env < flags,
//! with errors that name the key, and warnings for keys we do not know.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use serde_json::Value;

use super::schema::{Config, OPEN_MAPS, list_item_keys};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration at {path}; run `loopsy init` to create one")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problems}; fix the file (see config-examples/config.yaml) and try again")]
    Invalid { path: PathBuf, problems: String },
    #[error("{path}: `{key}` {problem}")]
    Value {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub port: Option<u16>,
    /// `--peer-port`: the TLS port for peers for this run.
    pub peer_port: Option<u16>,
    /// `--lan`: listen on all interfaces for this run (the file is not changed).
    pub lan: bool,
}

/// A parsed configuration and what the user should hear about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Env shortcuts kept from the original (spec §2.3).
const ENV_SHORTCUTS: &[(&str, &str)] = &[
    ("port", "server.port"),
    ("host", "server.host"),
    ("api_key", "auth.apiKey"),
];

/// Reads and merges every layer. The file must exist: a missing file is an error,
/// never silent defaults (the original's fresh-random-key bug, spec §2.1).
pub fn load(config_path: &Path, overrides: &Overrides) -> Result<Loaded, ConfigError> {
    let text = match std::fs::read_to_string(config_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing {
                path: config_path.to_owned(),
            });
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: config_path.to_owned(),
                source,
            });
        }
    };
    let defaults = serde_json::to_value(Config::default()).unwrap_or(Value::Null);
    let mut warnings = Vec::new();
    match serde_yaml::from_str::<serde_yaml::Value>(&text) {
        Ok(serde_yaml::Value::Null) => {}
        Ok(file_value @ serde_yaml::Value::Mapping(_)) => {
            if let Ok(file_json) = serde_json::to_value(file_value) {
                unknown_keys(&file_json, &defaults, "", &mut warnings);
            }
        }
        Ok(_) => {
            return Err(ConfigError::Invalid {
                path: config_path.to_owned(),
                problems: "the top level must be a mapping of sections (server:, auth:, …)"
                    .to_owned(),
            });
        }
        Err(e) => {
            return Err(ConfigError::Invalid {
                path: config_path.to_owned(),
                problems: format!("not valid YAML: {e}"),
            });
        }
    }
    let known = leaf_paths(&defaults);
    // Figment would lowercase the mapped path, losing the camelCase of
    // `execution.maxConcurrent`; `env_key_to_path` folds case itself. (Last:
    // figment's `filter_map` turns lowercasing back on.)
    let env = Env::prefixed("LOOPSY_")
        .filter_map(move |key| env_key_to_path(key.as_str(), &known).map(Into::into))
        .lowercase(false);
    let mut figment = Figment::from(Serialized::defaults(Config::default()))
        .merge(Yaml::string(&text))
        .merge(env);
    if std::env::var("LOOPSY_BIND_LAN").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        || overrides.lan
    {
        figment = figment.merge(("server.host", "0.0.0.0"));
    }
    if let Some(port) = overrides.port {
        figment = figment.merge(("server.port", port));
    }
    if let Some(port) = overrides.peer_port {
        figment = figment.merge(("server.peerPort", port));
    }
    let config: Config = figment.extract().map_err(|error| ConfigError::Invalid {
        path: config_path.to_owned(),
        problems: describe(error),
    })?;
    Ok(Loaded { config, warnings })
}

/// One line per problem, each naming the key.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            if key.is_empty() {
                e.kind.to_string()
            } else {
                format!("key `{key}`: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn unknown_keys(file: &Value, defaults: &Value, prefix: &str, warnings: &mut Vec<String>) {
    match (file, defaults) {
        (Value::Object(given), Value::Object(known)) if !OPEN_MAPS.contains(&prefix) => {
            for (key, value) in given {
                let path = join(prefix, key);
                match known.get(key) {
                    Some(default) => unknown_keys(value, default, &path, warnings),
                    None => {
                        let mut names: Vec<&str> = known.keys().map(String::as_str).collect();
                        names.sort_unstable();
                        warnings.push(format!(
                            "unknown key `{path}` is ignored (known here: {})",
                            names.join(", ")
                        ));
                    }
                }
            }
        }
        (Value::Array(items), _) => {
            let Some(allowed) = list_item_keys(prefix) else {
                return;
            };
            for (index, item) in items.iter().enumerate() {
                let Value::Object(fields) = item else {
                    continue;
                };
                for key in fields.keys().filter(|k| !allowed.contains(&k.as_str())) {
                    warnings.push(format!(
                        "unknown key `{prefix}[{index}].{key}` is ignored (known here: {})",
                        allowed.join(", ")
                    ));
                }
            }
        }
        _ => {}
    }
}

/// Every settable dotted path, e.g. `execution.maxConcurrent`.
fn leaf_paths(defaults: &Value) -> Vec<String> {
    fn walk(value: &Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) if !OPEN_MAPS.contains(&prefix) => {
                for (key, child) in map {
                    walk(child, &join(prefix, key), out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut out = Vec::new();
    walk(defaults, "", &mut out);
    out
}

fn normalise(segment: &str) -> String {
    segment
        .chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Maps `LOOPSY_EXECUTION__MAX_CONCURRENT` (already stripped of its prefix) to
/// `execution.maxConcurrent`; `None` for variables that are not config keys.
fn env_key_to_path(key: &str, known: &[String]) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    if let Some((_, path)) = ENV_SHORTCUTS.iter().find(|(short, _)| *short == lower) {
        return Some((*path).to_owned());
    }
    if !lower.contains("__") {
        return None;
    }
    let wanted: Vec<String> = lower.split("__").map(normalise).collect();
    known
        .iter()
        .find(|path| {
            let segments: Vec<String> = path.split('.').map(normalise).collect();
            segments == wanted
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        leaf_paths(&serde_json::to_value(Config::default()).unwrap_or(Value::Null))
    }

    #[test]
    fn env_keys_map_to_camel_case_paths() {
        let known = known();
        assert_eq!(
            env_key_to_path("SERVER__PORT", &known).as_deref(),
            Some("server.port")
        );
        assert_eq!(
            env_key_to_path("EXECUTION__MAX_CONCURRENT", &known).as_deref(),
            Some("execution.maxConcurrent")
        );
        assert_eq!(
            env_key_to_path("API_KEY", &known).as_deref(),
            Some("auth.apiKey")
        );
        assert_eq!(env_key_to_path("DATA_DIR", &known), None);
        assert_eq!(env_key_to_path("SERVER__NOPE", &known), None);
    }

    #[test]
    fn unknown_keys_are_reported_with_their_path() {
        let defaults = serde_json::to_value(Config::default()).unwrap_or(Value::Null);
        let file = serde_json::json!({
            "server": {"prot": 1, "port": 2},
            "auth": {"allowedKeys": {"laptop": "k"}},
            "customCommands": [{"id": "a", "label": "b", "command": "c", "colour": "red"}],
            "extra": true
        });
        let mut warnings = Vec::new();
        unknown_keys(&file, &defaults, "", &mut warnings);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("`server.prot`")));
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("`customCommands[0].colour`"))
        );
        assert!(warnings.iter().any(|w| w.contains("`extra`")));
    }
}
