//! The cross-field rules of `core/validation/`, published beside a body's schema under
//! `x-prefiq-rules` and evaluated here with datalogic-rs after the schema has passed.
//!
//! Codegen admits only a portable subset of JSONLogic (strict equality, comparisons of numbers,
//! logical operators over conditions), so the browser's json-logic-js reaches the same verdict
//! on the same body; a shared corpus of cases proves it.

use std::sync::LazyLock;

use datalogic_rs::{Engine, Logic};
use serde_json::Value;

use crate::problem::FieldError;

/// The key a definition carries its rules under.
pub const KEY: &str = "x-prefiq-rules";

/// The keyword a rule's failure reports.
pub const KEYWORD: &str = "x-prefiq-rules";

static ENGINE: LazyLock<Engine> = LazyLock::new(Engine::new);

/// One compiled rule.
struct Rule {
    id: String,
    logic: Logic,
    blame: Vec<String>,
    message: String,
}

/// The rules of one body, compiled once.
#[derive(Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|r| &r.id))
            .finish()
    }
}

impl Rules {
    /// The rules published in `definition` (none if it has no [`KEY`]). A rule that does not
    /// compile is a generator bug, reported with its id.
    pub fn of(definition: &Value) -> Result<Rules, String> {
        let Some(list) = definition.get(KEY) else {
            return Ok(Rules::default());
        };
        let list = list
            .as_array()
            .ok_or_else(|| format!("`{KEY}` is not a list"))?;
        let mut rules = Vec::with_capacity(list.len());
        for rule in list {
            let text = |key: &str| rule.get(key).and_then(Value::as_str).map(str::to_owned);
            let id = text("id").ok_or_else(|| format!("a rule of `{KEY}` has no id"))?;
            let condition = rule
                .get("condition")
                .ok_or_else(|| format!("the rule `{id}` has no condition"))?;
            let logic = ENGINE
                .compile(condition)
                .map_err(|e| format!("the rule `{id}` does not compile: {e}"))?;
            let blame = rule
                .get("blame")
                .and_then(Value::as_array)
                .map(|b| {
                    b.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            rules.push(Rule {
                message: text("message").unwrap_or_else(|| id.clone()),
                id,
                logic,
                blame,
            });
        }
        Ok(Rules { rules })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The errors of `instance`: for each rule it breaks, its message at each blamed member, in
    /// rule order. A rule that cannot be evaluated counts as broken, so a body is never let
    /// through by an evaluation error.
    pub fn errors(&self, instance: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for rule in &self.rules {
            let arena = bumpalo::Bump::new();
            let holds = ENGINE
                .evaluate(&rule.logic, instance, &arena)
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if holds {
                continue;
            }
            for pointer in &rule.blame {
                errors.push(FieldError {
                    pointer: pointer.clone(),
                    detail: rule.message.clone(),
                    keyword: Some(KEYWORD.to_owned()),
                });
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn subject() -> Rules {
        Rules::of(&json!({
            "type": "object",
            KEY: [{
                "id": "subject",
                "condition": {"!==": [{"===": [{"var": "deal_id"}, null]}, {"===": [{"var": "contact_id"}, null]}]},
                "blame": ["/deal_id", "/contact_id"],
                "message": "about a deal or a contact, exactly one"
            }]
        }))
        .unwrap()
    }

    #[test]
    fn a_body_that_keeps_the_rule_passes() {
        assert!(subject().errors(&json!({"deal_id": "d"})).is_empty());
        assert!(
            subject()
                .errors(&json!({"contact_id": "c", "deal_id": null}))
                .is_empty()
        );
    }

    #[test]
    fn a_broken_rule_blames_each_member_with_its_message() {
        let errors = subject().errors(&json!({}));
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/deal_id", "/contact_id"]);
        assert!(
            errors
                .iter()
                .all(|e| e.detail == "about a deal or a contact, exactly one"
                    && e.keyword.as_deref() == Some(KEYWORD))
        );
        assert_eq!(
            subject()
                .errors(&json!({"deal_id": "d", "contact_id": "c"}))
                .len(),
            2
        );
    }

    /// The shared corpus of the portable subset: datalogic-rs gives every expected result (the
    /// generated TypeScript and json-logic-js are held to the same file by the CRM's Node test).
    #[test]
    fn datalogic_gives_every_result_of_the_shared_corpus() {
        let corpus: Value = serde_json::from_str(include_str!("rules.cases.json")).unwrap();
        let cases = corpus["cases"].as_array().unwrap();
        assert!(cases.len() > 30);
        for case in cases {
            let logic = ENGINE.compile(&case["logic"]).unwrap();
            let arena = bumpalo::Bump::new();
            let result = ENGINE.evaluate(&logic, &case["data"], &arena).unwrap();
            assert_eq!(result.as_bool(), case["result"].as_bool(), "{case}");
        }
    }

    #[test]
    fn a_definition_without_rules_has_none() {
        assert!(Rules::of(&json!({"type": "object"})).unwrap().is_empty());
        assert!(Rules::of(&json!({KEY: {}})).is_err());
        assert!(Rules::of(&json!({KEY: [{"condition": true}]})).is_err());
    }
}
