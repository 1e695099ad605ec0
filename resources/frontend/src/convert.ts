// Between what a form holds (text, flags) and what the API takes (typed JSON), per field kind.
import type { Draft } from "./field.js";
import type { FieldSpec } from "./spec.js";

/** A stored value as the form shows it. */
export function toDraft(spec: FieldSpec, value: unknown): Draft {
  if (spec.kind === "boolean") return value === true;
  if (value === null || value === undefined) return "";
  if (spec.kind === "tags" && Array.isArray(value)) return value.join(", ");
  if (spec.kind === "json") return JSON.stringify(value, null, 2);
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
