//! The events an app declares in `core/events/*.yaml`, besides the `created`, `updated` and
//! `deleted` events every entity publishes:
//!
//! ```yaml
//! events:
//!   deal_won:
//!     description: A deal was won.
//!     payload:            # a JSON Schema object, lowered like any other
//!       type: object
//!       required: [deal_id]
//!       properties:
//!         deal_id: {type: string, format: uuid}
//! ```
//!
//! Each payload becomes a named type (`DealWon`, or its `title`), so Rust and TypeScript get it
//! like every other type, and the AsyncAPI document describes it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Loc, Lowerer};
use crate::ir::{EventDecl, Type};
use crate::load::FileKind;
use crate::names;

const KEYS: [&str; 2] = ["description", "payload"];

impl Lowerer<'_> {
    /// Lowers every event of the app's `core/events/` files, in name order.
    /// `entities` are the snake-case names of the app's entities, whose events' names are taken.
    pub(super) fn lower_events(&mut self, entities: &[String]) -> Vec<EventDecl> {
        let mut found: BTreeMap<String, EventDecl> = BTreeMap::new();
        for file in 0..self.files.len() {
            if self.files[file].kind != FileKind::Events {
                continue;
            }
            let Some(document) = self.files[file].value.clone() else {
                continue; // its own diagnostic says why it did not parse
            };
            self.touched.insert(file);
            let root = Loc {
                file,
                pointer: String::new(),
            };
            let Some(root_object) = document.as_object() else {
                self.error(&root, false, "prefiq::events::invalid", "an events file is a mapping with one key, `events`", "write `events:` and under it each event by name, with its `description` and `payload`", "not a mapping");
                continue;
            };
            for key in root_object.keys().filter(|k| k.as_str() != "events") {
                let at = root.child(key);
                self.error(
                    &at,
                    true,
                    "prefiq::events::invalid",
                    format!("unknown key `{key}` in an events file"),
                    "an events file has one key, `events`; comments start with `#`",
                    "unknown key",
                );
            }
            let Some(events) = root_object.get("events").and_then(Value::as_object) else {
                self.error(&root, false, "prefiq::events::invalid", "an events file needs `events`: a mapping of event names to their description and payload", "write `events:` and under it each event by name, as in `deal_won: {description: ..., payload: {...}}`", "no `events`");
                continue;
            };
            for (name, event) in events {
                let at = root.child("events").child(name);
                let taken = entities.iter().find(|entity| {
                    prefiq_grammar::ENTITY_ACTIONS
                        .iter()
                        .any(|action| *name == format!("{entity}_{action}"))
                });
                if let Some(entity) = taken {
                    self.error(&at, true, "prefiq::events::name", format!("`{name}` reads as the entity `{entity}`'s own event"), format!("the entity publishes `<app>.{entity}.created`, `.updated` and `.deleted` already; name this event for what happened, as in `{entity}_approved`"), "taken");
                    continue;
                }
                if let Some(decl) = self.lower_event(&at, name, event) {
                    if let Some(other) = found.get(name) {
                        let message = format!(
                            "two events are named `{name}`; the other is in {}",
                            other.source
                        );
                        self.error(
                            &at,
                            true,
                            "prefiq::events::duplicate",
                            message,
                            "event names are unique within an app: rename one",
                            "second event with this name",
                        );
                        continue;
                    }
                    found.insert(name.clone(), decl);
                }
            }
        }
        found.into_values().collect()
    }

    fn lower_event(&mut self, at: &Loc, name: &str, event: &Value) -> Option<EventDecl> {
        let mut ok = true;
        if !prefiq_grammar::is_event_name(name) {
            self.error(at, true, "prefiq::events::name", format!("`{name}` cannot be an event's name"), format!("use lowercase words joined by `_`, as in `deal_won` (pattern `{}`); the app's name is put before it when it is published", prefiq_grammar::EVENT_NAME), "invalid name");
            ok = false;
        }
        let Some(object) = event.as_object() else {
            self.error(at, false, "prefiq::events::invalid", format!("the event `{name}` is a mapping of `description` and `payload`"), "write `description: What happened.` and `payload:` with a JSON Schema object under the event's name", "not a mapping");
            return None;
        };
        for key in object.keys().filter(|k| !KEYS.contains(&k.as_str())) {
            let help = match names::closest(key, &KEYS) {
                Some(close) => format!("did you mean `{close}`?"),
                None => "an event has a `description` and a `payload`".to_owned(),
            };
            self.error(
                &at.child(key),
                true,
                "prefiq::events::invalid",
                format!("unknown key `{key}` in the event `{name}`"),
                help,
                "unknown key",
            );
            ok = false;
        }
        let description = match object.get("description").and_then(Value::as_str) {
            Some(text) if !text.trim().is_empty() => text.trim().to_owned(),
            _ => {
                self.error(at, true, "prefiq::events::description", format!("the event `{name}` needs a `description`"), "say in a sentence what happened, for the AsyncAPI document and the subscribers' types", "no description");
                ok = false;
                String::new()
            }
        };
        let payload_at = at.child("payload");
        let is_object = object.get("payload").is_some_and(|payload| {
            payload.get("$ref").is_some()
                || payload.get("type").and_then(Value::as_str) == Some("object")
                || payload.get("properties").is_some()
        });
        if !is_object {
            let (loc, label) = match object.get("payload") {
                Some(_) => (payload_at.clone(), "not an object schema"),
                None => (at.clone(), "no payload"),
            };
            self.error(&loc, object.get("payload").is_none(), "prefiq::events::payload", format!("the payload of the event `{name}` must be a JSON Schema object"), "write `payload: {type: object, properties: {...}}`, or `$ref` an object schema; a payload with nothing to say is `{type: object}`", label);
            return None;
        }
        let lowered = self.lower_struct_or_ref(&payload_at, &names::pascal(name));
        let Type::Object { name: payload } = lowered else {
            return None; // the payload's own diagnostics say why
        };
        ok.then(|| EventDecl {
            name: name.to_owned(),
            description,
            payload,
            source: self.files[at.file].path().to_owned(),
        })
    }

    /// The named type of the object schema at `loc`, following a `$ref`.
    fn lower_struct_or_ref(&mut self, loc: &Loc, hint: &str) -> Type {
        let is_ref = self.value(loc).is_some_and(|v| v.get("$ref").is_some());
        if is_ref {
            self.lower_schema(loc, hint).ty
        } else {
            self.lower_struct(loc, hint).ty
        }
    }
}
