// What the generated screens of an entity tell these components: its fields, described from the
// schema, and the hooks and validators generated for it.

/** How a field is entered and shown. */
export type FieldKind =
  | "text"
  | "email"
  | "url"
  | "date"
  | "datetime"
  | "integer"
  | "number"
  | "decimal"
  | "boolean"
  | "enum"
  | "reference"
  | "tags"
  | "object"
  | "list"
  | "union"
  | "json";

/** A choice of a select. */
export interface Option {
  value: string;
  label: string;
}

/** One member of an entity, as its schema describes it. */
export interface FieldSpec {
  name: string;
  label: string;
  kind: FieldKind;
  /** Required on create. */
  required: boolean;
  /** May be cleared (sent as `null`). */
  nullable: boolean;
  /** Sent by clients; the rest the server sets. */
  writable: boolean;
  sortable: boolean;
  filterable: boolean;
  /** Shown as a table column. */
  column: boolean;
  description?: string;
  maxLength?: number;
  /** The values of an enum. */
  options?: readonly string[];
  /** The rows a reference may point at, the first 100 whose title contains `search` (a hook:
   * called while rendering). */
  useOptions?(search?: string): Option[];
  /** Its picker can find rows by title (beyond the first 100). */
  searchable?: boolean;
  /** The title of the row a reference points at, once read (a hook). */
  useLabel?(id: string): string | undefined;
  /** The collection a reference points into, as in `companies` (its rows link there). */
  target?: string;
  /** The members of an object, or of each item of a list of objects. */
  fields?: readonly FieldSpec[];
  /** A tagged union's tag member, and its alternatives (each with its members, tag excluded). */
  tag?: string;
  variants?: readonly { value: string; fields: readonly FieldSpec[] }[];
}

/** One invalid member, as the server and the generated validators report it. */
export interface FieldError {
  pointer: string;
  detail: string;
  keyword?: string;
}

/** The part of a query result these components read (TanStack Query's result fits). */
export interface QueryLike<T> {
  data: T | undefined;
  error: unknown;
  isPending: boolean;
  refetch(): unknown;
}

/** The part of a mutation these components use (TanStack Query's fits). */
export interface MutationLike<V, T> {
  mutateAsync(variables: V): Promise<T>;
  isPending: boolean;
}

/** A page of rows. */
export interface PageLike<Row> {
  items: Row[];
  next_cursor?: string | null;
}

/** Everything the screens of one entity need. */
export interface EntitySpec<Row extends object> {
  /** As in `Company`. */
  name: string;
  /** As in `Companies`. */
  plural: string;
  /** The URL segment of its collection, as in `companies`. */
  path: string;
  fields: readonly FieldSpec[];
  // Methods, not function members: a spec of `Company` rows is also a spec of `object` rows.
  id(row: Row): string;
  title(row: Row): string;
  etag?(row: Row): string;
  useList(query: Record<string, string | number>): QueryLike<PageLike<Row>>;
  useRow(id: string): QueryLike<Row>;
  // The writes, absent for a read-only entity (one the API only lists and reads).
  useCreate?(): MutationLike<never, Row>;
  useUpdate?(): MutationLike<{ id: string; patch: never; ifMatch?: string; before?: Row }, Row>;
  useDelete?(): MutationLike<{ id: string; ifMatch?: string; before?: Row }, void>;
  validateCreate?(body: unknown): FieldError[];
  validatePatch?(merged: unknown): FieldError[];
}

/** The spec of an entity the API writes: what `EntityForm` needs. (Method signatures, as in
 * `EntitySpec`, keep a spec of `Company` rows a spec of `object` rows.) */
export interface WritableSpec<Row extends object> extends EntitySpec<Row> {
  useCreate(): MutationLike<never, Row>;
  useUpdate(): MutationLike<{ id: string; patch: never; ifMatch?: string; before?: Row }, Row>;
  useDelete(): MutationLike<{ id: string; ifMatch?: string; before?: Row }, void>;
  validateCreate(body: unknown): FieldError[];
  validatePatch(merged: unknown): FieldError[];
}

/** Whether rows of `spec` may be created and edited (it is not read-only). */
export function writable<Row extends object>(spec: EntitySpec<Row>): spec is WritableSpec<Row> {
  return (
    spec.useCreate !== undefined &&
    spec.useUpdate !== undefined &&
    spec.useDelete !== undefined &&
    spec.validateCreate !== undefined &&
    spec.validatePatch !== undefined
  );
}
