//! The model types crate: a struct per entity with its create and patch inputs, the named
//! types (nested objects, enums, unions), and `validate()` for the constraints serde cannot check.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::{Roots, ident, rust_type};
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
        (Type::String(_), Value::String(s)) => quote!(String::from(#s)),
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
            if items.is_empty() {
                return quote!(Vec::new());
            }
            let items = items.iter().map(|item| match item {
                Value::Null => quote!(None),
                item if a.items_nullable => {
                    let inner = default_expr(app, &a.items, item);
                    quote!(Some(#inner))
                }
                item => default_expr(app, &a.items, item),
            });
            // Not `vec![...]`: prettyplease lays out a call, never a macro's body.
            quote!(Vec::from([#(#items),*]))
        }
        (Type::Map { values }, Value::Object(members)) => {
            let entries = members.iter().map(|(key, value)| {
                let value = default_expr(app, values, value);
                quote!((String::from(#key), #value))
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
        ty = quote!(Box<#ty>);
    }
    let given = match presence {
        Presence::Patch => quote!(Option<#ty>),
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
            quote!(Option<#ty>),
            if float {
                quote!(#[serde(default, with = "::rust_decimal::serde::float_option")])
            } else {
                quote!(#[serde(default)])
            },
        ),
        Presence::Optional => (
            quote!(Option<#ty>),
            if float {
                quote!(#[serde(default, skip_serializing_if = "Option::is_none", with = "::rust_decimal::serde::float_option")])
            } else {
                quote!(#[serde(default, skip_serializing_if = "Option::is_none")])
            },
        ),
        Presence::Patch => (
            quote!(Option<Option<#ty>>),
            quote!(#[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::generated::patch::deserialize")]),
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
                quote!(Box::new(#value))
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
            _ => quote!(#name: None),
        }
    });
    // Members `new` takes are set there; the others get a setter each.
    let setters = members
        .iter()
        .filter(|m| m.presence != Presence::Plain)
        .map(|m| {
            let (name, setter, ty) = (&m.name, &m.setter, &m.given);
            let (value, doc) = match m.presence {
                Presence::Nullable | Presence::Optional => {
                    (quote!(Some(#name)), format!(" Sets `{name}`."))
                }
                Presence::Patch => (
                    quote!(Some(#name)),
                    format!(" Sets `{name}`: `None` removes it."),
                ),
                Presence::Plain | Presence::Defaulted => {
                    (quote!(#name), format!(" Sets `{name}`."))
                }
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
        format!(
            " {} `{name}` with every member absent or at its default.",
            crate::names::capital(crate::names::article(name))
        )
    } else {
        let names: Vec<String> = required.iter().map(|m| format!("`{}`", m.name)).collect();
        format!(
            " {} `{name}` with {}; the other members are absent or at their defaults.",
            crate::names::capital(crate::names::article(name)),
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
        } else if field.is_model_nullable() {
            Presence::Nullable
        } else {
            Presence::Plain
        };
        field_tokens(app, &entity.name, &field.member, presence, &mut model);
    }
    if entity.read_only {
        // Nothing creates or patches one: the model is the only type.
        return struct_tokens(&entity.name, docs, model);
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
        " The fields a client sends to create {} [`{}`].",
        crate::names::article(&entity.name),
        entity.name
    );
    let create = struct_tokens(&create_name, quote!(#[doc = #create_doc]), create);
    let patch_doc = format!(
        " A JSON merge patch of {} [`{}`]: `None` leaves a field alone, `Some(None)` removes it.",
        crate::names::article(&entity.name),
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
        " The writable fields of {} [`{}`], to change and write back.",
        crate::names::article(&entity.name),
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
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    #(#values => Ok(#ident::#variants),)*
                    _ => Err(crate::generated::validate::UnknownValue {
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

/// The calls that check one value (`value`, a reference) against its type's constraints, with
/// the checker `c` and the member's pointer `member` (a `&str` expression).
fn check_value(
    ty: &Type,
    value: TokenStream,
    member: TokenStream,
    patterns: &[String],
) -> TokenStream {
    let mut checks = Vec::new();
    match ty {
        Type::String(s) => {
            if let Some(min) = s.min_length {
                checks.push(quote!(c.min_chars(#member, #value, #min);));
            }
            if let Some(max) = s.max_length {
                checks.push(quote!(c.max_chars(#member, #value, #max);));
            }
            // Every pattern is in the list: `collect_patterns` walks the same types.
            if let Some(index) = s
                .pattern
                .as_ref()
                .and_then(|p| patterns.iter().position(|q| q == p))
            {
                checks.push(quote!(c.pattern(#member, #value, &crate::generated::validate::PATTERNS[#index]);));
            }
            if let Some(constant) = &s.constant {
                checks.push(quote!(c.constant(#member, #value, #constant);));
            }
        }
        Type::Integer(n) | Type::Number(n) => {
            checks.push(number_checks(
                n,
                matches!(ty, Type::Number(_)),
                &value,
                &member,
            ));
        }
        Type::Decimal(d) => {
            let b = &d.bounds;
            for (limit, check) in [
                (&b.minimum, quote!(min)),
                (&b.maximum, quote!(max)),
                (&b.exclusive_minimum, quote!(above)),
                (&b.exclusive_maximum, quote!(below)),
            ] {
                if let Some(limit) = limit {
                    let literal = decimal_literal(&limit.to_string());
                    checks.push(quote!(c.#check(#member, *#value, #literal);));
                }
            }
            if let Some(scale) = d.scale {
                checks.push(quote!(c.scale(#member, #value, #scale);));
                if let Some(precision) = d.precision {
                    let whole = precision - scale;
                    checks.push(quote!(c.whole_digits(#member, #value, #whole);));
                }
            }
        }
        Type::Object { .. } | Type::Union { .. } => checks.push(quote!(c.nested(#member, #value);)),
        Type::Array(a) => {
            if let Some(min) = a.min_items {
                checks.push(quote!(c.min_items(#member, #value.len(), #min);));
            }
            if let Some(max) = a.max_items {
                checks.push(quote!(c.max_items(#member, #value.len(), #max);));
            }
            if a.unique_items {
                checks.push(quote!(c.unique(#member, #value);));
            }
            let inner = check_value(&a.items, quote!(item), quote!(&item_at), patterns);
            if !inner.is_empty() {
                let item_binding = if a.items_nullable {
                    quote!(let Some(item) = item else { continue };)
                } else {
                    quote!()
                };
                checks.push(quote! {
                    for (index, item) in #value.iter().enumerate() {
                        #item_binding
                        let item_at = ::std::format!("{}/{}", #member, index);
                        #inner
                    }
                });
            }
        }
        Type::Map { values } => {
            let inner = check_value(values, quote!(item), quote!(&item_at), patterns);
            if !inner.is_empty() {
                checks.push(quote! {
                    for (key, item) in #value.iter() {
                        let item_at = ::std::format!("{}/{}", #member, crate::generated::validate::escape(key));
                        #inner
                    }
                });
            }
        }
        _ => {}
    }
    quote!(#(#checks)*)
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

/// The bound and multiple checks of a number.
fn number_checks(
    n: &NumberType,
    float: bool,
    value: &TokenStream,
    member: &TokenStream,
) -> TokenStream {
    let limits = [
        (&n.minimum, quote!(min)),
        (&n.maximum, quote!(max)),
        (&n.exclusive_minimum, quote!(above)),
        (&n.exclusive_maximum, quote!(below)),
    ];
    // Integers compare exactly while every bound is an integer; otherwise as floats.
    let exact = !float
        && limits
            .iter()
            .all(|(l, _)| l.as_ref().is_none_or(|l| l.is_i64()))
        && n.multiple_of.as_ref().is_none_or(|m| m.is_i64());
    let literal = |l: &serde_json::Number| {
        if exact {
            let v = Literal::i64_unsuffixed(l.as_i64().unwrap_or(0));
            quote!(#v)
        } else {
            let v = Literal::f64_unsuffixed(l.as_f64().unwrap_or(0.0));
            quote!(#v)
        }
    };
    let widened = match (exact, float, n.bits) {
        (true, _, 32) => quote!(i64::from(*#value)),
        (true, _, _) | (false, true, _) => quote!(*#value),
        (false, false, 32) => quote!(f64::from(*#value)),
        (false, false, _) => quote!((*#value as f64)),
    };
    let mut checks = Vec::new();
    for (limit, check) in limits {
        if let Some(limit) = limit {
            let bound = literal(limit);
            checks.push(quote!(c.#check(#member, #widened, #bound);));
        }
    }
    if let Some(multiple) = &n.multiple_of {
        let m = literal(multiple);
        let check = if exact {
            quote!(multiple_of)
        } else {
            quote!(multiple_of_float)
        };
        checks.push(quote!(c.#check(#member, #widened, #m);));
    }
    quote!(#(#checks)*)
}

/// `impl Validate` for a struct over its members.
fn validate_impl(name: &str, members: &[(&Member, Presence)], patterns: &[String]) -> TokenStream {
    let type_ident = format_ident!("{}", name);
    let checks: Vec<TokenStream> = members
        .iter()
        .filter_map(|(member, presence)| {
            let field = ident(&member.rust);
            let pointer = format!("/{}", member.name.replace('~', "~0").replace('/', "~1"));
            let boxed = if member.boxed {
                quote!(.as_ref())
            } else {
                quote!()
            };
            let inner = check_value(&member.ty, quote!(value), quote!(#pointer), patterns);
            if inner.is_empty() {
                return None;
            }
            Some(match presence {
                Presence::Plain | Presence::Defaulted => quote! {
                    let value = &self.#field #boxed;
                    #inner
                },
                Presence::Nullable | Presence::Optional => quote! {
                    if let Some(value) = &self.#field {
                        #inner
                    }
                },
                Presence::Patch => quote! {
                    if let Some(Some(value)) = &self.#field {
                        #inner
                    }
                },
            })
        })
        .collect();
    let body = if checks.is_empty() {
        quote!(let _ = (at, out);)
    } else {
        quote! {
            let c = &mut crate::generated::validate::Checks::new(at, out);
            #(#checks)*
        }
    };
    quote! {
        impl crate::generated::validate::Validate for #type_ident {
            fn validate_at(&self, at: &str, out: &mut Vec<crate::generated::validate::Violation>) {
                #body
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
            fn validate_at(&self, at: &str, out: &mut Vec<crate::generated::validate::Violation>) {
                #uses
                match self {
                    #(#arms,)*
                }
            }
        }
    }
}

/// `validate.rs`: the shared checks of `prefiq-check` under the names generated code uses, and
/// the app's patterns, compiled on first use.
fn validate_module(patterns: &[String]) -> TokenStream {
    let statics = if patterns.is_empty() {
        quote!()
    } else {
        let count = patterns.len();
        quote! {
            /// Every `pattern` of the app's schemas, by the index its checks use.
            pub(crate) static PATTERNS: [::prefiq_check::Pattern; #count] = [#(::prefiq_check::Pattern::new(#patterns)),*];
        }
    };
    quote! {
        //! Constraint checks that serde cannot express (lengths, bounds, patterns, sizes), from
        //! `prefiq-check`, which every app shares. The server checks the same constraints with JSON
        //! Schema before a request reaches a service.
        pub use ::prefiq_check::{escape, Checks, UnknownValue, Validate, Violation};
        #statics
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

/// Every `pattern` a validator checks, sorted: `PATTERNS` in `validate.rs`, indexed by the checks.
fn collect_patterns(app: &App) -> Vec<String> {
    fn walk(ty: &Type, out: &mut std::collections::BTreeSet<String>) {
        match ty {
            Type::String(s) => out.extend(s.pattern.iter().cloned()),
            Type::Array(a) => walk(&a.items, out),
            Type::Map { values } => walk(values, out),
            _ => {}
        }
    }
    let mut patterns = std::collections::BTreeSet::new();
    for (_, named) in app.declared_types() {
        if let NamedType::Struct(s) = named {
            s.members.iter().for_each(|m| walk(&m.ty, &mut patterns));
        }
    }
    for entity in &app.entities {
        entity
            .fields
            .iter()
            .for_each(|f| walk(&f.member.ty, &mut patterns));
    }
    patterns.into_iter().collect()
}

/// One file of the types crate.
#[derive(Debug, Clone, Copy)]
pub(super) enum Part {
    /// `types.rs`: the named types.
    Named,
    /// An entity's file, by index.
    Entity(usize),
    /// `operations.rs`: the parameters of custom operations.
    Params,
    /// `validate.rs`.
    Validate,
    /// `mod.rs`.
    Mod,
}

/// What every file of the types crate needs to know.
pub(super) struct Plan<'a> {
    app: &'a App,
    patterns: Vec<String>,
    has_types: bool,
    has_params: bool,
}

impl<'a> Plan<'a> {
    /// The plan of `app`'s types crate and its files.
    pub(super) fn new(app: &'a App) -> (Plan<'a>, Vec<Part>) {
        let has_types = app.declared_types().next().is_some();
        let has_params = app.custom().any(|o| o.params_type.is_some());
        let mut parts = Vec::new();
        if has_types {
            parts.push(Part::Named);
        }
        parts.extend((0..app.entities.len()).map(Part::Entity));
        if has_params {
            parts.push(Part::Params);
        }
        parts.extend([Part::Validate, Part::Mod]);
        let plan = Plan {
            app,
            patterns: collect_patterns(app),
            has_types,
            has_params,
        };
        (plan, parts)
    }

    /// A file: `(path under the crate, tokens)`.
    pub(super) fn render(&self, part: Part) -> (String, TokenStream) {
        let app = self.app;
        match part {
            Part::Named => ("src/generated/types.rs".to_owned(), self.named()),
            Part::Entity(index) => {
                let entity = &app.entities[index];
                (
                    format!("src/generated/{}.rs", entity.snake),
                    self.entity(entity),
                )
            }
            Part::Params => (
                "src/generated/operations.rs".to_owned(),
                operations_tokens(app),
            ),
            Part::Validate => (
                "src/generated/validate.rs".to_owned(),
                validate_module(&self.patterns),
            ),
            Part::Mod => ("src/generated/mod.rs".to_owned(), self.module()),
        }
    }

    fn named(&self) -> TokenStream {
        let app = self.app;
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
                    named.push(validate_impl(name, &presences, &self.patterns));
                }
                NamedType::Enum(e) => named.push(enum_tokens(name, e)),
                NamedType::Union(u) => {
                    named.push(union_tokens(name, u));
                    named.push(union_validate(name, u));
                }
                NamedType::Derived(_) => {}
            }
        }
        quote! {
            //! Named types: nested objects, enums and unions.
            #[allow(unused_imports)]
            use crate::generated::validate::Validate as _;
            #(#named)*
        }
    }

    fn entity(&self, entity: &Entity) -> TokenStream {
        let app = self.app;
        let mut tokens = entity_tokens(app, entity);
        let model: Vec<(&Member, Presence)> = entity
            .fields
            .iter()
            .map(|f| {
                (
                    &f.member,
                    if f.is_model_optional() {
                        Presence::Optional
                    } else if f.is_model_nullable() {
                        Presence::Nullable
                    } else {
                        Presence::Plain
                    },
                )
            })
            .collect();
        tokens.extend(validate_impl(&entity.name, &model, &self.patterns));
        // A read-only entity has no bodies to check.
        if !entity.read_only {
            let create: Vec<(&Member, Presence)> = entity
                .writable()
                .map(|f| {
                    (
                        &f.member,
                        if f.member.nullable
                            || !f.is_create_required() && f.member.default.is_none()
                        {
                            Presence::Optional
                        } else {
                            Presence::Plain
                        },
                    )
                })
                .collect();
            tokens.extend(validate_impl(&entity.types.create, &create, &self.patterns));
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
            tokens.extend(validate_impl(&entity.types.patch, &patch, &self.patterns));
        }
        let header = format!(" The {} entity, from {}.", entity.name, entity.source);
        let uses = if self.has_types {
            quote!(
                #[allow(unused_imports)]
                use super::types::*;
            )
        } else {
            quote!()
        };
        quote! {
            #![doc = #header]
            #uses
            #[allow(unused_imports)]
            use crate::generated::validate::Validate as _;
            #tokens
        }
    }

    fn module(&self) -> TokenStream {
        let app = self.app;
        let modules: Vec<_> = app
            .entities
            .iter()
            .map(|e| format_ident!("{}", e.snake))
            .collect();
        let operations_module = if self.has_params {
            quote!(
                mod operations;
                pub use operations::*;
            )
        } else {
            quote!()
        };
        let types_module = if self.has_types {
            quote!(
                mod types;
                pub use types::*;
            )
        } else {
            quote!()
        };
        let removable = app.entities.iter().any(|e| {
            e.writable()
                .any(|f| f.role == FieldRole::Data && f.is_patch_removable())
        });
        let patch_helper = if removable {
            quote! {
                /// Deserialises the members of a merge patch: absent is `None`, `null` is `Some(None)`.
                pub(crate) mod patch {
                    pub(crate) fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
                    where
                        T: ::serde::Deserialize<'de>,
                        D: ::serde::Deserializer<'de>,
                    {
                        <Option<T> as ::serde::Deserialize>::deserialize(deserializer).map(Some)
                    }
                }
            }
        } else {
            quote!()
        };
        let events = events_tokens(app);
        quote! {
            //! Everything in this folder is generated by `prefiq codegen` from the app's schemas.
            #(mod #modules; pub use #modules::*;)*
            #types_module
            #operations_module
            pub mod validate;
            pub use validate::{UnknownValue, Validate, Violation};

            #patch_helper
            #events
        }
    }
}

/// `events`: the type of every event the app publishes, as a constant, and the
/// `prefiq_check::Event` impl of each declared event's payload, by which a subscriber names it.
fn events_tokens(app: &App) -> TokenStream {
    let mut constants = Vec::new();
    for entity in &app.entities {
        for action in prefiq_grammar::ENTITY_ACTIONS {
            let value = prefiq_grammar::entity_event_type(&app.name, &entity.name, action);
            let name = format_ident!("{}_{}", entity.snake.to_uppercase(), action.to_uppercase());
            let doc = format!(" `{value}`: a {} was {action}.", entity.name);
            constants.push(quote!(#[doc = #doc] pub const #name: &str = #value;));
        }
    }
    let mut impls = Vec::new();
    for event in &app.events {
        let value = app.event_type(&event.name);
        let name = format_ident!("{}", event.name.to_uppercase());
        let doc = format!(" `{value}`: {}", event.description);
        constants.push(quote!(#[doc = #doc] pub const #name: &str = #value;));
        let payload = format_ident!("{}", event.payload);
        impls.push(quote! {
            impl ::prefiq_check::Event for #payload {
                const TYPE: &'static str = events::#name;
            }
        });
    }
    quote! {
        /// The types of the events the app publishes: every entity's `created`, `updated` and
        /// `deleted`, and those of `core/events/`.
        pub mod events {
            #(#constants)*
        }
        #(#impls)*
    }
}
