//! The model types crate: a struct per entity with its create and patch inputs, the named
//! types (nested objects, enums, unions), and `validate()` for the constraints serde cannot check.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::{Roots, ident, rust_type};
use crate::diag::Diagnostic;
use crate::ir::{
    App, Entity, FieldRole, Member, NamedType, NumberType, StructType, Type, UnionType,
};

fn doc(text: Option<&str>) -> TokenStream {
    let Some(text) = text else { return quote!() };
    let lines = text.lines().map(|l| format!(" {}", l.trim_end()));
    quote!(#(#[doc = #lines])*)
}

/// `#[serde(rename = "...")]` when the Rust name differs from the JSON name.
fn rename(member: &Member) -> TokenStream {
    if member.rust == member.name {
        quote!()
    } else {
        let name = &member.name;
        quote!(#[serde(rename = #name)])
    }
}

/// A decimal literal as `Decimal::from_i128_with_scale(mantissa, scale)`.
fn decimal_literal(text: &str) -> TokenStream {
    let negative = text.starts_with('-');
    let digits = text.trim_start_matches('-');
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let mantissa: i128 = format!("{whole}{fraction}").parse().unwrap_or(0);
    let mantissa = Literal::i128_suffixed(if negative { -mantissa } else { mantissa });
    let scale = Literal::u32_suffixed(fraction.len() as u32);
    quote!(::rust_decimal::Decimal::from_i128_with_scale(#mantissa, #scale))
}

/// The Rust expression of a default value (already checked against the type by lowering).
fn default_expr(app: &App, ty: &Type, value: &serde_json::Value) -> TokenStream {
    use serde_json::Value;
    match (ty, value) {
        (Type::String(_), Value::String(s)) => quote!(::std::string::String::from(#s)),
        (Type::Integer(n), Value::Number(v)) => {
            let v = v.as_i64().unwrap_or(0);
            if n.bits == 32 {
                let v = Literal::i32_suffixed(v as i32);
                quote!(#v)
            } else {
                let v = Literal::i64_suffixed(v);
                quote!(#v)
            }
        }
        (Type::Number(_), Value::Number(v)) => {
            let v = Literal::f64_suffixed(v.as_f64().unwrap_or(0.0));
            quote!(#v)
        }
        (Type::Decimal(_), Value::String(s)) => decimal_literal(s),
        (Type::Decimal(_), Value::Number(n)) => decimal_literal(&n.to_string()),
        (Type::Boolean, Value::Bool(b)) => quote!(#b),
        (Type::Enum { name }, Value::String(s)) => {
            let variant = match app.types.get(name) {
                Some(NamedType::Enum(e)) => e
                    .values
                    .iter()
                    .find(|v| &v.value == s)
                    .map(|v| v.variant.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let (name, variant) = (format_ident!("{}", name), format_ident!("{}", variant));
            quote!(#name::#variant)
        }
        (Type::Array(a), Value::Array(items)) => {
            let items = items.iter().map(|item| match item {
                Value::Null => quote!(::std::option::Option::None),
                item if a.items_nullable => {
                    let inner = default_expr(app, &a.items, item);
                    quote!(::std::option::Option::Some(#inner))
                }
                item => default_expr(app, &a.items, item),
            });
            quote!(::std::vec![#(#items),*])
        }
        (Type::Map { values }, Value::Object(members)) => {
            let entries = members.iter().map(|(key, value)| {
                let value = default_expr(app, values, value);
                quote!((::std::string::String::from(#key), #value))
            });
            quote!(::std::collections::BTreeMap::from([#(#entries),*]))
        }
        (Type::Uuid | Type::Date | Type::DateTime, Value::String(s)) => {
            quote!(::std::str::FromStr::from_str(#s).unwrap_or_default())
        }
        _ => quote!(::std::default::Default::default()),
    }
}

#[derive(Default)]
struct Fields {
    tokens: Vec<TokenStream>,
    defaults: Vec<TokenStream>,
    /// What the constructor and setters need to know of each field.
    members: Vec<FieldInfo>,
}

/// A field as the constructor and the setters see it.
struct FieldInfo {
    name: proc_macro2::Ident,
    /// The setter: `with_<field>`.
    setter: proc_macro2::Ident,
    /// The type a value is given in: the field's type, without the `Option` of an optional
    /// field.
    given: TokenStream,
    presence: Presence,
    /// The default's expression, for defaulted fields.
    default: Option<TokenStream>,
}

/// How a member appears in a struct.
#[derive(Clone, Copy, PartialEq)]
enum Presence {
    /// Always present, never null.
    Plain,
    /// Present, may be null: `Option<T>`, serialised as null.
    Nullable,
    /// May be absent: `Option<T>`, skipped when `None`.
    Optional,
    /// Absent, null or a value: `Option<Option<T>>` (patches).
    Patch,
    /// Always present in Rust, filled with the schema default when absent.
    Defaulted,
}

fn field_tokens(app: &App, owner: &str, member: &Member, presence: Presence, fields: &mut Fields) {
    let name = ident(&member.rust);
    let setter = format_ident!("with_{}", member.rust);
    let mut ty = rust_type(
        &member.ty,
        &Roots {
            named: quote!(crate),
            deps: quote!(),
        },
    );
    if member.boxed {
        ty = quote!(::std::boxed::Box<#ty>);
    }
    let given = match presence {
        Presence::Patch => quote!(::std::option::Option<#ty>),
        _ => ty.clone(),
    };
    let docs = doc(member.description.as_deref());
    let rename = rename(member);
    let float = matches!(&member.ty, Type::Decimal(d) if d.as_number);
    let mut default = None;
    let (ty, serde) = match presence {
        Presence::Plain => (
            ty,
            if float {
                quote!(#[serde(with = "::rust_decimal::serde::float")])
            } else {
                quote!()
            },
        ),
        Presence::Nullable => (
            quote!(::std::option::Option<#ty>),
            if float {
                quote!(#[serde(default, with = "::rust_decimal::serde::float_option")])
            } else {
                quote!(#[serde(default)])
            },
        ),
        Presence::Optional => (
            quote!(::std::option::Option<#ty>),
            if float {
                quote!(#[serde(default, skip_serializing_if = "::std::option::Option::is_none", with = "::rust_decimal::serde::float_option")])
            } else {
                quote!(#[serde(default, skip_serializing_if = "::std::option::Option::is_none")])
            },
        ),
        Presence::Patch => (
            quote!(::std::option::Option<::std::option::Option<#ty>>),
            quote!(#[serde(default, skip_serializing_if = "::std::option::Option::is_none", deserialize_with = "crate::generated::patch::deserialize")]),
        ),
        Presence::Defaulted => {
            let function = format!(
                "default_{}_{}",
                heck::ToSnakeCase::to_snake_case(owner),
                member.rust
            );
            let function_ident = format_ident!("{}", function);
            let value = member
                .default
                .as_ref()
                .map(|d| default_expr(app, &member.ty, d))
                .unwrap_or_else(|| quote!(::std::default::Default::default()));
            let value = if member.boxed {
                quote!(::std::boxed::Box::new(#value))
            } else {
                value
            };
            fields.defaults.push(quote! {
                fn #function_ident() -> #ty { #value }
            });
            default = Some(quote!(#function_ident()));
            let with = if float {
                quote!(, with = "::rust_decimal::serde::float")
            } else {
                quote!()
            };
            (ty, quote!(#[serde(default = #function #with)]))
        }
    };
    let deprecated = if member.deprecated {
        quote!(#[doc = ""] #[doc = " Deprecated."])
    } else {
        quote!()
    };
    fields.tokens.push(quote! {
        #docs
        #deprecated
        #rename
        #serde
        pub #name: #ty
    });
    fields.members.push(FieldInfo {
        name,
        setter,
        given,
        presence,
        default,
    });
}

/// `new` with the fields that have neither a default nor a way to be absent, and a `with_`
/// setter per field: code written against these keeps compiling when the schema gains an
/// optional member, because it never names the whole field list.
fn constructor(name: &str, members: &[FieldInfo]) -> TokenStream {
    let ident = format_ident!("{}", name);
    let required: Vec<&FieldInfo> = members
        .iter()
        .filter(|m| m.presence == Presence::Plain)
        .collect();
    let params = required.iter().map(|m| {
        let (name, ty) = (&m.name, &m.given);
        quote!(#name: #ty)
    });
    let inits = members.iter().map(|m| {
        let name = &m.name;
        match (m.presence, &m.default) {
            (Presence::Plain, _) => quote!(#name),
            (Presence::Defaulted, Some(default)) => quote!(#name: #default),
            _ => quote!(#name: ::std::option::Option::None),
        }
    });
    let setters = members.iter().map(|m| {
        let (name, setter, ty) = (&m.name, &m.setter, &m.given);
        let (value, doc) = match m.presence {
            Presence::Plain | Presence::Defaulted => (quote!(#name), format!(" Sets `{name}`.")),
            Presence::Nullable | Presence::Optional => (
                quote!(::std::option::Option::Some(#name)),
                format!(" Sets `{name}`."),
            ),
            Presence::Patch => (
                quote!(::std::option::Option::Some(#name)),
                format!(" Sets `{name}`: `None` removes it."),
            ),
        };
        quote! {
            #[doc = #doc]
            #[must_use]
            pub fn #setter(mut self, #name: #ty) -> Self {
                self.#name = #value;
                self
            }
        }
    });
    let doc = if required.is_empty() {
        format!(" A `{name}` with every member absent or at its default.")
    } else {
        let names: Vec<String> = required.iter().map(|m| format!("`{}`", m.name)).collect();
        format!(
            " A `{name}` with {}; the other members are absent or at their defaults.",
            names.join(", ")
        )
    };
    let lint = if required.len() > 7 {
        quote!(#[allow(clippy::too_many_arguments)])
    } else {
        quote!()
    };
    // Without required members, `new()` is the default.
    let default = if required.is_empty() {
        quote! {
            impl ::std::default::Default for #ident {
                fn default() -> Self {
                    Self::new()
                }
            }
        }
    } else {
        quote!()
    };
    quote! {
        impl #ident {
            #[doc = #doc]
            #lint
            pub fn new(#(#params),*) -> Self {
                Self { #(#inits,)* }
            }
            #(#setters)*
        }
        #default
    }
}

fn struct_tokens(name: &str, docs: TokenStream, fields: Fields) -> TokenStream {
    let ident = format_ident!("{}", name);
    let constructor = constructor(name, &fields.members);
    let Fields {
        tokens, defaults, ..
    } = fields;
    quote! {
        #docs
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[non_exhaustive]
        pub struct #ident {
            #(#tokens,)*
        }
        #(#defaults)*
        #constructor
    }
}

fn entity_tokens(app: &App, entity: &Entity) -> TokenStream {
    let docs = doc(entity.description.as_deref());
    let mut model = Fields::default();
    for field in &entity.fields {
        let presence = if field.is_model_optional() {
            Presence::Optional
        } else if field.role == FieldRole::Data && field.member.nullable {
            Presence::Nullable
        } else {
            Presence::Plain
        };
        field_tokens(app, &entity.name, &field.member, presence, &mut model);
    }
    let create_name = entity.types.create.clone();
    let mut create = Fields::default();
    for field in entity.writable() {
        let presence = if field.member.default.is_some() && !field.member.nullable {
            Presence::Defaulted
        } else if field.member.nullable {
            if field.is_create_required() {
                Presence::Nullable
            } else {
                Presence::Optional
            }
        } else if field.is_create_required() {
            Presence::Plain
        } else {
            Presence::Optional
        };
        field_tokens(app, &create_name, &field.member, presence, &mut create);
    }
    let patch_name = entity.types.patch.clone();
    let mut patch = Fields::default();
    for field in entity.writable().filter(|f| f.role == FieldRole::Data) {
        let presence = if field.is_patch_removable() {
            Presence::Patch
        } else {
            Presence::Optional
        };
        field_tokens(app, &patch_name, &field.member, presence, &mut patch);
    }
    let model = struct_tokens(&entity.name, docs, model);
    let create_doc = format!(
        " The fields a client sends to create a [`{}`].",
        entity.name
    );
    let create = struct_tokens(&create_name, quote!(#[doc = #create_doc]), create);
    let patch_doc = format!(
        " A JSON merge patch of a [`{}`]: `None` leaves a field alone, `Some(None)` removes it.",
        entity.name
    );
    let from_fields = entity.writable().map(|f| {
        let name = ident(&f.member.rust);
        if is_copy(&f.member.ty) && !f.member.boxed {
            quote!(#name: model.#name)
        } else {
            quote!(#name: model.#name.clone())
        }
    });
    let model_ident = format_ident!("{}", entity.name);
    let create_ident = format_ident!("{}", create_name);
    let from_doc = format!(
        " The writable fields of a [`{}`], to change and write back.",
        entity.name
    );
    let conversion = quote! {
        impl ::std::convert::From<&#model_ident> for #create_ident {
            #[doc = #from_doc]
            fn from(model: &#model_ident) -> Self {
                Self { #(#from_fields,)* }
            }
        }
    };
    let patch_struct = struct_tokens(&patch_name, quote!(#[doc = #patch_doc]), patch);
    quote! {
        #model
        #create
        #conversion
        #patch_struct
    }
}

fn enum_tokens(name: &str, e: &crate::ir::EnumType) -> TokenStream {
    let ident = format_ident!("{}", name);
    let docs = doc(e.description.as_deref());
    let variants: Vec<_> = e
        .values
        .iter()
        .map(|v| format_ident!("{}", v.variant))
        .collect();
    let values: Vec<_> = e.values.iter().map(|v| v.value.clone()).collect();
    quote! {
        #docs
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[non_exhaustive]
        pub enum #ident {
            #(#[serde(rename = #values)] #variants,)*
        }

        impl #ident {
            /// Every value, in schema order.
            pub const ALL: &'static [#ident] = &[#(#ident::#variants),*];

            /// The value as in JSON.
            pub fn as_str(&self) -> &'static str {
                match self {
                    #(#ident::#variants => #values,)*
                }
            }
        }

        impl ::std::convert::AsRef<str> for #ident {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::fmt::Display for #ident {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for #ident {
            type Err = crate::generated::validate::UnknownValue;
            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                match value {
                    #(#values => ::std::result::Result::Ok(#ident::#variants),)*
                    _ => ::std::result::Result::Err(crate::generated::validate::UnknownValue {
                        value: value.to_owned(),
                        expected: &[#(#values),*],
                    }),
                }
            }
        }
    }
}

fn union_tokens(name: &str, u: &UnionType) -> TokenStream {
    let ident = format_ident!("{}", name);
    let docs = doc(u.description.as_deref());
    let attribute = match &u.tag {
        Some(tag) => quote!(#[serde(tag = #tag)]),
        None => quote!(#[serde(untagged)]),
    };
    let variants = u.variants.iter().map(|v| {
        let variant = format_ident!("{}", v.variant);
        let ty = rust_type(
            &v.ty,
            &Roots {
                named: quote!(crate),
                deps: quote!(),
            },
        );
        match &v.tag_value {
            Some(value) => quote!(#[serde(rename = #value)] #variant(#ty)),
            None => quote!(#variant(#ty)),
        }
    });
    quote! {
        #docs
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #attribute
        #[non_exhaustive]
        pub enum #ident {
            #(#variants,)*
        }
    }
}

/// Checks of one value against its type's constraints, pushing violations at `at`.
fn check_value(
    ty: &Type,
    value: TokenStream,
    at: TokenStream,
    patterns: &mut Vec<String>,
) -> TokenStream {
    let push = |message: TokenStream| quote!(out.push(crate::generated::validate::Violation { pointer: #at.clone(), message: #message }));
    match ty {
        Type::String(s) => {
            let mut checks = Vec::new();
            if let Some(min) = s.min_length {
                let message = push(quote!(
                    ::std::format!("must be at least {} characters long", #min)
                ));
                checks.push(quote!(if (#value.chars().count() as u64) < #min { #message; }));
            }
            if let Some(max) = s.max_length {
                let message = push(quote!(
                    ::std::format!("must be at most {} characters long", #max)
                ));
                checks.push(quote!(if (#value.chars().count() as u64) > #max { #message; }));
            }
            if let Some(pattern) = &s.pattern {
                let index = patterns
                    .iter()
                    .position(|p| p == pattern)
                    .unwrap_or_else(|| {
                        patterns.push(pattern.clone());
                        patterns.len() - 1
                    });
                let message = push(quote!(
                    ::std::format!("must match the pattern {}", #pattern)
                ));
                checks.push(
                    quote!(if !crate::generated::validate::matches(#index, #value) { #message; }),
                );
            }
            if let Some(constant) = &s.constant {
                let message = push(quote!(::std::format!("must be {:?}", #constant)));
                checks.push(quote!(if #value != #constant { #message; }));
            }
            quote!(#(#checks)*)
        }
        Type::Integer(n) | Type::Number(n) => {
            let float = matches!(ty, Type::Number(_));
            bounds_checks(n, float, &value, &push)
        }
        Type::Decimal(d) => {
            let mut checks = Vec::new();
            let bound = |n: &serde_json::Number| decimal_literal(&n.to_string());
            for (limit, op, words) in [
                (&d.bounds.minimum, quote!(<), "at least"),
                (&d.bounds.maximum, quote!(>), "at most"),
                (&d.bounds.exclusive_minimum, quote!(<=), "more than"),
                (&d.bounds.exclusive_maximum, quote!(>=), "less than"),
            ] {
                if let Some(limit) = limit {
                    let literal = bound(limit);
                    let text = format!("must be {words} {limit}");
                    let message = push(quote!(::std::string::String::from(#text)));
                    checks.push(quote!(if *#value #op #literal { #message; }));
                }
            }
            if let Some(scale) = d.scale {
                let text = format!("must have at most {scale} digits after the decimal point");
                let message = push(quote!(::std::string::String::from(#text)));
                checks.push(quote!(if #value.normalize().scale() > #scale { #message; }));
                if let Some(precision) = d.precision {
                    let whole = (precision - scale) as usize;
                    let text = format!("must have at most {whole} digits before the decimal point");
                    let message = push(quote!(::std::string::String::from(#text)));
                    checks.push(quote!(if #value.trunc().abs().to_string().trim_start_matches('0').len() > #whole { #message; }));
                }
            }
            quote!(#(#checks)*)
        }
        Type::Object { .. } | Type::Union { .. } => quote!(#value.validate_at(&#at, out);),
        Type::Array(a) => {
            let mut checks = Vec::new();
            if let Some(min) = a.min_items {
                let message = push(quote!(::std::format!("must have at least {} items", #min)));
                checks.push(quote!(if (#value.len() as u64) < #min { #message; }));
            }
            if let Some(max) = a.max_items {
                let message = push(quote!(::std::format!("must have at most {} items", #max)));
                checks.push(quote!(if (#value.len() as u64) > #max { #message; }));
            }
            if a.unique_items {
                let message = push(quote!(::std::string::String::from("must not repeat items")));
                checks.push(quote!(if #value.iter().enumerate().any(|(i, item)| #value[..i].contains(item)) { #message; }));
            }
            let inner = check_value(&a.items, quote!(item), quote!(item_at), patterns);
            if !inner.is_empty() {
                let item_binding = if a.items_nullable {
                    quote!(let ::std::option::Option::Some(item) = item else { continue };)
                } else {
                    quote!()
                };
                checks.push(quote! {
                    for (index, item) in #value.iter().enumerate() {
                        #item_binding
                        let item_at = ::std::format!("{}/{}", #at, index);
                        #inner
                    }
                });
            }
            quote!(#(#checks)*)
        }
        Type::Map { values } => {
            let inner = check_value(values, quote!(item), quote!(item_at), patterns);
            if inner.is_empty() {
                quote!()
            } else {
                quote! {
                    for (key, item) in #value.iter() {
                        let item_at = ::std::format!("{}/{}", #at, key.replace('~', "~0").replace('/', "~1"));
                        #inner
                    }
                }
            }
        }
        _ => quote!(),
    }
}

/// Whether the Rust type of `ty` is `Copy` (so is its `Option`): generated code copies it rather
/// than calling `clone`, which clippy would flag.
fn is_copy(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Integer(_)
            | Type::Number(_)
            | Type::Decimal(_)
            | Type::Boolean
            | Type::Uuid
            | Type::Date
            | Type::DateTime
            | Type::Enum { .. }
    )
}

fn bounds_checks(
    n: &NumberType,
    float: bool,
    value: &TokenStream,
    push: &dyn Fn(TokenStream) -> TokenStream,
) -> TokenStream {
    let mut checks = Vec::new();
    let literal = |n: &serde_json::Number| -> TokenStream {
        if float {
            let v = Literal::f64_unsuffixed(n.as_f64().unwrap_or(0.0));
            quote!(#v)
        } else {
            let v = Literal::i64_unsuffixed(n.as_i64().unwrap_or(0));
            quote!(#v)
        }
    };
    // The value widened for comparison, without a cast clippy would call useless.
    let as_f64 = match (float, n.bits) {
        (true, _) => quote!((*#value)),
        (false, 32) => quote!(f64::from(*#value)),
        (false, _) => quote!((*#value as f64)),
    };
    let as_value = match (float, n.bits) {
        (false, 32) => quote!(i64::from(*#value)),
        _ => quote!((*#value)),
    };
    for (limit, op, words) in [
        (&n.minimum, quote!(<), "at least"),
        (&n.maximum, quote!(>), "at most"),
        (&n.exclusive_minimum, quote!(<=), "more than"),
        (&n.exclusive_maximum, quote!(>=), "less than"),
    ] {
        if let Some(limit) = limit {
            let bound = if float {
                let v = Literal::f64_unsuffixed(limit.as_f64().unwrap_or(0.0));
                quote!(#v)
            } else if limit.is_i64() {
                literal(limit)
            } else {
                // A fractional bound, or one beyond i64, on an integer: compare as floats.
                let v = Literal::f64_unsuffixed(limit.as_f64().unwrap_or(0.0));
                let text = format!("must be {words} {limit}");
                let message = push(quote!(::std::string::String::from(#text)));
                checks.push(quote!(if #as_f64 #op #v { #message; }));
                continue;
            };
            let text = format!("must be {words} {limit}");
            let message = push(quote!(::std::string::String::from(#text)));
            checks.push(quote!(if #as_value #op #bound { #message; }));
        }
    }
    if let Some(multiple) = &n.multiple_of {
        let text = format!("must be a multiple of {multiple}");
        let message = push(quote!(::std::string::String::from(#text)));
        if float || !multiple.is_i64() {
            let m = Literal::f64_unsuffixed(multiple.as_f64().unwrap_or(1.0));
            checks.push(quote!({
                let ratio = #as_f64 / #m;
                if (ratio - ratio.round()).abs() > 1e-9 { #message; }
            }));
        } else {
            let m = literal(multiple);
            checks.push(quote!(if #as_value % #m != 0 { #message; }));
        }
    }
    quote!(#(#checks)*)
}

/// `impl Validate` for a struct over its members.
fn validate_impl(
    name: &str,
    members: &[(&Member, Presence)],
    patterns: &mut Vec<String>,
) -> TokenStream {
    let type_ident = format_ident!("{}", name);
    let checks: Vec<TokenStream> = members
        .iter()
        .map(|(member, presence)| {
            let field = ident(&member.rust);
            let pointer = format!("/{}", member.name.replace('~', "~0").replace('/', "~1"));
            let boxed = if member.boxed { quote!(.as_ref()) } else { quote!() };
            let (bind, value) = match presence {
                Presence::Plain | Presence::Defaulted => (quote!(let value = &self.#field #boxed;), quote!(value)),
                Presence::Nullable | Presence::Optional => (quote!(let ::std::option::Option::Some(value) = &self.#field else { break 'member; };), quote!(value)),
                Presence::Patch => (quote!(let ::std::option::Option::Some(::std::option::Option::Some(value)) = &self.#field else { break 'member; };), quote!(value)),
            };
            let inner = check_value(&member.ty, value, quote!(member_at), patterns);
            if inner.is_empty() {
                return quote!();
            }
            match presence {
                Presence::Plain | Presence::Defaulted => quote! {
                    {
                        #bind
                        let member_at = ::std::format!("{}{}", at, #pointer);
                        #inner
                    }
                },
                _ => quote! {
                    'member: {
                        #bind
                        let member_at = ::std::format!("{}{}", at, #pointer);
                        #inner
                    }
                },
            }
        })
        .collect();
    let uses = if checks.iter().all(TokenStream::is_empty) {
        quote!(let _ = (at, out);)
    } else {
        quote!()
    };
    quote! {
        impl crate::generated::validate::Validate for #type_ident {
            fn validate_at(&self, at: &str, out: &mut ::std::vec::Vec<crate::generated::validate::Violation>) {
                #uses
                #(#checks)*
            }
        }
    }
}

fn union_validate(name: &str, u: &UnionType) -> TokenStream {
    let ident = format_ident!("{}", name);
    let nested = u
        .variants
        .iter()
        .any(|v| matches!(v.ty, Type::Object { .. } | Type::Union { .. }));
    let uses = if nested {
        quote!()
    } else {
        quote!(let _ = (at, out);)
    };
    let arms = u.variants.iter().map(|v| {
        let variant = format_ident!("{}", v.variant);
        match &v.ty {
            Type::Object { .. } | Type::Union { .. } => {
                quote!(#ident::#variant(inner) => inner.validate_at(at, out))
            }
            _ => quote!(#ident::#variant(_) => {}),
        }
    });
    quote! {
        impl crate::generated::validate::Validate for #ident {
            fn validate_at(&self, at: &str, out: &mut ::std::vec::Vec<crate::generated::validate::Violation>) {
                #uses
                match self {
                    #(#arms,)*
                }
            }
        }
    }
}

fn validate_module(patterns: &[String]) -> TokenStream {
    let count = patterns.len();
    let matcher = if patterns.is_empty() {
        quote!()
    } else {
        quote! {
            static PATTERNS: [&str; #count] = [#(#patterns),*];
            static COMPILED: ::std::sync::LazyLock<::std::vec::Vec<::regex::Regex>> = ::std::sync::LazyLock::new(|| {
                PATTERNS.iter().filter_map(|p| ::regex::Regex::new(p).ok()).collect()
            });

            /// Whether `value` matches pattern `index` (all patterns were checked by `prefiq codegen`).
            pub(crate) fn matches(index: usize, value: &str) -> bool {
                COMPILED.get(index).is_none_or(|pattern| pattern.is_match(value))
            }
        }
    };
    quote! {
        //! Constraint checks that serde cannot express (lengths, bounds, patterns, sizes).
        //! The server checks the same constraints with JSON Schema before a request reaches a service.

        /// One broken constraint, located by a JSON pointer.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Violation {
            /// Where, as in `/address/city`.
            pub pointer: ::std::string::String,
            /// What is wrong.
            pub message: ::std::string::String,
        }

        impl ::std::fmt::Display for Violation {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::write!(f, "{}: {}", self.pointer, self.message)
            }
        }

        /// A string that is not one of an enum's values.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct UnknownValue {
            /// The string.
            pub value: ::std::string::String,
            /// The values the enum has.
            pub expected: &'static [&'static str],
        }

        impl ::std::fmt::Display for UnknownValue {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::write!(f, "unknown value `{}`; expected one of {}", self.value, self.expected.join(", "))
            }
        }

        impl ::std::error::Error for UnknownValue {}

        /// Checks a value against its schema's constraints.
        pub trait Validate {
            /// Pushes every broken constraint under the pointer `at`.
            fn validate_at(&self, at: &str, out: &mut ::std::vec::Vec<Violation>);

            /// Every broken constraint, or `Ok`.
            fn validate(&self) -> ::std::result::Result<(), ::std::vec::Vec<Violation>> {
                let mut out = ::std::vec::Vec::new();
                self.validate_at("", &mut out);
                if out.is_empty() { ::std::result::Result::Ok(()) } else { ::std::result::Result::Err(out) }
            }
        }

        #matcher
    }
}

/// The `Params` structs of the app's custom operations.
fn operations_tokens(app: &App) -> TokenStream {
    let mut items = Vec::new();
    for operation in app.custom() {
        let Some(name) = &operation.params_type else {
            continue;
        };
        let mut fields = Fields::default();
        for param in &operation.params {
            let member = param.member();
            let presence = if member.required {
                Presence::Plain
            } else if member.default.is_some() {
                Presence::Defaulted
            } else {
                Presence::Optional
            };
            field_tokens(app, name, &member, presence, &mut fields);
        }
        let doc = format!(
            " The path, query and header parameters of `{}` ({} {}).",
            operation.id, operation.method, operation.path
        );
        items.push(struct_tokens(name, quote!(#[doc = #doc]), fields));
    }
    quote! {
        //! Parameters of the app's custom operations.
        #[allow(unused_imports)]
        use super::types::*;
        #(#items)*
    }
}

/// The files of the types crate under `src/generated/`: `(path, tokens)`.
pub fn emit(app: &App) -> Result<Vec<(String, TokenStream)>, Diagnostic> {
    let mut files = Vec::new();
    let mut patterns: Vec<String> = Vec::new();
    let mut named = Vec::new();
    for (name, ty) in app.declared_types() {
        match ty {
            NamedType::Struct(StructType {
                description,
                members,
            }) => {
                let mut fields = Fields::default();
                let mut presences = Vec::new();
                let tag = app.variant_tag(name).map(|(tag, _)| tag);
                for m in members {
                    if tag == Some(m.name.as_str()) {
                        continue;
                    }
                    let presence = match (m.required, m.nullable, m.default.is_some()) {
                        (_, false, true) => Presence::Defaulted,
                        (true, false, false) => Presence::Plain,
                        (true, true, _) => Presence::Nullable,
                        _ => Presence::Optional,
                    };
                    field_tokens(app, name, m, presence, &mut fields);
                    presences.push((m, presence));
                }
                named.push(struct_tokens(name, doc(description.as_deref()), fields));
                named.push(validate_impl(name, &presences, &mut patterns));
            }
            NamedType::Enum(e) => named.push(enum_tokens(name, e)),
            NamedType::Union(u) => {
                named.push(union_tokens(name, u));
                named.push(union_validate(name, u));
            }
            NamedType::Derived(_) => {}
        }
    }
    let has_types = !named.is_empty();
    if has_types {
        files.push((
            "src/generated/types.rs".to_owned(),
            quote! {
                //! Named types: nested objects, enums and unions.
                #[allow(unused_imports)]
                use crate::generated::validate::Validate as _;
                #(#named)*
            },
        ));
    }

    let mut modules = Vec::new();
    for entity in &app.entities {
        let module = format_ident!("{}", entity.snake);
        modules.push(module);
        let mut tokens = entity_tokens(app, entity);
        let model: Vec<(&Member, Presence)> = entity
            .fields
            .iter()
            .map(|f| {
                (
                    &f.member,
                    if f.is_model_optional() {
                        Presence::Optional
                    } else if f.role == FieldRole::Data && f.member.nullable {
                        Presence::Nullable
                    } else {
                        Presence::Plain
                    },
                )
            })
            .collect();
        tokens.extend(validate_impl(&entity.name, &model, &mut patterns));
        let create: Vec<(&Member, Presence)> = entity
            .writable()
            .map(|f| {
                (
                    &f.member,
                    if f.member.nullable || !f.is_create_required() && f.member.default.is_none() {
                        Presence::Optional
                    } else {
                        Presence::Plain
                    },
                )
            })
            .collect();
        tokens.extend(validate_impl(&entity.types.create, &create, &mut patterns));
        let patch: Vec<(&Member, Presence)> = entity
            .writable()
            .filter(|f| f.role == FieldRole::Data)
            .map(|f| {
                (
                    &f.member,
                    if f.is_patch_removable() {
                        Presence::Patch
                    } else {
                        Presence::Optional
                    },
                )
            })
            .collect();
        tokens.extend(validate_impl(&entity.types.patch, &patch, &mut patterns));
        let header = format!(" The {} entity, from {}.", entity.name, entity.source);
        let uses = if !has_types {
            quote!()
        } else {
            quote!(
                #[allow(unused_imports)]
                use super::types::*;
            )
        };
        let uses =
            quote!(#uses #[allow(unused_imports)] use crate::generated::validate::Validate as _;);
        files.push((
            format!("src/generated/{}.rs", entity.snake),
            quote! {
                #![doc = #header]
                #uses
                #tokens
            },
        ));
    }

    let has_params = app.custom().any(|o| o.params_type.is_some());
    if has_params {
        files.push((
            "src/generated/operations.rs".to_owned(),
            operations_tokens(app),
        ));
    }
    let operations_module = if has_params {
        quote!(
            mod operations;
            pub use operations::*;
        )
    } else {
        quote!()
    };
    let types_module = if !has_types {
        quote!()
    } else {
        quote!(
            mod types;
            pub use types::*;
        )
    };
    let removable = app.entities.iter().any(|e| {
        e.writable()
            .any(|f| f.role == FieldRole::Data && f.is_patch_removable())
    });
    let patch_helper = if removable {
        quote! {
            /// Deserialises the members of a merge patch: absent is `None`, `null` is `Some(None)`.
            pub(crate) mod patch {
                pub(crate) fn deserialize<'de, T, D>(deserializer: D) -> ::std::result::Result<::std::option::Option<::std::option::Option<T>>, D::Error>
                where
                    T: ::serde::Deserialize<'de>,
                    D: ::serde::Deserializer<'de>,
                {
                    <::std::option::Option<T> as ::serde::Deserialize>::deserialize(deserializer).map(::std::option::Option::Some)
                }
            }
        }
    } else {
        quote!()
    };
    let validate = validate_module(&patterns);
    files.push(("src/generated/validate.rs".to_owned(), validate));
    files.push((
        "src/generated/mod.rs".to_owned(),
        quote! {
            //! Everything in this folder is generated by `prefiq codegen` from the app's schemas.
            #(mod #modules; pub use #modules::*;)*
            #types_module
            #operations_module
            pub mod validate;
            pub use validate::{UnknownValue, Validate, Violation};

            #patch_helper
        },
    ));
    Ok(files)
}
