//! Static descriptions of generated tables: what the list query builder may touch and how
//! constraint names map back to request fields.

/// How a column is stored, which decides how values are bound and read in each dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `boolean` / SQLite `INTEGER` 0 or 1.
    Bool,
    /// `integer` (32-bit).
    Int32,
    /// `bigint`.
    Int,
    /// `double precision` / SQLite `REAL`.
    Float,
    /// `text`.
    Text,
    /// `uuid` / SQLite `TEXT`.
    Uuid,
    /// `date` / SQLite `TEXT` (`YYYY-MM-DD`).
    Date,
    /// `timestamptz` / SQLite `TEXT` (RFC 3339, UTC, microseconds, fixed width so it sorts).
    DateTime,
    /// `numeric` / SQLite `TEXT` (exact; compared as `REAL`).
    Decimal,
    /// `jsonb` / SQLite `TEXT`.
    Json,
}

/// Which writes set a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Inserts and updates (data, `updated_at`).
    Always,
    /// Inserts only (a key the server or client makes, `created_at`, the version).
    OnInsert,
    /// Neither: the database makes it (an identity key).
    Never,
}

/// One column of a generated table, in the order the generated row reader expects.
#[derive(Debug)]
pub struct ColumnMeta {
    /// The JSON member name.
    pub field: &'static str,
    /// The SQL column name.
    pub column: &'static str,
    /// How it is stored.
    pub kind: ColumnKind,
    /// Whether it may hold `NULL`.
    pub nullable: bool,
    /// Whether list requests may filter on it.
    pub filterable: bool,
    /// Whether list requests may sort by it.
    pub sortable: bool,
    /// For a JSON array of scalars: the kind of its items (enables the `cs` filter).
    pub items: Option<ColumnKind>,
    /// For an enum: its values, so a filter on an unknown value is a 400, not an empty page.
    pub values: &'static [&'static str],
    /// Which writes set it.
    pub written: Written,
    /// Whether the schema marks it secret: audit entries show it changed, never its value.
    pub secret: bool,
    /// For a decimal with a scale: the digits after the point every stored value has, so both
    /// databases return the same canonical form (`1.10`, never `1.1`).
    pub scale: Option<u32>,
    /// Whether only platform operators may set it (`x-prefiq: {scope: platform}`).
    pub platform: bool,
}

impl ColumnMeta {
    /// A column that is not null, not filterable and not sortable.
    pub const fn new(field: &'static str, column: &'static str, kind: ColumnKind) -> ColumnMeta {
        ColumnMeta {
            field,
            column,
            kind,
            nullable: false,
            filterable: false,
            sortable: false,
            items: None,
            values: &[],
            written: Written::Always,
            secret: false,
            scale: None,
            platform: false,
        }
    }

    /// Only platform operators set it.
    pub const fn platform(mut self) -> ColumnMeta {
        self.platform = true;
        self
    }

    /// A decimal stored with `scale` digits after the point.
    pub const fn scale(mut self, scale: u32) -> ColumnMeta {
        self.scale = Some(scale);
        self
    }

    /// Audit entries redact its values.
    pub const fn secret(mut self) -> ColumnMeta {
        self.secret = true;
        self
    }

    /// Only inserts set it.
    pub const fn on_insert(mut self) -> ColumnMeta {
        self.written = Written::OnInsert;
        self
    }

    /// The database makes it.
    pub const fn database(mut self) -> ColumnMeta {
        self.written = Written::Never;
        self
    }

    /// It may hold `NULL`.
    pub const fn nullable(mut self) -> ColumnMeta {
        self.nullable = true;
        self
    }

    /// List requests may filter on it.
    pub const fn filterable(mut self) -> ColumnMeta {
        self.filterable = true;
        self
    }

    /// List requests may sort by it.
    pub const fn sortable(mut self) -> ColumnMeta {
        self.sortable = true;
        self
    }

    /// It holds a JSON array of scalars of `kind`.
    pub const fn items(mut self, kind: ColumnKind) -> ColumnMeta {
        self.items = Some(kind);
        self
    }

    /// It holds one of these enum values.
    pub const fn values(mut self, values: &'static [&'static str]) -> ColumnMeta {
        self.values = values;
        self
    }
}

/// A foreign key of a generated table.
#[derive(Debug)]
pub struct ForeignKeyMeta {
    /// The constraint's name.
    pub constraint: &'static str,
    /// The referring column.
    pub column: &'static str,
    /// The referenced entity, as in `Company`.
    pub entity: &'static str,
    /// The referenced table.
    pub table: &'static str,
    /// The referenced column (its primary key).
    pub target: &'static str,
    /// Whether the referenced table is tenant-scoped: a row may only refer to a row of its own
    /// tenant, which the database's key cannot check, so every write does.
    pub tenant: bool,
}

/// A generated table.
#[derive(Debug)]
pub struct TableMeta {
    /// The entity name, as in `Company`.
    pub entity: &'static str,
    /// The table name.
    pub table: &'static str,
    /// Every column, in `SELECT` order.
    pub columns: &'static [ColumnMeta],
    /// The index of the primary key in `columns`.
    pub primary_key: usize,
    /// The index of the row version in `columns`.
    pub version: usize,
    /// Named unique constraints: `(constraint, columns)`.
    pub uniques: &'static [(&'static str, &'static [&'static str])],
    /// Named foreign keys.
    pub foreign_keys: &'static [ForeignKeyMeta],
    /// The app, as in `crm`: audit entries name it.
    pub app: &'static str,
    /// The index in `columns` of `tenant_id`, for a tenant-scoped table: every statement is
    /// limited to the caller's tenant, and inserts take it from the caller.
    pub tenant: Option<usize>,
    /// For a shared table whose rows each belong to a tenant (`x-prefiq.tenant-member`): the
    /// index in `columns` of the member naming it. A caller who is not a platform operator reads
    /// only its tenant's rows and the platform's (null), and writes only its tenant's.
    pub tenant_member: Option<usize>,
    /// The index in `columns` of the owner, for a table whose rows only their owner sees
    /// (`x-prefiq: {rows: owner}`): the user who created a row.
    pub owner: Option<usize>,
    /// The tables whose rows refer to this one with `on-delete: set-null`.
    pub referrers: &'static [ReferrerMeta],
}

/// What deleting a referred row does to the rows that refer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// The reference is cleared, and the referring row's version and `updated_at` move.
    SetNull,
    /// The referring rows are deleted too, each with its own audit entry.
    Cascade,
}

/// A table that refers to another with `on-delete: set-null` or `cascade`. The repository does
/// what the clause says itself, rather than leave it to the database, so that every row it
/// changes or removes moves its version and gets its audit entry.
#[derive(Debug)]
pub struct ReferrerMeta {
    /// The referring table.
    pub table: &'static str,
    /// Its referring column.
    pub column: &'static str,
    /// Its version column.
    pub version: &'static str,
    /// Its `updated_at` column, if it has one.
    pub updated_at: Option<&'static str>,
    /// Whether it is tenant-scoped.
    pub tenant: bool,
    /// What a delete does to it.
    pub on_delete: OnDelete,
    /// Its own description, for the rows a cascade removes (and, in turn, theirs).
    pub meta: &'static TableMeta,
    /// Its members a client writes, which its audit entries show.
    pub writable: &'static [&'static str],
}

impl TableMeta {
    /// The JSON member stored in `column`, or `""`.
    pub fn field_of(&self, column: &str) -> &'static str {
        self.columns
            .iter()
            .find(|c| c.column == column)
            .map(|c| c.field)
            .unwrap_or("")
    }

    /// The column for the JSON member `field`.
    pub fn column(&self, field: &str) -> Option<(usize, &ColumnMeta)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.field == field)
    }
}

/// Quotes an SQL identifier. Identifiers come from the schema, never from a request, but every
/// one is quoted so that names like `order` or `user` work in both dialects.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
