//! Fixture packs (`apps/<app>/core/fixtures/*.yaml`): seed rows keyed by entity name. They are
//! checked against the entity schemas at codegen time, and `prefiq seed` loads them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::{App, Entity, FieldRole, KeyGeneration};
use crate::load::{FileKind, SourceFile};
use crate::names;
use crate::schemas::{self as schema, DEFS};

/// One fixture row, located in its file.
#[derive(Debug, Clone)]
pub struct Row {
    /// The entity.
    pub entity: String,
    /// The row, as written.
    pub value: Value,
    /// The file it came from.
    pub file: usize,
    /// Its JSON pointer in that file.
    pub pointer: String,
}

/// What a fixture row may hold: the create input plus the primary key.
fn row_schema(entity: &Entity) -> Value {
    let mut row = schema::create(entity, DEFS);
    let key = entity.key();
    if key.role != FieldRole::PrimaryKey(KeyGeneration::Client) {
        row["properties"][&key.member.name] = schema::type_schema(&key.member.ty, false, DEFS);
    }
    row
}

/// The rows of every fixture file of an app, and the problems with them.
/// `schemas` is the app's JSON Schema document ([`crate::schemas::document`]).
pub fn check(app: &App, schemas: &Value, files: &[SourceFile]) -> (Vec<Row>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut rows = Vec::new();
    let entities: BTreeMap<&str, &Entity> =
        app.entities.iter().map(|e| (e.name.as_str(), e)).collect();
    if !files.iter().any(|f| f.kind == FileKind::Fixture) {
        return (rows, diagnostics);
    }
    // One validator for whole fixture files: `{Company: [rows...], ...}`.
    let mut defs = schemas["$defs"].clone();
    let mut packs = serde_json::Map::new();
    for entity in &app.entities {
        defs[format!("{}Fixture", entity.name)] = row_schema(entity);
        packs.insert(entity.name.clone(), serde_json::json!({ "type": "array", "items": { "$ref": format!("#/$defs/{}Fixture", entity.name) } }));
    }
    let root = serde_json::json!({ "$schema": crate::vocab::DRAFT_2020_12, "type": "object", "properties": packs, "$defs": defs });
    let validator = match jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
    {
        Ok(validator) => Some(validator),
        Err(error) => {
            diagnostics.push(Diagnostic::error(
                "prefiq::fixtures::schema",
                format!("internal error: the fixture schema does not compile: {error}"),
            ));
            None
        }
    };
    for (index, file) in files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == FileKind::Fixture)
    {
        let Some(Value::Object(packs)) = &file.value else {
            continue;
        };
        if let Some(validator) = &validator {
            for error in validator.iter_errors(file.value.as_ref().unwrap_or(&Value::Null)) {
                let mut member = error.instance_path().to_string();
                if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                    error.kind()
                {
                    member = format!(
                        "{member}/{}",
                        unexpected.first().cloned().unwrap_or_default()
                    );
                }
                let entity = member.split('/').nth(1).unwrap_or_default().to_owned();
                let diagnostic = Diagnostic::error(
                    "prefiq::fixtures::invalid",
                    format!("this {entity} fixture is invalid: {error}"),
                )
                .with_help(format!(
                    "fixture rows follow the {entity}Create schema, plus the primary key"
                ));
                diagnostics.push(file.diag(diagnostic, &member, true, "invalid"));
            }
        }
        for (entity_name, list) in packs {
            let at = format!("/{}", crate::load::spans::escape(entity_name));
            if !entities.contains_key(entity_name.as_str()) {
                let known: Vec<&str> = entities.keys().copied().collect();
                let help = names::closest(entity_name, &known)
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("entities of this app: {}", known.join(", ")));
                diagnostics.push(
                    file.diag(
                        Diagnostic::error(
                            "prefiq::fixtures::unknown_entity",
                            format!("fixtures for an unknown entity `{entity_name}`"),
                        )
                        .with_help(help),
                        &at,
                        true,
                        "unknown entity",
                    ),
                );
                continue;
            }
            let Some(list) = list.as_array() else {
                diagnostics.push(
                    file.diag(
                        Diagnostic::error(
                            "prefiq::fixtures::shape",
                            format!("the fixtures of {entity_name} must be a list of rows"),
                        )
                        .with_help("write `Company:` followed by `- name: ...` items"),
                        &at,
                        true,
                        "not a list",
                    ),
                );
                continue;
            };
            for (position, row) in list.iter().enumerate() {
                let pointer = format!("{at}/{position}");
                rows.push(Row {
                    entity: entity_name.clone(),
                    value: row.clone(),
                    file: index,
                    pointer,
                });
            }
        }
    }
    check_keys(app, files, &rows, &mut diagnostics);
    check_rules(app, files, &rows, &mut diagnostics);
    (rows, diagnostics)
}

/// Every row keeps its entity's rules (`core/validation/`), evaluated with the engine the server
/// uses, so that `prefiq seed` never meets a row the server would refuse.
fn check_rules(app: &App, files: &[SourceFile], rows: &[Row], diagnostics: &mut Vec<Diagnostic>) {
    let engine = datalogic_rs::Engine::new();
    for entity in app.entities.iter().filter(|e| !e.rules.is_empty()) {
        for rule in &entity.rules {
            let Ok(logic) = engine.compile(&rule.condition) else {
                continue;
            };
            for row in rows.iter().filter(|r| r.entity == entity.name) {
                let arena = bumpalo::Bump::new();
                let holds = engine
                    .evaluate(&logic, &row.value, &arena)
                    .ok()
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if !holds {
                    let diagnostic = Diagnostic::error(
                        "prefiq::fixtures::rule",
                        format!(
                            "this {} fixture breaks the rule `{}`: {}",
                            entity.name, rule.id, rule.message
                        ),
                    )
                    .with_help(format!(
                        "change the row, or the rule in {} (it blames {})",
                        rule.source,
                        rule.blame.join(", ")
                    ));
                    diagnostics.push(files[row.file].diag(
                        diagnostic,
                        &row.pointer,
                        false,
                        "breaks a rule",
                    ));
                }
            }
        }
    }
}

/// Keys are unique, and every reference names a row some fixture defines.
fn check_keys(app: &App, files: &[SourceFile], rows: &[Row], diagnostics: &mut Vec<Diagnostic>) {
    let mut keys: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for entity in &app.entities {
        let key = &entity.key().member.name;
        let mut seen = BTreeSet::new();
        for row in rows.iter().filter(|r| r.entity == entity.name) {
            let Some(value) = row.value.get(key) else {
                continue;
            };
            if !seen.insert(value.to_string()) {
                let file = &files[row.file];
                diagnostics.push(
                    file.diag(
                        Diagnostic::error(
                            "prefiq::fixtures::duplicate_key",
                            format!("two {} fixtures have the {key} {value}", entity.name),
                        )
                        .with_help("give every row its own key"),
                        &format!("{}/{}", row.pointer, key),
                        false,
                        "duplicate",
                    ),
                );
            }
        }
        keys.insert(entity.name.as_str(), seen);
    }
    for entity in &app.entities {
        for row in rows.iter().filter(|r| r.entity == entity.name) {
            for field in entity.fields.iter().filter(|f| f.references.is_some()) {
                let Some(value) = row.value.get(&field.member.name).filter(|v| !v.is_null()) else {
                    continue;
                };
                let target = &field
                    .references
                    .as_ref()
                    .map(|r| r.entity.clone())
                    .unwrap_or_default();
                if !keys
                    .get(target.as_str())
                    .is_some_and(|k| k.contains(&value.to_string()))
                {
                    let file = &files[row.file];
                    diagnostics.push(
                        file.diag(
                            Diagnostic::error(
                                "prefiq::fixtures::dangling_reference",
                                format!(
                                    "`{}` refers to the {target} {value}, which no fixture defines",
                                    field.member.name
                                ),
                            )
                            .with_help(format!(
                                "add a {target} fixture with this key, or refer to one that exists"
                            )),
                            &format!(
                                "{}/{}",
                                row.pointer,
                                crate::load::spans::escape(&field.member.name)
                            ),
                            false,
                            "no such row",
                        ),
                    );
                }
            }
        }
    }
}

/// Entities in an order where each comes after those it refers to (self-references aside).
pub fn insert_order(app: &App) -> Vec<&Entity> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < app.entities.len() {
        let next = app
            .entities
            .iter()
            .filter(|e| !done.contains(e.name.as_str()))
            .find(|e| {
                e.fields
                    .iter()
                    .filter_map(|f| f.references.as_ref())
                    .all(|r| r.entity == e.name || done.contains(r.entity.as_str()))
            })
            .or_else(|| {
                app.entities
                    .iter()
                    .find(|e| !done.contains(e.name.as_str()))
            });
        let Some(next) = next else { break };
        done.insert(&next.name);
        order.push(next);
    }
    order
}
