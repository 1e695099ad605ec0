//! The AsyncAPI 3.0 document of an app's events: every entity's `created`, `updated` and
//! `deleted`, and the events of `core/events/`, each a channel the app sends on, with the
//! envelope a subscriber or a webhook receives and its payload's schema (the components are
//! the OpenAPI document's, made by [`crate::schemas`]).

use serde_json::{Map, Value, json};

use crate::ir::App;
use crate::names;
use crate::schemas::{self as schema, COMPONENTS};

/// One event in the document.
struct Channel {
    /// Its key in `channels`, `operations` and `components.messages`, as in `dealCreated`.
    id: String,
    /// Its type, the channel's address: `crm.deal.created`.
    address: String,
    title: String,
    description: String,
    /// The schema of its `data`.
    data: Value,
}

/// The envelope every event is delivered in, around `data`.
fn envelope(address: &str, data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["id", "type", "app", "tenant", "time", "data"],
        "properties": {
            "id": { "type": "string", "format": "uuid", "description": "The event's id: the same on every delivery, the key to deduplicate by." },
            "type": { "type": "string", "const": address },
            "app": { "type": "string", "description": "The app that published it." },
            "tenant": { "type": "string", "format": "uuid", "description": "The tenant it happened in." },
            "subject": { "type": "string", "description": "The key of the row it is about, for an entity's event." },
            "time": { "type": "string", "format": "date-time", "description": "When it was published." },
            "data": data
        }
    })
}

fn camel(text: &str) -> String {
    let pascal = names::pascal(text);
    let mut chars = pascal.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => pascal,
    }
}

fn channels(app: &App) -> Vec<Channel> {
    let mut out = Vec::new();
    for entity in &app.entities {
        let row = json!({ "$ref": format!("{}{}", COMPONENTS.ref_prefix, entity.name) });
        for action in prefiq_grammar::ENTITY_ACTIONS {
            let (before, after) = match action {
                "created" => (false, true),
                "updated" => (true, true),
                _ => (true, false),
            };
            let mut properties = Map::new();
            properties.insert(
                "id".into(),
                json!({ "type": "string", "description": "The row's key." }),
            );
            let mut required = vec![json!("id")];
            for (member, present, what) in [
                (
                    "before",
                    before,
                    "The row before the write, without its secret fields.",
                ),
                (
                    "after",
                    after,
                    "The row after the write, without its secret fields.",
                ),
            ] {
                if present {
                    let mut schema = row.clone();
                    schema["description"] = what.into();
                    properties.insert(member.into(), schema);
                    required.push(json!(member));
                }
            }
            out.push(Channel {
                id: format!("{}{}", camel(&entity.name), names::capital(action)),
                address: prefiq_grammar::entity_event_type(&app.name, &entity.name, action),
                title: format!("{} {action}", entity.name),
                description: format!(
                    "{} was {action}, by any route or service, in the write's transaction.",
                    names::a(&entity.name)
                ),
                data: json!({ "type": "object", "required": required, "properties": properties }),
            });
        }
    }
    for event in &app.events {
        out.push(Channel {
            id: camel(&event.name),
            address: app.event_type(&event.name),
            title: names::pascal(&event.name),
            description: event.description.clone(),
            data: json!({ "$ref": format!("{}{}", COMPONENTS.ref_prefix, event.payload) }),
        });
    }
    out
}

/// `schema` in AsyncAPI's dialect: its `discriminator` is the property's name, where
/// OpenAPI's is an object naming it (`propertyName`) with a mapping.
fn asyncapi_schema(mut schema: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(object) => {
                if let Some(name) = object
                    .get("discriminator")
                    .and_then(|d| d.get("propertyName"))
                    .cloned()
                {
                    object.insert("discriminator".into(), name);
                }
                object.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut schema);
    schema
}

/// The AsyncAPI 3.0 document of `app`'s events.
pub(super) fn document(app: &App) -> Value {
    let mut schemas = Map::new();
    for (name, named) in app.declared_types() {
        schemas.insert(
            name.clone(),
            asyncapi_schema(schema::named_schema(app, name, named, COMPONENTS)),
        );
    }
    for entity in &app.entities {
        schemas.insert(
            entity.name.clone(),
            asyncapi_schema(schema::model(entity, COMPONENTS)),
        );
    }
    let mut channel_map = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for channel in channels(app) {
        let id = &channel.id;
        channel_map.insert(
            id.clone(),
            json!({
                "address": channel.address,
                "title": channel.title,
                "description": channel.description,
                "messages": { id.as_str(): { "$ref": format!("#/components/messages/{id}") } }
            }),
        );
        operations.insert(
            format!("publish{}", names::capital(id)),
            json!({
                "action": "send",
                "title": format!("Publish {}", channel.address),
                "channel": { "$ref": format!("#/channels/{id}") },
                "messages": [{ "$ref": format!("#/channels/{id}/messages/{id}") }]
            }),
        );
        messages.insert(
            id.clone(),
            json!({
                "name": channel.address,
                "title": channel.title,
                "summary": channel.description,
                "contentType": "application/json",
                "payload": envelope(&channel.address, channel.data)
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": format!("{} events", app.name),
            "version": "0.1.0",
            "description": format!("The events of the `{}` app, generated by Prefiq from {}/core. Each is written to the outbox in the transaction of the write that caused it, and delivered at least once, to subscribers as jobs and to webhooks, in the envelope below: deduplicate by its `id`.", app.name, crate::ir::app_root(&app.name))
        },
        "defaultContentType": "application/json",
        "channels": channel_map,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages
        }
    })
}
