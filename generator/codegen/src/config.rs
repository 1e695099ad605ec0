//! The project's settings, from `prefiq.toml` at its root. Every setting has a default.

use serde::Deserialize;

/// Settings from `prefiq.toml` at the project root. Every setting has a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProjectConfig {
    /// Where generated crates find `prefiq-runtime`.
    #[serde(default)]
    pub runtime: RuntimeSource,
    /// Cortex, the server that runs the installed apps together.
    #[serde(default)]
    pub cortex: CortexConfig,
}

/// `[cortex]` in `prefiq.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CortexConfig {
    /// The apps Cortex runs, in the order their migrations apply. Default: every app under
    /// `apps/`, by name. Installing an app is adding it here and running `prefiq codegen`.
    pub apps: Option<Vec<String>>,
}

impl ProjectConfig {
    /// The apps Cortex runs (resolved by the loader).
    pub fn installed(&self) -> &[String] {
        self.cortex.apps.as_deref().unwrap_or_default()
    }
}

/// How generated crates depend on `prefiq-runtime`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeSource {
    /// A path, relative to the project root (as in this repository: `runtime`) or absolute.
    pub path: Option<String>,
    /// A crates.io version requirement, used when `path` is absent.
    #[serde(default = "default_runtime_version")]
    pub version: String,
}

fn default_runtime_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

impl Default for RuntimeSource {
    fn default() -> Self {
        RuntimeSource {
            path: None,
            version: default_runtime_version(),
        }
    }
}
