//! Prefiq's built-in templates, embedded from this crate's own folder.
//!
//! Everything the generator writes that is not Rust comes from one of these minijinja templates.
//! A project overrides one by putting a file of the same name in its `templates/` folder (or an
//! app's `apps/<app>/templates/`).

#![deny(missing_docs)]

/// Every built-in template: `(name, source)`, the name being its path in this folder.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "migration.sql.jinja",
        include_str!("../migration.sql.jinja"),
    ),
    ("ts/types.ts.jinja", include_str!("../ts/types.ts.jinja")),
    ("ts/client.ts.jinja", include_str!("../ts/client.ts.jinja")),
    ("ts/core.ts.jinja", include_str!("../ts/core.ts.jinja")),
    ("ts/rules.ts.jinja", include_str!("../ts/rules.ts.jinja")),
    (
        "ts/validate.ts.jinja",
        include_str!("../ts/validate.ts.jinja"),
    ),
    ("ts/hooks.ts.jinja", include_str!("../ts/hooks.ts.jinja")),
    (
        "ts/components.tsx.jinja",
        include_str!("../ts/components.tsx.jinja"),
    ),
    (
        "ts/app/App.tsx.jinja",
        include_str!("../ts/app/App.tsx.jinja"),
    ),
    (
        "ts/app/main.tsx.jinja",
        include_str!("../ts/app/main.tsx.jinja"),
    ),
    (
        "ts/app/index.html.jinja",
        include_str!("../ts/app/index.html.jinja"),
    ),
    (
        "ts/app/vite.config.ts.jinja",
        include_str!("../ts/app/vite.config.ts.jinja"),
    ),
    (
        "ts/app/app.css.jinja",
        include_str!("../ts/app/app.css.jinja"),
    ),
    (
        "ts/app/package.json.jinja",
        include_str!("../ts/app/package.json.jinja"),
    ),
    (
        "ts/app/screens.spec.tsx.jinja",
        include_str!("../ts/app/screens.spec.tsx.jinja"),
    ),
];

/// The built-in source of the template `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, source)| *source)
}
