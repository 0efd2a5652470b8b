//! A tool call's arguments, checked against what the tool takes: every
//! mistake (a missing argument, a wrong type, a number out of range, a name
//! the tool does not know) is a tool error that says what to send instead.

use serde_json::{Map, Value};

use super::ToolError;

pub struct Args {
    tool: String,
    values: Map<String, Value>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Args {
    /// The arguments of a call to `tool`, whose schema lists `known`.
    pub fn new(
        tool: &str,
        values: Option<Map<String, Value>>,
        known: &[String],
    ) -> Result<Self, ToolError> {
        let values = values.unwrap_or_default();
        if let Some(unknown) = values.keys().find(|k| !known.contains(k)) {
            let takes = if known.is_empty() {
                "no arguments".to_owned()
            } else {
                known.join(", ")
            };
            return Err(ToolError(format!(
                "{tool} has no argument `{unknown}`; it takes {takes}"
            )));
        }
        Ok(Self {
            tool: tool.to_owned(),
            values,
        })
    }

    /// No arguments (for a tool that does not exist).
    pub fn empty() -> Self {
        Self {
            tool: String::new(),
            values: Map::new(),
        }
    }

    fn wrong(&self, name: &str, wanted: &str, got: &Value) -> ToolError {
        ToolError(format!(
            "{}: `{name}` must be {wanted}, not {}",
            self.tool,
            kind(got)
        ))
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, ToolError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(name, "a string", other)),
        }
    }

    pub fn str(&self, name: &str) -> Result<&str, ToolError> {
        self.opt_str(name)?
            .ok_or_else(|| ToolError(format!("{}: `{name}` is required", self.tool)))
    }

    /// A whole number from 0 to `max`.
    pub fn opt_u64(&self, name: &str, max: u64) -> Result<Option<u64>, ToolError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value @ Value::Number(n)) => match n.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(self.wrong(name, &format!("a whole number from 0 to {max}"), value)),
            },
            Some(other) => Err(self.wrong(name, "a whole number", other)),
        }
    }

    /// Seconds, from 0 to `max` (fractions allowed).
    pub fn opt_seconds(&self, name: &str, max: f64) -> Result<Option<f64>, ToolError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(s) if s.is_finite() && (0.0..=max).contains(&s) => Ok(Some(s)),
                _ => Err(ToolError(format!(
                    "{}: `{name}` must be from 0 to {max} seconds",
                    self.tool
                ))),
            },
            Some(other) => Err(self.wrong(name, "a number of seconds", other)),
        }
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ToolError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong(name, "true or false", other)),
        }
    }

    pub fn str_list(&self, name: &str) -> Result<Vec<String>, ToolError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong(&format!("{name}[]"), "a string", other)),
                })
                .collect(),
            Some(other) => Err(self.wrong(name, "an array of strings", other)),
        }
    }

    /// `peer`, if named.
    pub fn peer(&self) -> Result<Option<&str>, ToolError> {
        self.opt_str("peer")
            .map(|p| p.map(str::trim).filter(|p| !p.is_empty()))
    }
}
