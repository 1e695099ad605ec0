// A create or edit form for any entity: it checks every change with the generated validators
// (JSON Schema and the rules of core/validation), sends only a body the server would take, and
// places the server's problems (422, 409, 412) next to the fields they name. Objects are
// fieldsets of their members; a list of objects is a fieldset per item, with buttons to add and
// remove items; a tagged union is a choice of its tag that shows that alternative's members.
import { useMemo, useState } from "react";
import type { FormEvent, ReactNode } from "react";

import { drafts as draftsOf, itemCount, valueOf, withoutItem } from "./convert.js";
import { Field } from "./field.js";
import type { Draft } from "./field.js";
import { explain } from "./problem.js";
import type { FieldError, FieldSpec, WritableSpec } from "./spec.js";

interface FormProps<Row extends object> {
  spec: WritableSpec<Row>;
  /** The row to edit, as read; none to create one. */
  row?: Row | undefined;
  onSaved?: (row: Row) => void;
  /** Reads the row again (after a 412). */
  onReload?: () => void;
}

const equal = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** What a field the user emptied is sent as when it may not be null. */
const emptied = (f: FieldSpec): unknown => (f.kind === "text" ? "" : f.kind === "tags" || f.kind === "list" ? [] : undefined);

/** A JSON pointer as a member path: `/address/city` → `address.city`. */
const pathOf = (pointer: string) =>
  pointer
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .join(".");

/** Creates a row, or edits `row` with a merge patch and its `If-Match`. Another entity's form, or
 * another row's, starts afresh. */
export function EntityForm<Row extends object>(props: FormProps<Row>) {
  const key = `${props.spec.path}/${props.row === undefined ? "" : props.spec.id(props.row)}`;
  return <Form key={key} {...props} />;
}

function Form<Row extends object>({ spec, row, onSaved, onReload }: FormProps<Row>) {
  const fields = useMemo(() => spec.fields.filter((f) => f.writable), [spec]);
  const stored = row as Record<string, unknown> | undefined;
  const [drafts, setDrafts] = useState<Record<string, Draft>>(() => draftsOf(fields, stored));
  const [touched, setTouched] = useState<Set<string>>(new Set());
  const [server, setServer] = useState<{ fields: FieldError[]; message?: string | undefined; stale: boolean }>({ fields: [], stale: false });
  const create = spec.useCreate();
  const update = spec.useUpdate();

  // What would be sent: a create's body, or a patch and the merged row it makes.
  const { body, patch, merged } = useMemo(() => {
    const body: Record<string, unknown> = {};
    const patch: Record<string, unknown> = {};
    const merged: Record<string, unknown> = {};
    for (const f of fields) {
      const value = valueOf(f, drafts, f.name);
      if (value !== undefined) body[f.name] = value;
      if (stored === undefined) continue;
      const before = stored[f.name];
      if (before !== undefined && before !== null) merged[f.name] = before;
      const after = value === undefined ? (f.nullable ? null : emptied(f)) : value;
      if (after === undefined || equal(after, before ?? null)) continue;
      patch[f.name] = after;
      if (after === null) delete merged[f.name];
      else merged[f.name] = after;
    }
    return { body, patch, merged };
  }, [drafts, stored, fields]);

  const local = stored === undefined ? spec.validateCreate(body) : spec.validatePatch(merged);
  const belongs = (path: string, errorPath: string) => errorPath === path || errorPath.startsWith(`${path}.`);
  const topOf = (path: string) => path.split(".")[0] ?? path;
  // A field's own errors show once it or a member of its top-level group was touched; a rule's,
  // once any field was (a rule blames a member for what another says).
  const shown = (path: string, e: FieldError) =>
    [...touched].some((t) => topOf(t) === topOf(path)) || (e.keyword === "x-prefiq-rules" && touched.size > 0);
  const errorAt = (path: string, exact: boolean): string | undefined => {
    const match = (e: FieldError) => (exact ? pathOf(e.pointer) === path : belongs(path, pathOf(e.pointer)));
    const own = server.fields.find(match) ?? local.find((e) => match(e) && shown(path, e));
    if (!own) return undefined;
    const inner = pathOf(own.pointer).slice(path.length + 1);
    return inner ? `${inner}: ${own.detail}` : own.detail;
  };
  // A group's own error, or one about a member it does not show (`claimed` says which it shows).
  const looseError = (path: string, claimed: (errorPath: string) => boolean): string | undefined => {
    const own = errorAt(path, true);
    if (own) return own;
    const e = [...server.fields, ...local].find(
      (e) => belongs(path, pathOf(e.pointer)) && !claimed(pathOf(e.pointer)) && (server.fields.includes(e) || shown(path, e)),
    );
    if (!e) return undefined;
    const inner = pathOf(e.pointer).slice(path.length + 1);
    return inner ? `${inner}: ${e.detail}` : e.detail;
  };
  const known = (errorPath: string) => fields.some((f) => belongs(f.name, errorPath));
  const elsewhere = server.fields.filter((e) => !known(pathOf(e.pointer)));

  const change = (path: string, value: Draft) => {
    setDrafts((d) => ({ ...d, [path]: value }));
    setTouched((t) => new Set(t).add(path));
    setServer((s) => ({ ...s, fields: s.fields.filter((e) => pathOf(e.pointer) !== path) }));
  };
  const touch = (path: string) => setTouched((t) => new Set(t).add(path));
  const addItem = (path: string) => {
    setDrafts((d) => ({ ...d, [path]: String(itemCount(d, path) + 1) }));
    setTouched((t) => new Set(t).add(path));
  };
  const removeItem = (path: string, index: number) => {
    setDrafts((d) => withoutItem(d, path, index));
    setTouched((t) => new Set(t).add(path));
    // The server's verdicts on items name positions that have now moved.
    setServer((s) => ({ ...s, fields: s.fields.filter((e) => !belongs(path, pathOf(e.pointer))) }));
  };

  // One field; a group (object or union) shows its members, and the errors no member claims.
  const render = (f: FieldSpec, path: string): ReactNode => {
    if (f.kind === "list" && f.fields) {
      const items = Array.from({ length: itemCount(drafts, path) }, (_, i) => i);
      const itemFields = f.fields;
      const claimed = (p: string) => items.some((i) => itemFields.some((m) => belongs(`${path}.${i}.${m.name}`, p)));
      const loose = looseError(path, claimed);
      return (
        <fieldset key={path} className="pq-group" aria-describedby={loose ? `${path}-error` : undefined}>
          <legend>
            {f.label}
            {f.required ? <span aria-hidden="true"> *</span> : null}
          </legend>
          {f.description ? <p className="pq-hint">{f.description}</p> : null}
          {items.map((i) => (
            <fieldset key={`${path}.${i}`} className="pq-group pq-item">
              <legend>{`${f.label} ${i + 1}`}</legend>
              {itemFields.map((m) => render(m, `${path}.${i}.${m.name}`))}
              <button type="button" onClick={() => removeItem(path, i)}>
                Remove {`${f.label.toLowerCase()} ${i + 1}`}
              </button>
            </fieldset>
          ))}
          <button type="button" onClick={() => addItem(path)}>
            Add to {f.label.toLowerCase()}
          </button>
          {loose ? (
            <p id={`${path}-error`} className="pq-error" role="alert">
              {loose}
            </p>
          ) : null}
        </fieldset>
      );
    }
    if ((f.kind === "object" && f.fields) || (f.kind === "union" && f.tag && f.variants)) {
      const tagPath = `${path}.${f.tag ?? ""}`;
      const variant = f.variants?.find((v) => v.value === drafts[tagPath]);
      const members = f.kind === "object" ? (f.fields ?? []) : (variant?.fields ?? []);
      const claimed = (p: string) => members.some((m) => belongs(`${path}.${m.name}`, p)) || (f.kind === "union" && p === tagPath);
      const loose = looseError(path, claimed);
      return (
        <fieldset key={path} className="pq-group" aria-describedby={loose ? `${path}-error` : undefined}>
          <legend>
            {f.label}
            {f.required ? <span aria-hidden="true"> *</span> : null}
          </legend>
          {f.description ? <p className="pq-hint">{f.description}</p> : null}
          {f.kind === "union" && f.tag ? (
            <Field
              spec={{ ...f, name: f.tag, label: `${f.label}: kind`, kind: "enum", options: f.variants?.map((v) => v.value) ?? [], description: undefined, required: f.required }}
              value={drafts[tagPath] ?? ""}
              error={errorAt(tagPath, false)}
              onChange={(v) => change(tagPath, v)}
              onBlur={() => touch(tagPath)}
            />
          ) : null}
          {members.map((m) => render(m, `${path}.${m.name}`))}
          {loose ? (
            <p id={`${path}-error`} className="pq-error" role="alert">
              {loose}
            </p>
          ) : null}
        </fieldset>
      );
    }
    return (
      <Field
        key={path}
        spec={f}
        value={drafts[path] ?? ""}
        error={errorAt(path, false)}
        onChange={(value) => change(path, value)}
        onBlur={() => touch(path)}
      />
    );
  };

  async function submit(event: FormEvent) {
    event.preventDefault();
    setTouched(new Set(Object.keys(drafts).concat(fields.map((f) => f.name))));
    if (local.length > 0) return;
    try {
      const saved =
        stored === undefined || row === undefined
          ? await create.mutateAsync(body as never)
          : await update.mutateAsync({ id: spec.id(row), patch: patch as never, ...(spec.etag ? { ifMatch: spec.etag(row) } : {}), before: row });
      setServer({ fields: [], stale: false });
      if (stored === undefined) {
        setDrafts(draftsOf(fields, undefined));
        setTouched(new Set());
      }
      onSaved?.(saved);
    } catch (error) {
      setServer(explain(error, spec.name));
    }
  }

  const busy = create.isPending || update.isPending;
  return (
    <form className="pq-form" noValidate onSubmit={submit} aria-label={row ? `Edit ${spec.name}` : `New ${spec.name}`}>
      {fields.map((f) => render(f, f.name))}
      {server.message || elsewhere.length > 0 ? (
        <div className={`pq-banner${server.stale ? " pq-banner-warning" : " pq-banner-danger"}`} role="alert">
          {server.message ? <p>{server.message}</p> : null}
          {elsewhere.map((e) => (
            <p key={e.pointer}>
              {e.pointer || "The body"}: {e.detail}
            </p>
          ))}
          {server.stale && onReload ? (
            <button type="button" onClick={onReload}>
              Reload
            </button>
          ) : null}
        </div>
      ) : null}
      <div className="pq-actions">
        <button type="submit" className="pq-primary" disabled={busy}>
          {row ? "Save" : `Create ${spec.name.toLowerCase()}`}
        </button>
      </div>
    </form>
  );
}
