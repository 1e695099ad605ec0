// A create or edit form for any entity: it checks every change with the generated validators
// (JSON Schema and the rules of core/validation), sends only a body the server would take, and
// places the server's problems (422, 409, 412) next to the fields they name.
import { useMemo, useState } from "react";
import type { FormEvent } from "react";

import { fromDraft, isEmpty, toDraft } from "./convert.js";
import { Field } from "./field.js";
import type { Draft } from "./field.js";
import { explain, fieldOf } from "./problem.js";
import type { EntitySpec, FieldError } from "./spec.js";

interface FormProps<Row extends object> {
  spec: EntitySpec<Row>;
  /** The row to edit, as read; none to create one. */
  row?: Row | undefined;
  onSaved?: (row: Row) => void;
  /** Reads the row again (after a 412). */
  onReload?: () => void;
}

const equal = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Creates a row, or edits `row` with a merge patch and its `If-Match`. */
export function EntityForm<Row extends object>({ spec, row, onSaved, onReload }: FormProps<Row>) {
  const fields = spec.fields.filter((f) => f.writable);
  const stored = row as Record<string, unknown> | undefined;
  const initial = () => Object.fromEntries(fields.map((f) => [f.name, toDraft(f, stored?.[f.name] ?? defaultOf(f))]));
  const [drafts, setDrafts] = useState<Record<string, Draft>>(initial);
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
      const draft = drafts[f.name] ?? "";
      const value = isEmpty(f, draft) ? undefined : fromDraft(f, draft);
      if (value !== undefined) body[f.name] = value;
      if (stored === undefined) continue;
      const before = stored[f.name];
      if (before !== undefined && before !== null) merged[f.name] = before;
      const after = value === undefined ? (f.nullable ? null : f.kind === "text" ? "" : undefined) : value;
      if (after === undefined || equal(after, before ?? null)) continue;
      patch[f.name] = after;
      if (after === null) delete merged[f.name];
      else merged[f.name] = after;
    }
    return { body, patch, merged };
  }, [drafts, stored]);

  const local = stored === undefined ? spec.validateCreate(body) : spec.validatePatch(merged);
  const errorOf = (name: string): string | undefined => {
    // A field's own errors show once it was touched; a rule's, once any field was (a rule blames
    // a member for what another says).
    const shown = (e: FieldError) => touched.has(name) || (e.keyword === "x-prefiq-rules" && touched.size > 0);
    const own = server.fields.find((e) => fieldOf(e.pointer) === name) ?? local.find((e) => fieldOf(e.pointer) === name && shown(e));
    if (!own) return undefined;
    const inner = own.pointer.split("/").slice(2).join(".");
    return inner ? `${inner}: ${own.detail}` : own.detail;
  };
  const elsewhere = server.fields.filter((e) => !fields.some((f) => f.name === fieldOf(e.pointer)));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setTouched(new Set(fields.map((f) => f.name)));
    if (local.length > 0) return;
    try {
      const saved =
        stored === undefined || row === undefined
          ? await create.mutateAsync(body as never)
          : await update.mutateAsync({ id: spec.id(row), patch: patch as never, ...(spec.etag ? { ifMatch: spec.etag(row) } : {}), before: row });
      setServer({ fields: [], stale: false });
      if (stored === undefined) {
        setDrafts(initial());
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
      {fields.map((f) => (
        <Field
          key={f.name}
          spec={f}
          value={drafts[f.name] ?? ""}
          error={errorOf(f.name)}
          onChange={(value) => {
            setDrafts((d) => ({ ...d, [f.name]: value }));
            setTouched((t) => new Set(t).add(f.name));
            setServer((s) => ({ ...s, fields: s.fields.filter((e) => fieldOf(e.pointer) !== f.name) }));
          }}
          onBlur={() => setTouched((t) => new Set(t).add(f.name))}
        />
      ))}
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

function defaultOf(spec: { kind: string }): unknown {
  return spec.kind === "boolean" ? false : undefined;
}
