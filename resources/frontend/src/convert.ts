// Between what a form holds (text and flags, one per member path such as `address.city`) and
// what the API takes (typed JSON), per field kind. A list of objects holds its length at its own
// path and each item's members under `lines.0.sku`, `lines.1.sku`, …
import type { Draft } from "./field.js";
import type { FieldSpec } from "./spec.js";

/** A stored scalar as the form shows it. */
export function toDraft(spec: FieldSpec, value: unknown): Draft {
  if (spec.kind === "boolean") return value === true;
  if (value === null || value === undefined) return "";
  if (spec.kind === "tags" && Array.isArray(value)) return value.join(", ");
  if (spec.kind === "json" || spec.kind === "object" || spec.kind === "union" || spec.kind === "list") return JSON.stringify(value, null, 2);
  if (spec.kind === "datetime" && typeof value === "string") {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return value;
    const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
    return local.toISOString().slice(0, 16);
  }
  return String(value);
}

/** Whether the form left a field empty. */
export const isEmpty = (spec: FieldSpec, draft: Draft): boolean => spec.kind !== "boolean" && draft === "";

/**
 * What the API is sent for a draft. Text that is not a number stays text, and JSON that does not
 * parse stays text, so that the validators name the mistake.
 */
export function fromDraft(spec: FieldSpec, draft: Draft): unknown {
  if (spec.kind === "boolean") return draft === true;
  const text = String(draft);
  switch (spec.kind) {
    case "integer":
    case "number":
      return text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
    case "tags":
      return text
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== "");
    case "datetime": {
      const date = new Date(text);
      return Number.isNaN(date.getTime()) ? text : date.toISOString();
    }
    case "json":
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    default:
      return text;
  }
}

const join = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);

/** The drafts of `specs` for the stored `value`, by member path. */
export function drafts(specs: readonly FieldSpec[], value: Record<string, unknown> | undefined, prefix = ""): Record<string, Draft> {
  const out: Record<string, Draft> = {};
  for (const spec of specs) {
    const path = join(prefix, spec.name);
    const stored = value?.[spec.name];
    const inner = stored !== null && typeof stored === "object" && !Array.isArray(stored) ? (stored as Record<string, unknown>) : undefined;
    if (spec.kind === "object" && spec.fields) {
      Object.assign(out, drafts(spec.fields, inner, path));
    } else if (spec.kind === "list" && spec.fields) {
      const items = Array.isArray(stored) ? (stored as unknown[]) : [];
      out[path] = String(items.length);
      items.forEach((item, i) => {
        const members = item !== null && typeof item === "object" ? (item as Record<string, unknown>) : undefined;
        Object.assign(out, drafts(spec.fields ?? [], members, join(path, String(i))));
      });
    } else if (spec.kind === "union" && spec.tag && spec.variants) {
      out[join(path, spec.tag)] = typeof inner?.[spec.tag] === "string" ? (inner[spec.tag] as string) : "";
      for (const variant of spec.variants) Object.assign(out, drafts(variant.fields, inner, path));
    } else {
      out[path] = toDraft(spec, stored ?? (spec.kind === "boolean" ? false : undefined));
    }
  }
  return out;
}

/**
 * The value `specs` make of `drafts`: members left empty are left out, and an object or union
 * with nothing filled in is left out as a whole.
 */
export function build(specs: readonly FieldSpec[], drafts: Record<string, Draft>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of specs) {
    const value = valueOf(spec, drafts, join(prefix, spec.name));
    if (value !== undefined) out[spec.name] = value;
  }
  return out;
}

/** The value of one field, or `undefined` when it was left empty. */
export function valueOf(spec: FieldSpec, drafts: Record<string, Draft>, path: string): unknown {
  if (spec.kind === "object" && spec.fields) {
    const value = build(spec.fields, drafts, path);
    return Object.keys(value).length > 0 ? value : undefined;
  }
  if (spec.kind === "list" && spec.fields) {
    const length = itemCount(drafts, path);
    if (length === 0) return undefined;
    return Array.from({ length }, (_, i) => build(spec.fields ?? [], drafts, join(path, String(i))));
  }
  if (spec.kind === "union" && spec.tag && spec.variants) {
    const tag = drafts[join(path, spec.tag)] ?? "";
    const variant = spec.variants.find((v) => v.value === tag);
    return variant ? { [spec.tag]: tag, ...build(variant.fields, drafts, path) } : undefined;
  }
  const draft = drafts[path] ?? "";
  return isEmpty(spec, draft) ? undefined : fromDraft(spec, draft);
}

/** How many items a list of objects holds. */
export const itemCount = (drafts: Record<string, Draft>, path: string): number => Number(drafts[path] ?? 0) || 0;

/** The drafts without item `index` of the list at `path`: the items after it move up one. */
export function withoutItem(drafts: Record<string, Draft>, path: string, index: number): Record<string, Draft> {
  const out: Record<string, Draft> = {};
  const prefix = `${path}.`;
  for (const [key, value] of Object.entries(drafts)) {
    if (!key.startsWith(prefix)) {
      out[key] = value;
      continue;
    }
    const [position = "", ...rest] = key.slice(prefix.length).split(".");
    const i = Number(position);
    if (i === index) continue;
    out[i > index ? [path, String(i - 1), ...rest].join(".") : key] = value;
  }
  out[path] = String(Math.max(itemCount(drafts, path) - 1, 0));
  return out;
}
