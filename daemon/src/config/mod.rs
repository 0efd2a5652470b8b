//! Configuration: the schema of `config.yaml`, layered loading, validation into
//! [`Settings`], the `init` template, and safe edits by the single writer.

mod edit;
mod load;
mod schema;
mod settings;

pub use edit::{
    ConfigWriteLock, file_api_key, set_api_key, set_auto_approve_for, set_custom_commands,
};
pub use load::{ConfigError, Overrides};
pub use schema::*;
pub use settings::{LOG_LEVELS, Settings, os_hostname};

/// The annotated example, which is also what `loopsy init` writes.
pub const EXAMPLE: &str = include_str!("../../../config-examples/config.yaml");

const KEY_PLACEHOLDER: &str = "\"run `loopsy init` or `loopsy key generate` to set this\"";

/// The text `loopsy init` writes: the annotated example with a real key.
pub fn initial_config(api_key: &str) -> String {
    EXAMPLE.replacen(KEY_PLACEHOLDER, &format!("\"{api_key}\""), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_to_the_defaults() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = crate::paths::DataDir::new(dir.path());
        std::fs::write(data.config(), initial_config(&"ab12".repeat(16)))?;
        let settings = Settings::load(data, &Overrides::default())?;
        assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
        let mut expected = Config::default();
        expected.auth.api_key = "ab12".repeat(16);
        assert_eq!(settings.config, expected);
        Ok(())
    }

    #[test]
    fn init_template_has_the_placeholder_once() {
        assert_eq!(EXAMPLE.matches(KEY_PLACEHOLDER).count(), 1);
    }
}
