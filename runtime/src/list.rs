//! List requests: parsing `limit`, `cursor`, `sort`, `count` and filters from the query string,
//! and building the keyset-paginated `SELECT` for either dialect.
//!
//! The query language (documented in the OpenAPI document of every app):
//!
//! - `field=op.value` filters a filterable field; `op` is one of `eq, ne, lt, lte, gt, gte,
//!   in, like, ilike, is, cs`. A value without an operator means `eq`. Repeating a parameter
//!   ANDs the conditions; `or=(field.op.value,...)` ORs a group.
//! - `in.(a,b,"c,d")` lists values; `like.*corp*` uses `*` as the wildcard; `is.null` /
//!   `is.notnull` test for NULL; `cs.value` keeps rows whose array contains the value.
//! - `sort=-amount,name` sorts by sortable fields (`-` for descending, NULLs last); the primary
//!   key breaks ties so that pages never overlap.
//! - `limit` (default 50, at most 1000), `cursor` (from `next_cursor`), `count=exact`.
//!
//! Every column name in the SQL comes from [`TableMeta`]; every value is a bound parameter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;

use crate::db::{ColumnKind, DbError, Dialect, Executor, Row, Sql, SqlValue};
use crate::meta::{ColumnMeta, TableMeta, quote};
use crate::problem::Problem;
use prefiq_grammar::Operator;

/// The page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u32 = 1000;
/// The most values of one `in`, `cs`, `cd` or `ov` list.
pub const MAX_LIST: usize = prefiq_grammar::MAX_LIST;

/// The grammar kind of a column's filter values.
fn value_kind(column: &ColumnMeta) -> prefiq_grammar::ValueKind<'static> {
    use prefiq_grammar::ValueKind;
    match column.kind {
        ColumnKind::Int32 => ValueKind::Int32,
        ColumnKind::Int => ValueKind::Int64,
        ColumnKind::Float => ValueKind::Float,
        ColumnKind::Decimal => ValueKind::Decimal,
        ColumnKind::Bool => ValueKind::Bool,
        ColumnKind::Uuid => ValueKind::Uuid,
        ColumnKind::Date => ValueKind::Date,
        ColumnKind::DateTime => ValueKind::DateTime,
        ColumnKind::Text if !column.values.is_empty() => ValueKind::Enum(column.values),
        ColumnKind::Text | ColumnKind::Json => ValueKind::Text,
    }
}

fn items_kind(column: &ColumnMeta) -> Option<prefiq_grammar::ValueKind<'static>> {
    column.items.map(|kind| {
        value_kind(&ColumnMeta {
            values: column.values,
            ..ColumnMeta::new("", "", kind)
        })
    })
}

/// Whether `text` matches `pattern`, each pattern compiled once per process.
fn matches(pattern: &str, text: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static COMPILED: OnceLock<Mutex<HashMap<String, std::sync::Arc<regex::Regex>>>> =
        OnceLock::new();
    let cache = COMPILED.get_or_init(Default::default);
    let compiled = {
        let mut cache = cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match cache.get(pattern) {
            Some(regex) => regex.clone(),
            None => match regex::RegexBuilder::new(pattern)
                .size_limit(1 << 26)
                .build()
            {
                Ok(regex) => {
                    let regex = std::sync::Arc::new(regex);
                    cache.insert(pattern.to_owned(), regex.clone());
                    regex
                }
                Err(_) => return false,
            },
        }
    };
    compiled.is_match(text)
}

/// How the grammar sees `column`: the kind of its values and, for an array, of its items.
fn grammar_kinds(
    column: &ColumnMeta,
) -> (
    prefiq_grammar::ValueKind<'static>,
    Option<prefiq_grammar::ValueKind<'static>>,
) {
    match items_kind(column) {
        Some(items) => (prefiq_grammar::ValueKind::Text, Some(items)),
        None => (value_kind(column), None),
    }
}

/// The pattern of `field`'s filter values, as the document gives it.
fn filter_pattern(column: &ColumnMeta) -> String {
    let (kind, items) = grammar_kinds(column);
    prefiq_grammar::filter(kind, column.nullable, items, prefiq_grammar::Bound::Open)
}

/// A comparison in a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `IN (...)`
    In,
    /// `LIKE`, case-sensitive, `*` as wildcard.
    Like,
    /// Case-insensitive `LIKE`.
    Ilike,
    /// `IS NULL`
    IsNull,
    /// `IS NOT NULL`
    NotNull,
    /// Array contains every value (`cs`).
    Contains,
    /// Array holds only values of the list (`cd`).
    ContainedBy,
    /// Array holds at least one value of the list (`ov`).
    Overlaps,
}

impl Op {
    /// The comparison `operator` makes (`is` becomes [`Op::IsNull`] until its operand says
    /// `notnull`).
    fn of(operator: Operator) -> Op {
        match operator {
            Operator::Eq => Op::Eq,
            Operator::Ne => Op::Ne,
            Operator::Lt => Op::Lt,
            Operator::Lte => Op::Lte,
            Operator::Gt => Op::Gt,
            Operator::Gte => Op::Gte,
            Operator::Like => Op::Like,
            Operator::Ilike => Op::Ilike,
            Operator::In => Op::In,
            Operator::Is => Op::IsNull,
            Operator::Contains => Op::Contains,
            Operator::ContainedBy => Op::ContainedBy,
            Operator::Overlaps => Op::Overlaps,
        }
    }

    fn sql(self) -> &'static str {
        let operator = match self {
            Op::Eq => Operator::Eq,
            Op::Ne => Operator::Ne,
            Op::Lt => Operator::Lt,
            Op::Lte => Operator::Lte,
            Op::Gt => Operator::Gt,
            Op::Gte => Operator::Gte,
            _ => return "",
        };
        operator.sql().unwrap_or_default()
    }
}

/// One condition on one column.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    column: usize,
    op: Op,
    values: Vec<SqlValue>,
}

/// One sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    column: usize,
    descending: bool,
}

/// A parsed, checked list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Rows per page.
    pub limit: u32,
    sort: Vec<SortKey>,
    filters: Vec<Filter>,
    any_of: Vec<Vec<Filter>>,
    after: Option<Vec<SqlValue>>,
    /// Whether to count every matching row.
    pub count: bool,
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Every row matching the filters, when `count=exact` was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

fn filterable_names(meta: &TableMeta) -> String {
    names(meta, |c| c.filterable)
}

fn names(meta: &TableMeta, keep: impl Fn(&ColumnMeta) -> bool) -> String {
    let names: Vec<_> = meta
        .columns
        .iter()
        .filter(|c| keep(c))
        .map(|c| c.field)
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Splits on commas outside double quotes, parentheses and braces.
fn split_list(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut depth) = (false, 0usize);
    for ch in text.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                current.push(ch);
            }
            '(' | '{' if !quoted => {
                depth += 1;
                current.push(ch);
            }
            ')' | '}' if !quoted => {
                depth = depth.saturating_sub(1);
                current.push(ch);
            }
            ',' if !quoted && depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    parts.push(current);
    parts
}

fn unquote(text: &str) -> String {
    let text = text.trim();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
        .to_owned()
}

fn parse_condition(
    meta: &TableMeta,
    field: &str,
    expression: &str,
    param: &str,
) -> Result<Filter, Problem> {
    // Inside an `or` group lists are shorter, as the group's pattern says.
    let max_list = if param == "or" {
        prefiq_grammar::MAX_OR_LIST
    } else {
        MAX_LIST
    };
    let Some((index, column)) = meta.column(field).filter(|(_, c)| c.filterable) else {
        return Err(Problem::bad_parameter(
            param,
            format!(
                "`{field}` is not a filterable field of {}; filterable: {}",
                meta.entity,
                filterable_names(meta)
            ),
        ));
    };
    let bad = |detail: String| Problem::bad_parameter(param, detail);
    // Every condition names an operator this field takes (`Operator::applies`: arrays compare
    // as sets, booleans with `eq` and `ne`, `is` only where a null can be); anything else is
    // refused with the operators it does take.
    let (kind, items) = grammar_kinds(column);
    let (op, operand) = match expression
        .split_once('.')
        .and_then(|(name, rest)| Some((Operator::parse(name)?, rest)))
    {
        Some((operator, rest)) if operator.applies(kind, column.nullable, items) => {
            (Op::of(operator), rest)
        }
        Some((Operator::Is, _)) => return Err(bad(format!("`{field}` is never null"))),
        _ => {
            return Err(bad(format!(
                "`{}` is not a condition on `{field}`: write `op.value`, where op is one of: {}",
                expression.escape_debug(),
                Operator::names_for(kind, column.nullable, items).join(", ")
            )));
        }
    };
    let check_enum = |value: &str| {
        if column.values.is_empty() || column.values.contains(&value) {
            Ok(())
        } else {
            Err(bad(format!(
                "`{value}` is not a value of `{field}`; use one of: {}",
                column.values.join(", ")
            )))
        }
    };
    let values = match op {
        Op::IsNull => match operand {
            "null" => vec![],
            "notnull" | "not_null" => {
                return Ok(Filter {
                    column: index,
                    op: Op::NotNull,
                    values: vec![],
                });
            }
            _ => return Err(bad("use `is.null` or `is.notnull`".into())),
        },
        Op::In => {
            let inner = operand
                .strip_prefix('(')
                .and_then(|o| o.strip_suffix(')'))
                .ok_or_else(|| bad("write the list as `in.(a,b,c)`".into()))?;
            let mut values = Vec::new();
            for item in split_list(inner) {
                let item = unquote(&item);
                check_enum(&item)?;
                values.push(SqlValue::parse(column.kind, &item).map_err(bad)?);
            }
            if values.is_empty() || values.len() > max_list {
                return Err(bad(format!("an `in` list holds 1 to {max_list} values")));
            }
            values
        }
        Op::Like | Op::Ilike => {
            if column.kind != ColumnKind::Text {
                return Err(bad(format!(
                    "`{}` works on text fields only",
                    if op == Op::Like { "like" } else { "ilike" }
                )));
            }
            vec![SqlValue::Text(like_pattern(operand))]
        }
        Op::Contains | Op::ContainedBy | Op::Overlaps => {
            let Some(items) = column.items else {
                return Err(bad(format!(
                    "`cs`, `cd` and `ov` work on array fields only; `{field}` is not one"
                )));
            };
            // `cs.value`, or a set: `cs.{a,b}`.
            let list = match operand.strip_prefix('{').and_then(|o| o.strip_suffix('}')) {
                Some(inner) if inner.trim().is_empty() => Vec::new(),
                Some(inner) => split_list(inner).iter().map(|i| unquote(i)).collect(),
                None => vec![operand.to_owned()],
            };
            if list.len() > max_list {
                return Err(bad(format!("a set holds at most {max_list} values")));
            }
            if list.is_empty() && op != Op::ContainedBy {
                return Err(bad("write at least one value, as in `cs.{a,b}`".into()));
            }
            list.iter()
                .map(|item| SqlValue::parse(items, item).map_err(bad))
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => {
            if matches!(column.kind, ColumnKind::Json) {
                return Err(bad(format!(
                    "`{field}` holds structured data and can only be filtered with `is` or `cs`"
                )));
            }
            let operand = unquote(operand);
            if matches!(op, Op::Eq | Op::Ne) {
                check_enum(&operand)?;
            }
            vec![SqlValue::parse(column.kind, &operand).map_err(bad)?]
        }
    };
    Ok(Filter {
        column: index,
        op,
        values,
    })
}

/// A `LIKE` pattern (`%` any run, `\` escaping) as a case-insensitive regular expression that
/// matches the whole value.
fn like_to_regex(pattern: &str) -> String {
    let mut out = String::from("(?is)^");
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push_str(&regex_escape(next));
                }
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            other => out.push_str(&regex_escape(other)),
        }
    }
    out.push('$');
    out
}

fn regex_escape(ch: char) -> String {
    if "\\.+*?()|[]{}^$".contains(ch) {
        format!("\\{ch}")
    } else {
        ch.to_string()
    }
}

/// A filter value as JSON, as an array stored as JSON holds it.
fn json_of(value: &SqlValue) -> Value {
    match value {
        SqlValue::Int(i) => Value::from(*i),
        SqlValue::Int32(i) => Value::from(*i),
        SqlValue::Float(f) => Value::from(*f),
        SqlValue::Bool(b) => Value::from(*b),
        SqlValue::Uuid(u) => Value::from(u.to_string()),
        SqlValue::Date(d) => Value::from(d.format("%Y-%m-%d").to_string()),
        SqlValue::Decimal(d) => Value::from(d.to_string()),
        SqlValue::Text(t) => Value::from(t.clone()),
        SqlValue::DateTime(t) => Value::from(crate::db::sqlite_datetime(t)),
        SqlValue::Json(v) => v.clone(),
        SqlValue::Null(_) => Value::Null,
    }
}

/// `*` is the wildcard; `%`, `_` and `\` match themselves.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '%' | '_' | '\\' => {
                pattern.push('\\');
                pattern.push(ch);
            }
            '*' => pattern.push('%'),
            _ => pattern.push(ch),
        }
    }
    pattern
}

fn sort_signature(meta: &TableMeta, sort: &[SortKey]) -> String {
    sort.iter()
        .map(|k| {
            format!(
                "{}{}",
                if k.descending { "-" } else { "" },
                meta.columns[k.column].field
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The conditions of `or=(field.op.value,...)`: the document's pattern, checked part by part
/// (the parentheses, 1 to `MAX_OR` conditions split where the grammar separates them, each a
/// condition of a filterable field), then each condition parsed.
fn parse_any_of(meta: &TableMeta, value: &str) -> Result<Vec<Filter>, Problem> {
    let fields: Vec<prefiq_grammar::Field<'_>> = meta
        .columns
        .iter()
        .filter(|c| c.filterable)
        .map(|c| {
            let items = items_kind(c);
            prefiq_grammar::Field {
                name: c.field,
                kind: if items.is_some() {
                    prefiq_grammar::ValueKind::Text
                } else {
                    value_kind(c)
                },
                nullable: c.nullable,
                items,
            }
        })
        .collect();
    let condition = format!(
        "^{}$",
        prefiq_grammar::or_condition(&fields, prefiq_grammar::Bound::Open)
    );
    let parts = value
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .map(split_list)
        .filter(|parts| {
            !parts.is_empty()
                && parts.len() <= prefiq_grammar::MAX_OR
                && parts.iter().all(|p| matches(&condition, p))
        })
        .ok_or_else(|| {
            Problem::bad_parameter(
                "or",
                format!(
                    "write 1 to {} conditions as `or=(field.op.value,...)`, each as its field's filter takes it (text holding `,` `(` `)` quoted); filterable: {}",
                    prefiq_grammar::MAX_OR,
                    filterable_names(meta)
                ),
            )
        })?;
    let mut group = Vec::new();
    for condition in parts {
        let (field, expression) = condition.split_once('.').ok_or_else(|| {
            Problem::bad_parameter("or", format!("`{condition}` is not `field.op.value`"))
        })?;
        group.push(parse_condition(meta, field.trim(), expression, "or")?);
    }
    Ok(group)
}

/// The condition `field=op.value`, the `count`th on that field.
fn parse_filter(
    meta: &TableMeta,
    field: &str,
    value: &str,
    count: usize,
) -> Result<Filter, Problem> {
    let Some((_, column)) = meta.column(field).filter(|(_, c)| c.filterable) else {
        return Err(Problem::bad_parameter(
            field,
            format!(
                "`{field}` is not a parameter of this list; filterable: {}",
                filterable_names(meta)
            ),
        ));
    };
    if count > prefiq_grammar::MAX_PER_FIELD {
        return Err(Problem::bad_parameter(
            field,
            format!(
                "a field takes at most {} conditions",
                prefiq_grammar::MAX_PER_FIELD
            ),
        ));
    }
    // The reasons first (an unknown value, a null on a field that has none), then the
    // document's pattern, which decides what else is refused.
    let condition = parse_condition(meta, field, value, field)?;
    if !matches(&filter_pattern(column), value) {
        return Err(Problem::bad_parameter(
            field,
            format!(
                "`{}` is not a condition on `{field}`: write `op.value` (see the parameter's description and pattern)",
                value.escape_debug()
            ),
        ));
    }
    Ok(condition)
}

impl ListQuery {
    /// Parses and checks the query string of a list request against the table.
    pub fn parse(meta: &TableMeta, pairs: &[(String, String)]) -> Result<ListQuery, Problem> {
        let mut query = ListQuery {
            limit: DEFAULT_LIMIT,
            sort: Vec::new(),
            filters: Vec::new(),
            any_of: Vec::new(),
            after: None,
            count: false,
        };
        let mut cursor = None;
        let mut per_field: std::collections::HashMap<&str, usize> = Default::default();
        for (name, value) in pairs {
            match name.as_str() {
                "limit" => {
                    query.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            Problem::bad_parameter(
                                "limit",
                                format!("use a whole number from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                }
                "cursor" => {
                    if !matches(prefiq_grammar::CURSOR, value) {
                        return Err(Problem::bad_parameter(
                            "cursor",
                            "a cursor is the `next_cursor` of a page: base64url",
                        ));
                    }
                    cursor = Some(value.clone());
                }
                "count" => {
                    query.count = match value.as_str() {
                        "exact" => true,
                        "none" => false,
                        _ => return Err(Problem::bad_parameter("count", "use `exact` or `none`")),
                    }
                }
                "sort" => query.parse_sort(meta, value)?,
                "or" => query.any_of.push(parse_any_of(meta, value)?),
                field => {
                    let count = per_field.entry(field).or_default();
                    *count += 1;
                    query
                        .filters
                        .push(parse_filter(meta, field, value, *count)?);
                }
            }
        }
        if let Some(cursor) = cursor {
            query.after = Some(query.decode_cursor(meta, &cursor)?);
        }
        Ok(query)
    }

    /// Adds the keys of `sort=name,-created_at` to the query's sort.
    fn parse_sort(&mut self, meta: &TableMeta, value: &str) -> Result<(), Problem> {
        let sortable: Vec<&str> = meta
            .columns
            .iter()
            .filter(|c| c.sortable)
            .map(|c| c.field)
            .collect();
        if !matches(&prefiq_grammar::sort(&sortable), value) {
            return Err(Problem::bad_parameter(
                "sort",
                format!(
                    "list sortable fields of {}, `-` before one for descending, separated by commas; sortable: {}",
                    meta.entity,
                    names(meta, |c| c.sortable)
                ),
            ));
        }
        if value.split(',').count() > sortable.len() {
            return Err(Problem::bad_parameter(
                "sort",
                format!("list at most {} sort keys", sortable.len()),
            ));
        }
        for key in value.split(',') {
            let (field, descending) = match key.strip_prefix('-') {
                Some(field) => (field, true),
                None => (key, false),
            };
            let Some((column, _)) = meta.column(field).filter(|(_, c)| c.sortable) else {
                return Err(Problem::bad_parameter(
                    "sort",
                    format!(
                        "`{field}` is not a sortable field of {}; sortable: {}",
                        meta.entity,
                        names(meta, |c| c.sortable)
                    ),
                ));
            };
            // A field listed again adds nothing: the first mention decides.
            if !self.sort.iter().any(|k| k.column == column) {
                self.sort.push(SortKey { column, descending });
            }
        }
        Ok(())
    }

    /// The sort keys in effect, ending with the primary key.
    fn keys(&self, meta: &TableMeta) -> Vec<SortKey> {
        let mut keys = self.sort.clone();
        if !keys.iter().any(|k| k.column == meta.primary_key) {
            keys.push(SortKey {
                column: meta.primary_key,
                descending: false,
            });
        }
        keys
    }

    fn decode_cursor(&self, meta: &TableMeta, cursor: &str) -> Result<Vec<SqlValue>, Problem> {
        // A well-formed cursor this API did not make for this query names no page.
        let bad = |detail: &str| Problem::not_found(format!("no page has this cursor: {detail}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| bad("not a cursor returned by this API"))?;
        let decoded: Value =
            serde_json::from_slice(&bytes).map_err(|_| bad("not a cursor returned by this API"))?;
        if decoded["s"].as_str() != Some(sort_signature(meta, &self.sort).as_str()) {
            return Err(bad(
                "this cursor was made for another `sort`; repeat the sort of the first page",
            ));
        }
        let keys = self.keys(meta);
        let values = decoded["k"]
            .as_array()
            .filter(|v| v.len() == keys.len())
            .ok_or_else(|| bad("not a cursor returned by this API"))?;
        keys.iter()
            .zip(values)
            .map(|(key, value)| {
                SqlValue::from_json(meta.columns[key.column].kind, value)
                    .ok_or_else(|| bad("not a cursor returned by this API"))
            })
            .collect()
    }

    fn encode_cursor(&self, meta: &TableMeta, last: &Value) -> String {
        let keys: Vec<Value> = self
            .keys(meta)
            .iter()
            .map(|k| {
                last.get(meta.columns[k.column].field)
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect();
        let cursor = serde_json::json!({ "s": sort_signature(meta, &self.sort), "k": keys });
        URL_SAFE_NO_PAD.encode(cursor.to_string())
    }

    /// The `SELECT` for one page (one row more than `limit`, to know whether another page exists).
    pub fn select_sql(&self, meta: &TableMeta, dialect: Dialect) -> (String, Vec<SqlValue>) {
        let mut builder = SqlBuilder::new(dialect);
        let columns: Vec<String> = meta.columns.iter().map(|c| quote(c.column)).collect();
        let mut sql = format!("SELECT {} FROM {}", columns.join(", "), quote(meta.table));
        let mut conditions = self.filter_sql(meta, &mut builder);
        if let Some(after) = &self.after {
            conditions.push(self.after_sql(meta, after, &mut builder));
        }
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        let order: Vec<String> = self
            .keys(meta)
            .iter()
            .map(|k| {
                let column = &meta.columns[k.column];
                let direction = if k.descending { "DESC" } else { "ASC" };
                format!("{} {direction} NULLS LAST", builder.column(column))
            })
            .collect();
        sql.push_str(&format!(
            " ORDER BY {} LIMIT {}",
            order.join(", "),
            self.limit + 1
        ));
        (sql, builder.params)
    }

    /// The `SELECT COUNT(*)` over the filters (ignoring the cursor).
    pub fn count_sql(&self, meta: &TableMeta, dialect: Dialect) -> (String, Vec<SqlValue>) {
        let mut builder = SqlBuilder::new(dialect);
        let conditions = self.filter_sql(meta, &mut builder);
        let mut sql = format!("SELECT COUNT(*) FROM {}", quote(meta.table));
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        (sql, builder.params)
    }

    fn filter_sql(&self, meta: &TableMeta, builder: &mut SqlBuilder) -> Vec<String> {
        let mut conditions: Vec<String> = self
            .filters
            .iter()
            .map(|f| builder.filter(meta, f))
            .collect();
        for group in &self.any_of {
            let any: Vec<String> = group.iter().map(|f| builder.filter(meta, f)).collect();
            conditions.push(format!("({})", any.join(" OR ")));
        }
        conditions
    }

    /// Rows strictly after the cursor in sort order, NULLs last in both directions.
    fn after_sql(&self, meta: &TableMeta, after: &[SqlValue], builder: &mut SqlBuilder) -> String {
        let keys = self.keys(meta);
        let mut disjuncts = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let column = &meta.columns[key.column];
            if matches!(after[i], SqlValue::Null(_)) {
                continue; // nothing sorts after NULL on this key
            }
            let mut conjuncts = Vec::new();
            for (prior, value) in keys[..i].iter().zip(after) {
                let prior = &meta.columns[prior.column];
                conjuncts.push(match value {
                    SqlValue::Null(_) => format!("{} IS NULL", builder.column(prior)),
                    value => {
                        let p = builder.param(prior, value.clone());
                        format!("{} = {p}", builder.column(prior))
                    }
                });
            }
            let p = builder.param(column, after[i].clone());
            let op = if key.descending { "<" } else { ">" };
            let expr = builder.column(column);
            conjuncts.push(if column.nullable {
                format!("({expr} {op} {p} OR {expr} IS NULL)")
            } else {
                format!("{expr} {op} {p}")
            });
            disjuncts.push(format!("({})", conjuncts.join(" AND ")));
        }
        if disjuncts.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("({})", disjuncts.join(" OR "))
        }
    }

    /// Runs the list request: one page, its cursor, and the total when asked.
    /// Keeps only rows whose `column` (an index into the table's columns) equals `value`: the
    /// tenant and owner conditions the server adds, which no request can lift.
    pub fn restrict(&mut self, column: usize, value: SqlValue) {
        self.filters.push(Filter {
            column,
            op: Op::Eq,
            values: vec![value],
        });
    }

    /// Keeps only rows whose `column` equals `value` or is null: the tenant condition of a
    /// shared table whose rows name their tenant (null: the platform's rows, which every tenant
    /// reads).
    pub fn restrict_or_null(&mut self, column: usize, value: SqlValue) {
        self.any_of.push(vec![
            Filter {
                column,
                op: Op::Eq,
                values: vec![value],
            },
            Filter {
                column,
                op: Op::IsNull,
                values: Vec::new(),
            },
        ]);
    }

    /// Runs the query as it is; [`crate::crud::list`] adds the tenant and owner conditions.
    pub async fn run<T: Serialize>(
        &self,
        db: &mut impl Executor,
        meta: &TableMeta,
        read: impl Fn(&Row) -> Result<T, DbError>,
    ) -> Result<Page<T>, DbError> {
        // The count goes in the same flight as the page (PostgreSQL): one round trip.
        let count = if self.count {
            let (sql, params) = self.count_sql(meta, db.dialect());
            Some(db.defer(Sql::built(sql), params).await?)
        } else {
            None
        };
        let (sql, params) = self.select_sql(meta, db.dialect());
        let rows = db.fetch_all(Sql::built(sql), params).await?;
        let mut items = rows
            .iter()
            .map(&read)
            .collect::<Result<Vec<T>, DbError>>()?;
        let next_cursor = if items.len() > self.limit as usize {
            items.truncate(self.limit as usize);
            items
                .last()
                .and_then(|last| serde_json::to_value(last).ok())
                .map(|last| self.encode_cursor(meta, &last))
        } else {
            None
        };
        let total = match count {
            Some(count) => {
                let rows = db.answer(count).ok_or_else(|| {
                    DbError::Internal("the count was sent but not answered".into())
                })?;
                Some(match rows.first() {
                    Some(row) => row.req::<i64>(0)?,
                    None => 0,
                })
            }
            None => None,
        };
        Ok(Page {
            items,
            next_cursor,
            total,
        })
    }
}

/// Accumulates bound parameters and renders column expressions for one dialect.
struct SqlBuilder {
    dialect: Dialect,
    params: Vec<SqlValue>,
}

impl SqlBuilder {
    fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            params: Vec::new(),
        }
    }

    /// SQLite keeps decimals as exact text; they compare and sort exactly, as decimals, under
    /// the `prefiq_decimal` collation every connection registers (never as REAL).
    fn column(&self, column: &ColumnMeta) -> String {
        match (self.dialect, column.kind) {
            (Dialect::Sqlite, ColumnKind::Decimal) => {
                format!("{} COLLATE prefiq_decimal", quote(column.column))
            }
            _ => quote(column.column),
        }
    }

    fn param(&mut self, column: &ColumnMeta, value: SqlValue) -> String {
        let _ = column;
        self.push(value)
    }

    fn push(&mut self, value: SqlValue) -> String {
        self.params.push(value);
        self.dialect.placeholder(self.params.len())
    }

    /// `cs`, `cd` and `ov` on an array stored as JSON.
    fn array_filter(&mut self, expr: &str, op: Op, values: &[SqlValue]) -> String {
        match self.dialect {
            Dialect::Postgres => {
                let set = SqlValue::Json(Value::Array(values.iter().map(json_of).collect()));
                let p = self.push(set);
                match op {
                    Op::Contains => format!("{expr} @> {p}::jsonb"),
                    Op::ContainedBy => format!("{expr} <@ {p}::jsonb"),
                    _ => format!(
                        "EXISTS (SELECT 1 FROM jsonb_array_elements({expr}) AS e(v) WHERE e.v IN (SELECT jsonb_array_elements({p}::jsonb)))"
                    ),
                }
            }
            Dialect::Sqlite => {
                let placeholders: Vec<String> =
                    values.iter().map(|v| self.push(v.clone())).collect();
                match op {
                    Op::Contains => placeholders
                        .iter()
                        .map(|p| format!("EXISTS (SELECT 1 FROM json_each({expr}) WHERE json_each.value = {p})"))
                        .collect::<Vec<_>>()
                        .join(" AND "),
                    Op::ContainedBy if placeholders.is_empty() => {
                        format!("NOT EXISTS (SELECT 1 FROM json_each({expr}))")
                    }
                    Op::ContainedBy => format!(
                        "NOT EXISTS (SELECT 1 FROM json_each({expr}) WHERE json_each.value NOT IN ({}))",
                        placeholders.join(", ")
                    ),
                    _ => format!(
                        "EXISTS (SELECT 1 FROM json_each({expr}) WHERE json_each.value IN ({}))",
                        placeholders.join(", ")
                    ),
                }
            }
        }
    }

    fn filter(&mut self, meta: &TableMeta, filter: &Filter) -> String {
        let column = &meta.columns[filter.column];
        let expr = self.column(column);
        match filter.op {
            Op::IsNull => format!("{expr} IS NULL"),
            Op::NotNull => format!("{expr} IS NOT NULL"),
            Op::In => {
                let placeholders: Vec<String> = filter
                    .values
                    .iter()
                    .map(|v| self.param(column, v.clone()))
                    .collect();
                format!("{expr} IN ({})", placeholders.join(", "))
            }
            Op::Like => {
                let p = self.param(column, filter.values[0].clone());
                format!("{expr} LIKE {p} ESCAPE '\\'")
            }
            Op::Ilike => match self.dialect {
                Dialect::Postgres => {
                    let p = self.param(column, filter.values[0].clone());
                    format!("{expr} ILIKE {p} ESCAPE '\\'")
                }
                // SQLite folds case for ASCII only; a case-insensitive, Unicode-aware regular
                // expression matches as PostgreSQL's ILIKE does.
                Dialect::Sqlite => {
                    let SqlValue::Text(pattern) = &filter.values[0] else {
                        return "0".into();
                    };
                    self.params.push(SqlValue::Text(like_to_regex(pattern)));
                    format!(
                        "{expr} REGEXP {}",
                        self.dialect.placeholder(self.params.len())
                    )
                }
            },
            Op::Contains | Op::ContainedBy | Op::Overlaps => {
                self.array_filter(&expr, filter.op, &filter.values)
            }
            op => {
                let p = self.param(column, filter.values[0].clone());
                format!("{expr} {} {p}", op.sql())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ColumnMeta;

    const fn col(field: &'static str, kind: ColumnKind, nullable: bool) -> ColumnMeta {
        ColumnMeta {
            field,
            column: field,
            kind,
            nullable,
            filterable: true,
            sortable: true,
            items: None,
            values: &[],
            written: crate::meta::Written::Always,
            secret: false,
            scale: None,
            platform: false,
        }
    }

    static COLUMNS: [ColumnMeta; 4] = [
        col("id", ColumnKind::Int, false),
        col("name", ColumnKind::Text, false),
        col("amount", ColumnKind::Decimal, true),
        ColumnMeta {
            field: "stage",
            column: "stage",
            kind: ColumnKind::Text,
            nullable: false,
            filterable: true,
            sortable: false,
            items: None,
            values: &["lead", "won"],
            written: crate::meta::Written::Always,
            secret: false,
            scale: None,
            platform: false,
        },
    ];
    static META: TableMeta = TableMeta {
        entity: "Deal",
        table: "deals",
        columns: &COLUMNS,
        primary_key: 0,
        version: 0,
        uniques: &[],
        foreign_keys: &[],
        app: "lab",
        tenant: None,
        tenant_member: None,
        owner: None,
        referrers: &[],
    };

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_and_sorts_become_bound_sql() {
        let query = ListQuery::parse(
            &META,
            &pairs(&[
                ("amount", "gte.10"),
                ("stage", "in.(lead,won)"),
                ("sort", "-amount"),
                ("limit", "2"),
            ]),
        )
        .unwrap();
        let (sql, params) = query.select_sql(&META, Dialect::Postgres);
        assert_eq!(
            sql,
            "SELECT \"id\", \"name\", \"amount\", \"stage\" FROM \"deals\" WHERE \"amount\" >= $1 AND \"stage\" IN ($2, $3) \
             ORDER BY \"amount\" DESC NULLS LAST, \"id\" ASC NULLS LAST LIMIT 3"
        );
        assert_eq!(params.len(), 3);
        let (sql, _) = query.select_sql(&META, Dialect::Sqlite);
        // SQLite compares and sorts decimals exactly, under the decimal collation, never as REAL.
        assert!(
            sql.contains("\"amount\" COLLATE prefiq_decimal >= ?1")
                && sql.contains("ORDER BY \"amount\" COLLATE prefiq_decimal DESC"),
            "{sql}"
        );
        assert!(!sql.contains("REAL"), "{sql}");
    }

    #[test]
    fn a_cursor_continues_after_the_last_row_in_sort_order() {
        let first = ListQuery::parse(&META, &pairs(&[("sort", "-amount")])).unwrap();
        let cursor = first.encode_cursor(&META, &serde_json::json!({"id": 7, "amount": null}));
        let next =
            ListQuery::parse(&META, &pairs(&[("sort", "-amount"), ("cursor", &cursor)])).unwrap();
        let (sql, params) = next.select_sql(&META, Dialect::Postgres);
        assert!(
            sql.contains("WHERE ((\"amount\" IS NULL AND \"id\" > $1))"),
            "{sql}"
        );
        assert_eq!(params, vec![SqlValue::Int(7)]);
        // A well-formed cursor of another sort order points at no page: 404, as the document says.
        let other = ListQuery::parse(&META, &pairs(&[("sort", "name"), ("cursor", &cursor)]));
        assert_eq!(other.unwrap_err().status, 404);
    }

    #[test]
    fn bad_parameters_are_400_with_the_reason() {
        for (name, value, needle) in [
            ("nope", "eq.1", "not a parameter of this list"),
            ("sort", "stage", "sortable: id, name, amount"),
            ("limit", "0", "from 1 to 1000"),
            ("amount", "gt.abc", "not a decimal"),
            ("stage", "eq.lost", "not a value of `stage`"),
            ("name", "is.null", "never null"),
            (
                "name",
                "neq.x",
                "where op is one of: eq, ne, lt, lte, gt, gte, like, ilike, in",
            ),
            ("name", "x", "write `op.value`"),
            ("stage", "like.w*", "where op is one of: eq, ne, in"),
            ("cursor", "!!", "`next_cursor` of a page"),
        ] {
            let problem = ListQuery::parse(&META, &pairs(&[(name, value)])).unwrap_err();
            assert_eq!(problem.status, 400);
            assert!(
                problem.detail.as_deref().unwrap_or("").contains(needle),
                "{name}={value}: {problem}"
            );
        }
    }

    #[test]
    fn like_escapes_sql_wildcards_and_uses_star() {
        assert_eq!(like_pattern("50%*off_"), "50\\%%off\\_");
    }

    #[test]
    fn or_groups_and_in_lists_split_outside_quotes() {
        let query =
            ListQuery::parse(&META, &pairs(&[("or", "(name.eq.\"a,b\",amount.lt.5)")])).unwrap();
        let (sql, params) = query.select_sql(&META, Dialect::Postgres);
        assert!(
            sql.contains("WHERE (\"name\" = $1 OR \"amount\" < $2)"),
            "{sql}"
        );
        assert_eq!(params[0], SqlValue::Text("a,b".into()));
    }
}
