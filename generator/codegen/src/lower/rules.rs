//! The rules of `apps/<app>/core/validation/*.yaml`: cross-field conditions written once in
//! JSONLogic, which the server (datalogic-rs) and the browser (json-logic-js) both evaluate.
//!
//! JSONLogic engines disagree at the edges: cross-type `==`, the truthiness of `{}` and `[]`,
//! chained comparisons, division by zero. So a rule may use only a portable subset, checked
//! here: strict `===`/`!==`, two-operand `<` `<=` `>` `>=` on numbers, `!`, `and`, `or`, `if`
//! and `in` over a list of literals, every operand of a logical operator a condition. Each
//! `var` must name a member of the body the rule applies to, and each comparison must compare
//! values of one kind (an enum with one of its values).
//!
//! ```yaml
//! rules:
//!   - id: activity-subject
//!     applies-to: Activity        # an entity, or a custom operation's id
//!     message: an activity is about a deal or a contact, exactly one
//!     blame: [/deal_id, /contact_id]
//!     condition: {"!==": [{"===": [{var: deal_id}, null]}, {"===": [{var: contact_id}, null]}]}
//! ```

use std::collections::BTreeMap;

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::{App, Member, NamedType, Rule, Type};
use crate::load::{FileKind, SourceFile};

/// The operators a rule may use, and what each takes.
const OPERATORS: &[&str] = &[
    "var", "===", "!==", "<", "<=", ">", ">=", "!", "and", "or", "if", "in",
];

/// The keys of one rule.
const KEYS: &[&str] = &["id", "applies-to", "message", "blame", "condition"];

/// What a rule expression evaluates to, as far as the checker needs to know.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// `true` or `false`: a condition.
    Bool,
    /// A JSON number.
    Number,
    /// A JSON string; an enum's `values` are the ones it may hold.
    Text { values: Option<Vec<String>> },
    /// The `null` literal.
    Null,
    /// Anything else (an object, a list, a decimal that may be a string or a number): only
    /// tested against `null`.
    Other,
}

impl Kind {
    fn describe(&self) -> &'static str {
        match self {
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::Text { values: Some(_) } => "an enum",
            Kind::Text { values: None } => "a string",
            Kind::Null => "null",
            Kind::Other => "a value that is neither a boolean, a number nor a string",
        }
    }

    fn same_kind(&self, other: &Kind) -> bool {
        matches!(
            (self, other),
            (Kind::Bool, Kind::Bool)
                | (Kind::Number, Kind::Number)
                | (Kind::Text { .. }, Kind::Text { .. })
        )
    }
}

/// The body a rule applies to: its members, by name.
struct Target<'a> {
    /// Where the rule goes: an entity, or a custom operation's body.
    slot: Slot,
    members: Vec<&'a Member>,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Entity(usize),
    Operation(usize),
}

/// Reads every validation file of `files`, checks each rule against `app`, and attaches the
/// valid ones to their entity or operation.
pub(super) fn attach(app: &mut App, files: &[SourceFile], diagnostics: &mut Vec<Diagnostic>) {
    let mut found: Vec<(Slot, Rule)> = Vec::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for file in files.iter().filter(|f| f.kind == FileKind::Validation) {
        let Some(value) = &file.value else { continue };
        let checker = Checker {
            app,
            file,
            diagnostics: Vec::new(),
        };
        let (rules, problems) = checker.file(value);
        diagnostics.extend(problems);
        for (pointer, slot, rule) in rules {
            if let Some(other) = ids.insert(rule.id.clone(), rule.source.clone()) {
                diagnostics.push(
                    file.diag(
                        Diagnostic::error(
                            "prefiq::rules::duplicate_id",
                            format!("two rules are named `{}`; the other is in {other}", rule.id),
                        )
                        .with_help("rule ids are unique within an app: rename one"),
                        &format!("{pointer}/id"),
                        false,
                        "second rule with this id",
                    ),
                );
                continue;
            }
            found.push((slot, rule));
        }
    }
    for (slot, rule) in found {
        match slot {
            Slot::Entity(index) => app.entities[index].rules.push(rule),
            Slot::Operation(index) => {
                if let Some(body) = &mut app.operations[index].body {
                    body.rules.push(rule);
                }
            }
        }
    }
}

struct Checker<'a> {
    app: &'a App,
    file: &'a SourceFile,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn error(&mut self, pointer: &str, on_key: bool, message: String, help: String, label: &str) {
        let diagnostic = Diagnostic::error("prefiq::rules::invalid", message).with_help(help);
        let mut diagnostic = self.file.diag(diagnostic, pointer, on_key, label);
        diagnostic.pointer = Some(pointer.to_owned());
        self.diagnostics.push(diagnostic);
    }

    fn file(mut self, value: &Value) -> (Vec<(String, Slot, Rule)>, Vec<Diagnostic>) {
        let mut rules = Vec::new();
        let list = match value.as_object() {
            Some(root) => {
                for key in root.keys().filter(|k| *k != "rules" && *k != "$schema") {
                    self.error(
                        &format!("/{key}"),
                        true,
                        format!("`{key}` is not a key of a validation file"),
                        "a validation file holds `rules:`, a list of rules".into(),
                        "unknown key",
                    );
                }
                root.get("rules")
            }
            None => None,
        };
        let Some(list) = list.and_then(Value::as_array) else {
            self.error(
                "",
                false,
                "a validation file must hold `rules:`, a list".into(),
                "write `rules:` followed by items with `id`, `applies-to`, `message`, `blame` and `condition`".into(),
                "no rules",
            );
            return (rules, self.diagnostics);
        };
        for (index, rule) in list.iter().enumerate() {
            let pointer = format!("/rules/{index}");
            if let Some((slot, rule)) = self.rule(&pointer, rule) {
                rules.push((pointer, slot, rule));
            }
        }
        (rules, self.diagnostics)
    }

    fn rule(&mut self, at: &str, value: &Value) -> Option<(Slot, Rule)> {
        let Some(object) = value.as_object() else {
            self.error(
                at,
                false,
                "a rule is a map".into(),
                format!("give it {}", KEYS.join(", ")),
                "not a map",
            );
            return None;
        };
        let before = self.diagnostics.len();
        for key in object.keys().filter(|k| !KEYS.contains(&k.as_str())) {
            self.error(
                &format!("{at}/{key}"),
                true,
                format!("`{key}` is not a key of a rule"),
                format!("a rule has {}", KEYS.join(", ")),
                "unknown key",
            );
        }
        for key in KEYS.iter().filter(|k| !object.contains_key(**k)) {
            self.error(
                at,
                false,
                format!("the rule has no `{key}`"),
                format!("add `{key}:`"),
                "incomplete rule",
            );
        }
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let id = text("id").unwrap_or_default();
        if object.contains_key("id") && !is_rule_id(&id) {
            self.error(
                &format!("{at}/id"),
                false,
                format!("`{id}` is not a rule id"),
                "use lower-case letters, digits and dashes, as in `activity-subject`".into(),
                "bad id",
            );
        }
        let message = text("message").unwrap_or_default();
        if object.contains_key("message") && message.trim().is_empty() {
            self.error(
                &format!("{at}/message"),
                false,
                "the message is empty".into(),
                "say what is wrong, in words the person filling the form can act on".into(),
                "empty message",
            );
        }
        let target = object
            .get("applies-to")
            .and_then(|v| self.target(&format!("{at}/applies-to"), v));
        let blame = match object.get("blame") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let pointer = format!("{at}/blame/{i}");
                    self.blame(&pointer, item, target.as_ref())
                })
                .collect(),
            Some(_) => {
                self.error(
                    &format!("{at}/blame"),
                    false,
                    "`blame` is a non-empty list of JSON pointers".into(),
                    "name the members the message belongs next to, as in `[/deal_id]`".into(),
                    "not a list of pointers",
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        if let (Some(condition), Some(target)) = (object.get("condition"), target.as_ref()) {
            let pointer = format!("{at}/condition");
            if let Some(kind) = self.expression(&pointer, condition, target)
                && kind != Kind::Bool
            {
                self.error(
                    &pointer,
                    false,
                    format!("the condition is {}, not a condition", kind.describe()),
                    "a rule's condition is true or false: compare, or combine comparisons with `and`, `or`, `!`".into(),
                    "not a condition",
                );
            }
        }
        if self.diagnostics.len() > before {
            return None;
        }
        let target = target?;
        Some((
            target.slot,
            Rule {
                id,
                condition: object.get("condition")?.clone(),
                blame,
                message,
                source: self.file.path().to_owned(),
            },
        ))
    }

    /// The entity or custom operation named by `applies-to`.
    fn target(&mut self, at: &str, value: &Value) -> Option<Target<'a>> {
        let app = self.app;
        let name = value.as_str().unwrap_or_default();
        if let Some(index) = app.entities.iter().position(|e| e.name == name) {
            return Some(Target {
                slot: Slot::Entity(index),
                members: app.entities[index].writable().map(|f| &f.member).collect(),
            });
        }
        let operation = app
            .operations
            .iter()
            .position(|o| o.kind == crate::ir::OperationKind::Custom && o.id == name);
        if let Some(index) = operation {
            let members = app.operations[index]
                .body
                .as_ref()
                .and_then(|body| match &body.ty {
                    Type::Object { name } => match app.types.get(name) {
                        Some(NamedType::Struct(s)) => Some(s.members.iter().collect()),
                        _ => None,
                    },
                    _ => None,
                });
            if let Some(members) = members {
                return Some(Target {
                    slot: Slot::Operation(index),
                    members,
                });
            }
            self.error(
                at,
                false,
                format!("the operation `{name}` takes no object body for a rule to check"),
                "rules apply to entities and to custom operations whose request body is an object"
                    .into(),
                "no body",
            );
            return None;
        }
        let mut known: Vec<&str> = app.entities.iter().map(|e| e.name.as_str()).collect();
        known.extend(
            app.custom()
                .filter(|o| o.body.is_some())
                .map(|o| o.id.as_str()),
        );
        self.error(
            at,
            false,
            format!("`{name}` is neither an entity nor a custom operation of this app"),
            format!("name one of: {}", known.join(", ")),
            "unknown target",
        );
        None
    }

    fn blame(&mut self, at: &str, value: &Value, target: Option<&Target<'_>>) -> Option<String> {
        let pointer = value.as_str().unwrap_or_default();
        let first = pointer
            .strip_prefix('/')
            .map(|rest| rest.split('/').next().unwrap_or_default());
        match (first, target) {
            (None, _) => {
                self.error(
                    at,
                    false,
                    format!("`{pointer}` is not a JSON pointer"),
                    "a pointer starts with `/`, as in `/deal_id`".into(),
                    "not a pointer",
                );
                None
            }
            (Some(member), Some(target)) if !target.members.iter().any(|m| m.name == member) => {
                self.error(
                    at,
                    false,
                    format!("`{member}` is not a member the client sends"),
                    format!("blame one of: {}", names(target)),
                    "unknown member",
                );
                None
            }
            _ => Some(pointer.to_owned()),
        }
    }

    /// Checks one expression; its kind, or `None` after reporting what is wrong.
    fn expression(&mut self, at: &str, value: &Value, target: &Target<'_>) -> Option<Kind> {
        match value {
            Value::Bool(_) => Some(Kind::Bool),
            Value::Number(_) => Some(Kind::Number),
            Value::String(_) => Some(Kind::Text { values: None }),
            Value::Null => Some(Kind::Null),
            Value::Array(_) => {
                self.error(
                    at,
                    false,
                    "a list is allowed only as the second operand of `in`".into(),
                    "write `{in: [{var: stage}, [won, lost]]}`".into(),
                    "list here",
                );
                None
            }
            Value::Object(object) => {
                let mut entries = object.iter();
                let (Some((operator, operands)), None) = (entries.next(), entries.next()) else {
                    self.error(
                        at,
                        false,
                        "an operation is a map with exactly one key, its operator".into(),
                        format!("use one of: {}", OPERATORS.join(" ")),
                        "not one operator",
                    );
                    return None;
                };
                let at_op = format!("{at}/{}", crate::load::spans::escape(operator));
                if !OPERATORS.contains(&operator.as_str()) {
                    let help = match operator.as_str() {
                        "==" | "!=" => format!(
                            "use the strict `{operator}=`: engines disagree on what loose equality converts"
                        ),
                        _ => format!(
                            "rules use a subset of JSONLogic that every engine evaluates alike: {}",
                            OPERATORS.join(" ")
                        ),
                    };
                    self.error(
                        &at_op,
                        true,
                        format!("`{operator}` is not an operator rules may use"),
                        help,
                        "unknown operator",
                    );
                    return None;
                }
                let args: Vec<&Value> = match operands {
                    Value::Array(items) => items.iter().collect(),
                    single => vec![single],
                };
                let arg = |i: usize| {
                    if matches!(operands, Value::Array(_)) {
                        format!("{at_op}/{i}")
                    } else {
                        at_op.clone()
                    }
                };
                self.operation(operator, &at_op, &args, &arg, target)
            }
        }
    }

    fn operation(
        &mut self,
        operator: &str,
        at: &str,
        args: &[&Value],
        arg: &dyn Fn(usize) -> String,
        target: &Target<'_>,
    ) -> Option<Kind> {
        let count = |this: &mut Self, ok: bool, wanted: &str| {
            if !ok {
                this.error(
                    at,
                    true,
                    format!("`{operator}` takes {wanted}, not {}", args.len()),
                    format!("give `{operator}` {wanted}"),
                    "wrong number of operands",
                );
            }
            ok
        };
        match operator {
            "var" => {
                if !count(self, args.len() == 1, "one member name") {
                    return None;
                }
                self.var(&arg(0), args[0], target)
            }
            "===" | "!==" => {
                if !count(self, args.len() == 2, "two operands") {
                    return None;
                }
                let left = self.expression(&arg(0), args[0], target);
                let right = self.expression(&arg(1), args[1], target);
                let (left, right) = (left?, right?);
                if left == Kind::Null || right == Kind::Null || left.same_kind(&right) {
                    for (kind, other, index) in [(&left, args[1], 1), (&right, args[0], 0)] {
                        self.enum_value(&arg(index), kind, other);
                    }
                    return Some(Kind::Bool);
                }
                self.error(
                    at,
                    true,
                    format!(
                        "`{operator}` compares {} with {}",
                        left.describe(),
                        right.describe()
                    ),
                    "compare values of one kind, or test a member against null".into(),
                    "mismatched operands",
                );
                None
            }
            "<" | "<=" | ">" | ">=" => {
                if !count(
                    self,
                    args.len() == 2,
                    "two operands (engines disagree on chained comparisons)",
                ) {
                    return None;
                }
                let mut ok = true;
                for (i, value) in args.iter().enumerate() {
                    match self.expression(&arg(i), value, target) {
                        Some(Kind::Number) => {}
                        Some(other) => {
                            self.error(&arg(i), false, format!("`{operator}` orders numbers; this is {}", other.describe()), "order integer or number members only; engines convert strings, dates and decimals differently".into(), "not a number");
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Kind::Bool)
            }
            "!" => {
                if !count(self, args.len() == 1, "one condition") {
                    return None;
                }
                self.condition(&arg(0), args[0], operator, target)
            }
            "and" | "or" => {
                if !count(self, !args.is_empty(), "at least one condition") {
                    return None;
                }
                let mut ok = true;
                for (i, value) in args.iter().enumerate() {
                    ok &= self.condition(&arg(i), value, operator, target).is_some();
                }
                ok.then_some(Kind::Bool)
            }
            "if" => {
                if !count(
                    self,
                    args.len() >= 3 && args.len() % 2 == 1,
                    "condition, then, …, else (an odd number, at least three)",
                ) {
                    return None;
                }
                let mut ok = true;
                for (i, value) in args.iter().enumerate() {
                    ok &= self.condition(&arg(i), value, operator, target).is_some();
                }
                ok.then_some(Kind::Bool)
            }
            "in" => {
                if !count(self, args.len() == 2, "a value and a list of literals") {
                    return None;
                }
                let needle = self.expression(&arg(0), args[0], target)?;
                let Value::Array(items) = args[1] else {
                    self.error(&arg(1), false, "`in` looks in a list of literals".into(), "write the list, as in `[won, lost]` (engines disagree on `in` over strings)".into(), "not a list");
                    return None;
                };
                for (i, item) in items.iter().enumerate() {
                    let kind = match item {
                        Value::Number(_) => Kind::Number,
                        Value::String(_) => Kind::Text { values: None },
                        Value::Bool(_) => Kind::Bool,
                        _ => Kind::Other,
                    };
                    let at_item = format!("{}/{i}", arg(1));
                    if !needle.same_kind(&kind) {
                        self.error(
                            &at_item,
                            false,
                            format!(
                                "`in` looks for {} among values of another kind",
                                needle.describe()
                            ),
                            "list values of the member's kind".into(),
                            "mismatched value",
                        );
                        return None;
                    }
                    self.enum_value(&at_item, &needle, item);
                }
                Some(Kind::Bool)
            }
            _ => unreachable!("OPERATORS lists every operator"),
        }
    }

    /// An operand of a logical operator: a condition, never a value tested for truthiness.
    fn condition(
        &mut self,
        at: &str,
        value: &Value,
        operator: &str,
        target: &Target<'_>,
    ) -> Option<Kind> {
        match self.expression(at, value, target)? {
            Kind::Bool => Some(Kind::Bool),
            other => {
                self.error(at, false, format!("`{operator}` takes conditions; this is {}", other.describe()), "engines disagree on what is truthy: compare explicitly, as in `{\"!==\": [{var: name}, null]}`".into(), "not a condition");
                None
            }
        }
    }

    /// A literal compared with an enum must be one of its values.
    fn enum_value(&mut self, at: &str, kind: &Kind, literal: &Value) {
        if let (
            Kind::Text {
                values: Some(values),
            },
            Value::String(text),
        ) = (kind, literal)
            && !values.contains(text)
        {
            self.error(
                at,
                false,
                format!("`{text}` is not a value of this enum"),
                format!("use one of: {}", values.join(", ")),
                "not a value",
            );
        }
    }

    /// `{var: "a.b"}`: a member of the body, then of the object it holds.
    fn var(&mut self, at: &str, value: &Value, target: &Target<'_>) -> Option<Kind> {
        let Some(path) = value.as_str().filter(|p| !p.is_empty()) else {
            self.error(
                at,
                false,
                "`var` takes a member's name".into(),
                "write `{var: name}`, or `{var: address.city}` for a nested member (no defaults)"
                    .into(),
                "not a name",
            );
            return None;
        };
        let mut members: Vec<&Member> = target.members.clone();
        let mut kind = None;
        // A tagged union's tag is the one member every alternative has.
        let mut tag: Option<(&str, Vec<String>)> = None;
        for (depth, segment) in path.split('.').enumerate() {
            if let Some((_, values)) = tag.take().filter(|(name, _)| *name == segment) {
                kind = Some(Kind::Text {
                    values: Some(values),
                });
                members = Vec::new();
                continue;
            }
            if depth > 0 && members.is_empty() {
                self.error(
                    at,
                    false,
                    format!("`{path}` enters a member that holds no members"),
                    "only a member holding an object has members to name after a `.`".into(),
                    "not an object",
                );
                return None;
            }
            let Some(member) = members.iter().find(|m| m.name == segment).copied() else {
                let known: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                self.error(
                    at,
                    false,
                    format!(
                        "`{segment}` is not a member {}",
                        if depth == 0 {
                            "the client sends"
                        } else {
                            "of that object"
                        }
                    ),
                    format!("use one of: {}", known.join(", ")),
                    "unknown member",
                );
                return None;
            };
            let (next, inner) = self.kind_of(&member.ty);
            tag = self.union_tag(&member.ty);
            kind = Some(next);
            match inner {
                Some(inner) => members = inner,
                None => members = Vec::new(),
            }
        }
        kind
    }

    /// The tag of a tagged union, and its values.
    fn union_tag(&self, ty: &Type) -> Option<(&'a str, Vec<String>)> {
        let Type::Union { name } = ty else {
            return None;
        };
        match self.app.types.get(name) {
            Some(NamedType::Union(u)) => u.tag.as_deref().map(|tag| {
                let values = u
                    .variants
                    .iter()
                    .filter_map(|v| v.tag_value.clone())
                    .collect();
                (tag, values)
            }),
            _ => None,
        }
    }

    /// The kind of a member's values, and the members of the object it holds.
    fn kind_of(&self, ty: &Type) -> (Kind, Option<Vec<&'a Member>>) {
        let app = self.app;
        match ty {
            Type::Boolean => (Kind::Bool, None),
            Type::Integer(_) | Type::Number(_) => (Kind::Number, None),
            Type::String(_) | Type::Uuid | Type::Date | Type::DateTime => {
                (Kind::Text { values: None }, None)
            }
            Type::Enum { name } => match app.types.get(name) {
                Some(NamedType::Enum(e)) => (
                    Kind::Text {
                        values: Some(e.values.iter().map(|v| v.value.clone()).collect()),
                    },
                    None,
                ),
                _ => (Kind::Text { values: None }, None),
            },
            Type::Object { name } => match app.types.get(name) {
                Some(NamedType::Struct(s)) => (Kind::Other, Some(s.members.iter().collect())),
                _ => (Kind::Other, None),
            },
            _ => (Kind::Other, None),
        }
    }
}

fn names(target: &Target<'_>) -> String {
    target
        .members
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_rule_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}
