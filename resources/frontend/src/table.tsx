// A page of any entity's rows: a column per field, headers that sort where the schema says
// `sortable`, a filter per `filterable` field, and keyset pages.
import { useState } from "react";

import { toDraft } from "./convert.js";
import { ReferenceValue } from "./reference.js";
import type { EntitySpec, FieldSpec } from "./spec.js";

interface TableProps<Row extends object> {
  spec: EntitySpec<Row>;
  /** Where a row links to (default: `#/<path>/<id>`). */
  href?: (row: Row) => string;
  pageSize?: number;
}

/** The filter a typed value makes: `ilike` for text, `eq` for the rest. */
function filterOf(spec: FieldSpec, value: string): string {
  return spec.kind === "text" || spec.kind === "email" || spec.kind === "url" ? `ilike.*${value}*` : `eq.${value}`;
}

/** A table of `spec`'s rows; another entity's table starts afresh (its own sort, filters, page). */
export function EntityTable<Row extends object>(props: TableProps<Row>) {
  return <Table key={props.spec.path} {...props} />;
}

function Table<Row extends object>({ spec, href, pageSize = 20 }: TableProps<Row>) {
  const columns = spec.fields.filter((f) => f.column);
  const [sort, setSort] = useState<string>("");
  const [filters, setFilters] = useState<Record<string, string>>({});
  const [cursors, setCursors] = useState<string[]>([]);
  const query: Record<string, string | number> = { limit: pageSize };
  if (sort) query.sort = sort;
  for (const f of spec.fields) {
    const value = filters[f.name];
    if (f.filterable && value) query[f.name] = filterOf(f, value);
  }
  const cursor = cursors[cursors.length - 1];
  if (cursor) query.cursor = cursor;
  const page = spec.useList(query);
  const link = href ?? ((row: Row) => `#/${spec.path}/${encodeURIComponent(spec.id(row))}`);
  const restart = () => setCursors([]);
  // The row's link sits in its first column of its own (a reference links to another row).
  const linked = columns.find((c) => c.kind !== "reference") ?? columns[0];

  const sortBy = (name: string) => {
    setSort((current) => (current === name ? `-${name}` : name));
    restart();
  };
  const ariaSort = (name: string) => (sort === name ? "ascending" : sort === `-${name}` ? "descending" : undefined);
  const filterable = spec.fields.filter((f) => f.filterable && f.kind !== "json" && f.kind !== "tags");

  return (
    <section className="pq-table-block" aria-label={spec.plural}>
      {filterable.length > 0 ? (
        <form className="pq-filters" role="search" aria-label={`Filter ${spec.plural.toLowerCase()}`} onSubmit={(e) => e.preventDefault()}>
          {filterable.map((f) => (
            <label key={f.name}>
              {f.label}
              {f.kind === "reference" && f.useOptions ? (
                <ReferenceFilter
                  field={f}
                  value={filters[f.name] ?? ""}
                  onChange={(value) => {
                    setFilters({ ...filters, [f.name]: value });
                    restart();
                  }}
                />
              ) : f.kind === "enum" || f.kind === "boolean" ? (
                <select
                  name={`filter-${f.name}`}
                  value={filters[f.name] ?? ""}
                  onChange={(e) => {
                    setFilters({ ...filters, [f.name]: e.target.value });
                    restart();
                  }}
                >
                  <option value="">Any</option>
                  {(f.kind === "boolean" ? ["true", "false"] : (f.options ?? [])).map((o) => (
                    <option key={o} value={o}>
                      {o}
                    </option>
                  ))}
                </select>
              ) : (
                <input
                  name={`filter-${f.name}`}
                  type="search"
                  value={filters[f.name] ?? ""}
                  onChange={(e) => {
                    setFilters({ ...filters, [f.name]: e.target.value });
                    restart();
                  }}
                />
              )}
            </label>
          ))}
        </form>
      ) : null}
      {page.error ? (
        <p className="pq-banner pq-banner-danger" role="alert">
          {page.error instanceof Error ? page.error.message : "The list could not be read."}
        </p>
      ) : null}
      <table className="pq-table" aria-busy={page.isPending}>
        <caption>{spec.plural}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.name} scope="col" aria-sort={ariaSort(c.name)}>
                {c.sortable ? (
                  <button type="button" onClick={() => sortBy(c.name)}>
                    {c.label}
                    <span aria-hidden="true">{sort === c.name ? " ▲" : sort === `-${c.name}` ? " ▼" : ""}</span>
                  </button>
                ) : (
                  c.label
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {(page.data?.items ?? []).map((row) => (
            <tr key={spec.id(row)}>
              {columns.map((c) => {
                const text = String(toDraft(c, (row as Record<string, unknown>)[c.name]));
                if (c === linked) return <td key={c.name}><a href={link(row)}>{text || spec.id(row)}</a></td>;
                return <td key={c.name}>{c.kind === "reference" ? <ReferenceValue spec={c} id={text} /> : text}</td>;
              })}
            </tr>
          ))}
          {page.data && page.data.items.length === 0 ? (
            <tr>
              <td colSpan={columns.length}>No {spec.plural.toLowerCase()}.</td>
            </tr>
          ) : null}
        </tbody>
      </table>
      <nav className="pq-pages" aria-label={`${spec.plural} pages`}>
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous
        </button>
        <button
          type="button"
          disabled={!page.data?.next_cursor}
          onClick={() => page.data?.next_cursor && setCursors([...cursors, page.data.next_cursor])}
        >
          Next
        </button>
      </nav>
    </section>
  );
}

/** A reference's filter: a choice of the rows it may point at (the first 100, found by title). */
function ReferenceFilter({ field, value, onChange }: { field: FieldSpec; value: string; onChange: (value: string) => void }) {
  const options = field.useOptions?.() ?? [];
  return (
    <select name={`filter-${field.name}`} value={value} onChange={(e) => onChange(e.target.value)}>
      <option value="">Any</option>
      {options.map((o) => (
        <option key={o.value} value={o.value}>
          {o.label}
        </option>
      ))}
    </select>
  );
}
