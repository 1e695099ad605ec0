//! `src/services/rules.ts`: the rules of `core/validation/`, checked by the library's evaluator.

use crate::diag::Diagnostic;
use crate::ir::App;
use crate::names::pascal;
use crate::templates::Templates;

use super::RUNTIME;

/// `src/services/rules.ts`: the rules of `core/validation/` per body they judge, checked by the
/// frontend library's evaluator.
pub(super) fn rules(app: &App, templates: &Templates) -> Result<String, Diagnostic> {
    let published = |rules: &[crate::ir::Rule]| {
        let value = crate::schemas::with_rules(serde_json::json!({}), rules);
        let lines: Vec<String> = value[crate::schemas::RULES]
            .as_array()
            .into_iter()
            .flatten()
            .map(|rule| format!("  {rule},"))
            .collect();
        format!("[\n{}\n]", lines.join("\n"))
    };
    let mut checks = Vec::new();
    for entity in app.entities.iter().filter(|e| !e.rules.is_empty()) {
        checks.push(serde_json::json!({
            "name": entity.name,
            "doc": format!("`{}` bodies (a create's input, or the merged result of a patch)", entity.name),
            "rules": published(&entity.rules),
        }));
    }
    for operation in app.custom() {
        if let Some(body) = operation.body.as_ref().filter(|b| !b.rules.is_empty()) {
            checks.push(serde_json::json!({
                "name": pascal(&operation.id),
                "doc": format!("`{}` bodies", operation.id),
                "rules": published(&body.rules),
            }));
        }
    }
    templates.render(
        "ts/rules.ts.jinja",
        serde_json::json!({ "root": crate::ir::app_root(&app.name), "runtime": RUNTIME, "checks": checks }),
    )
}
