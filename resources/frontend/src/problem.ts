// The server's problems (RFC 9457), as the generated client throws them, placed next to fields.
import type { FieldError } from "./spec.js";

/** What a failed request says: field errors, and a message for the form as a whole. */
export interface Explained {
  fields: FieldError[];
  message?: string;
  /** 412: the row changed since it was read. */
  stale: boolean;
}

/** Explains an error thrown by a generated client call. */
export function explain(error: unknown, entity: string): Explained {
  const status = typeof error === "object" && error !== null && "status" in error ? Number(error.status) : 0;
  const body = typeof error === "object" && error !== null && "body" in error ? (error.body as Record<string, unknown> | undefined) : undefined;
  const fields = Array.isArray(body?.errors) ? (body.errors as FieldError[]) : [];
  const detail = typeof body?.detail === "string" ? body.detail : error instanceof Error ? error.message : "The request failed.";
  if (status === 412) {
    return {
      fields: [],
      stale: true,
      message: `Someone else changed this ${entity.toLowerCase()} since you opened it. Reload to see their version, then make your change again.`,
    };
  }
  if (status === 422 || (status === 409 && fields.length > 0)) return { fields, stale: false, message: fields.length > 0 ? undefined : detail };
  return { fields: [], stale: false, message: detail };
}

/** The field a JSON pointer names: its first segment, unescaped. */
export function fieldOf(pointer: string): string {
  const first = pointer.split("/")[1] ?? "";
  return first.replace(/~1/g, "/").replace(/~0/g, "~");
}
