//! Stage 2, `validate`: check each schema file against the meta-schema (JSON Schema 2020-12
//! plus the `x-prefiq` vocabulary) with the `jsonschema` crate, before lowering trusts its shape.

use jsonschema::error::ValidationErrorKind;

use crate::diag::Diagnostic;
use crate::load::{FileKind, SourceFile};
use crate::vocab;

/// The compiled meta-schema.
pub(crate) struct MetaValidator {
    validator: jsonschema::Validator,
    entity_options: Vec<String>,
    field_options: Vec<String>,
}

/// The JSON Schema type names, for a better message than "not valid under anyOf".
const TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "object", "array", "null",
];

impl MetaValidator {
    /// Compiles the meta-schema. The 2020-12 meta-schemas it refers to ship inside `jsonschema`,
    /// so this needs no network.
    pub(crate) fn new() -> Result<MetaValidator, Diagnostic> {
        let meta = vocab::meta_schema();
        let validator = jsonschema::draft202012::options()
            .build(&meta)
            .map_err(|e| {
                Diagnostic::error(
                    "prefiq::validate::meta_schema",
                    format!("the built-in meta-schema does not compile: {e}"),
                )
            })?;
        let options = |def: &str| -> Vec<String> {
            meta["$defs"][def]["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default()
        };
        Ok(MetaValidator {
            validator,
            entity_options: options("EntityOptions"),
            field_options: options("FieldOptions"),
        })
    }

    /// Every way `file` breaks the meta-schema.
    pub(crate) fn check(&self, file: &SourceFile) -> Vec<Diagnostic> {
        let Some(value) = &file.value else {
            return Vec::new();
        };
        if file.kind != FileKind::Schema {
            return Vec::new();
        }
        let mut diagnostics = Vec::new();
        for error in self.validator.iter_errors(value) {
            let pointer = error.instance_path().to_string();
            let diagnostic = match error.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected } if pointer.ends_with("x-prefiq") => {
                    for name in unexpected {
                        let known: Vec<&str> = if pointer == "/x-prefiq" { &self.entity_options } else { &self.field_options }
                            .iter()
                            .map(String::as_str)
                            .collect();
                        let mut d = Diagnostic::error("prefiq::validate::unknown_option", format!("unknown x-prefiq option `{name}`"));
                        d = match crate::names::closest(name, &known) {
                            Some(close) => d.with_help(format!("did you mean `{close}`?")),
                            None => d.with_help(format!("x-prefiq options here: {}", known.join(", "))),
                        };
                        diagnostics.push(file.diag(d, &format!("{pointer}/{name}"), true, "not an x-prefiq option"));
                    }
                    continue;
                }
                ValidationErrorKind::AnyOf { .. } if pointer.ends_with("/type") => {
                    let shown = error.instance().to_string();
                    Diagnostic::error("prefiq::validate::type", format!("{shown} is not a JSON Schema type"))
                        .with_help(format!("use one of {}, or a list such as [string, \"null\"]", TYPES.join(", ")))
                }
                _ => Diagnostic::error("prefiq::validate::schema", format!("invalid schema: {error}"))
                    .with_help("see the JSON Schema 2020-12 keyword reference, or schemas/entity.schema.json for x-prefiq"),
            };
            diagnostics.push(file.diag(diagnostic, &pointer, false, "invalid here"));
        }
        diagnostics
    }
}
