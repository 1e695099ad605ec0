// The browser's request validation, for the generated `src/services/validate.ts` of every app:
// a checker of the JSON Schema definitions the generator emits, with the server's semantics, so
// that a form shows exactly the errors the server's 422 (or, for a patch's merged result, 409)
// would carry: the same JSON pointers, messages and order.
//
// Formats are those `runtime/src/format.rs` defines (`date`, `date-time`, `time`, `email` as
// browsers define it, `hostname`, `ipv4`, `uri`, `uuid`, `decimal`; other formats are the
// server's to judge), patterns are Unicode regular expressions, lengths count code points, exact
// decimals are compared as text, and a union's error comes from the alternative the value aimed
// at. Nothing is compiled at run time (no `eval`, no `new Function`), so a strict
// content-security policy holds.

/** One invalid member: the shape of an entry of a problem's `errors`. */
export interface ValidationError {
  pointer: string;
  detail: string;
  keyword: string;
}

/** A JSON Schema, as the generator publishes it. */
export type Schema = boolean | { readonly [keyword: string]: unknown };

/** The most errors a problem lists, as on the server. */
export const MAX_ERRORS = 100;

// One failed keyword, before it is explained: what jsonschema reports on the server.
interface Failure {
  at: string;
  keyword: string;
  detail: string;
  missing?: string;
  unexpected?: string[];
  branches?: Failure[][];
}

type Json = null | boolean | number | string | Json[] | { [member: string]: Json };

const isObject = (value: unknown): value is Record<string, Json> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** `~` and `/` escaped, as in a JSON pointer. */
export const escape = (segment: string): string => segment.replace(/~/g, "~0").replace(/\//g, "~1");

const bytes = (text: string): number => new TextEncoder().encode(text).length;

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && equal(a[k], b[k]));
  }
  return false;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "object":
      return isObject(value);
    default:
      return typeOf(value) === type;
  }
}

// ---- Formats: the definitions of runtime/src/format.rs, check for check.

function isDate(text: string): boolean {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(text);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const last = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return last !== undefined && day >= 1 && day <= last;
}

function isTime(text: string): boolean {
  const m = /^([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(.*)$/s.exec(text);
  if (!m) return false;
  const [hour, minute, second] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (hour > 23 || minute > 59 || second > 60) return false;
  const zone = m[5] ?? "";
  let utc: number;
  if (zone === "Z" || zone === "z") {
    utc = hour * 60 + minute;
  } else {
    const o = /^([+-])([0-9]{2}):([0-9]{2})$/.exec(zone);
    if (!o) return false;
    const [oh, om] = [Number(o[2]), Number(o[3])];
    if (oh > 23 || om > 59) return false;
    const local = hour * 60 + minute;
    const shifted = o[1] === "+" ? local - (oh * 60 + om) : local + (oh * 60 + om);
    utc = ((shifted % 1440) + 1440) % 1440;
  }
  return second !== 60 || utc === 23 * 60 + 59;
}

function isDateTime(text: string): boolean {
  const at = text.search(/[Tt]/);
  return at >= 0 && isDate(text.slice(0, at)) && isTime(text.slice(at + 1));
}

function isHostname(text: string): boolean {
  return (
    text.length <= 253 &&
    text.split(".").every((label) => label.length >= 1 && label.length <= 63 && /^[A-Za-z0-9-]+$/.test(label) && !label.startsWith("-") && !label.endsWith("-"))
  );
}

function isIpv4(text: string): boolean {
  const octets = text.split(".");
  return octets.length === 4 && octets.every((o) => /^(0|[1-9][0-9]{0,2})$/.test(o) && Number(o) <= 255);
}

function isDecimal(text: string): boolean {
  return /^-?[0-9]+(\.[0-9]+)?$/.test(text);
}

const FORMATS: Readonly<Record<string, (text: string) => boolean>> = {
  date: isDate,
  "date-time": isDateTime,
  time: isTime,
  email: (text) =>
    /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(text),
  hostname: isHostname,
  ipv4: isIpv4,
  uri: (text) => /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/.test(text),
  uuid: (text) => /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text),
  decimal: isDecimal,
};

/** Whether `text` is a `format` that both ends pin; `undefined` for the server's own formats. */
export function checkFormat(format: string, text: string): boolean | undefined {
  const check = FORMATS[format];
  return check ? check(text) : undefined;
}

// ---- Exact decimals (`x-decimal`): precision, scale and bounds, compared as text.

interface Decimal {
  negative: boolean;
  whole: string; // no leading zeros
  fraction: string; // no trailing zeros
}

// Parsed as the server's decimals parse text: a sign, digits with `_` separators, a point.
function decimal(text: string): Decimal | undefined {
  const m = /^([+-]?)([0-9][0-9_]*)?(?:\.([0-9_]*))?$/.exec(text);
  if (!m || !/[0-9]/.test(text)) return undefined;
  const whole = (m[2] ?? "").replace(/_/g, "").replace(/^0+/, "");
  const fraction = (m[3] ?? "").replace(/_/g, "").replace(/0+$/, "");
  return { negative: m[1] === "-" && (whole !== "" || fraction !== ""), whole, fraction };
}

function compare(a: Decimal, b: Decimal): number {
  if (a.negative !== b.negative) return a.negative ? -1 : 1;
  const sign = a.negative ? -1 : 1;
  if (a.whole.length !== b.whole.length) return sign * (a.whole.length - b.whole.length);
  if (a.whole !== b.whole) return sign * (a.whole < b.whole ? -1 : 1);
  const width = Math.max(a.fraction.length, b.fraction.length);
  const [fa, fb] = [a.fraction.padEnd(width, "0"), b.fraction.padEnd(width, "0")];
  return fa === fb ? 0 : sign * (fa < fb ? -1 : 1);
}

const BOUNDS: readonly [string, string, (order: number) => boolean][] = [
  ["minimum", "at least", (order) => order < 0],
  ["maximum", "at most", (order) => order > 0],
  ["exclusiveMinimum", "more than", (order) => order <= 0],
  ["exclusiveMaximum", "less than", (order) => order >= 0],
];

function decimalProblem(limits: Record<string, unknown>, instance: unknown): string | undefined {
  if (typeof instance !== "string" && typeof instance !== "number") return undefined;
  const value = decimal(String(instance));
  // The server's exact decimals hold a 96-bit integer part (digits past it in the fraction round).
  if (!value || BigInt(value.whole || "0") > 79228162514264337593543950335n) {
    return "has more digits than an exact decimal holds (28 significant digits)";
  }
  const scale = typeof limits.scale === "number" ? limits.scale : undefined;
  const precision = typeof limits.precision === "number" ? limits.precision : undefined;
  if (scale !== undefined) {
    if (value.fraction.length > scale) return `has more than ${scale} digits after the decimal point`;
    if (precision !== undefined && value.whole.length > Math.max(precision - scale, 0)) {
      return `has more than ${precision - scale} digits before the decimal point`;
    }
  }
  for (const [key, words, broken] of BOUNDS) {
    const bound = limits[key];
    if (typeof bound !== "number") continue;
    const limit = decimal(String(bound));
    if (limit && broken(compare(value, limit))) return `must be ${words} ${String(bound)}`;
  }
  return undefined;
}

// ---- The checker.

const json = (value: unknown): string => JSON.stringify(value);

function fail(out: Failure[], at: string, keyword: string, detail: string, extra: Partial<Failure> = {}): void {
  out.push({ at, keyword, detail, ...extra });
}

/** An app's definitions, by name (the `$defs` of its `schemas.json`). */
export type Definitions = Readonly<Record<string, Schema>>;

function resolve(defs: Definitions, ref: string): Schema {
  const name = ref.startsWith("#/$defs/") ? ref.slice("#/$defs/".length) : undefined;
  const schema = name === undefined ? undefined : defs[name];
  if (schema === undefined) throw new Error(`the reference \`${ref}\` is not a definition of this app`);
  return schema;
}

function failures(defs: Definitions, schema: Schema, value: unknown, at: string): Failure[] {
  const out: Failure[] = [];
  walk(defs, schema, value, at, out);
  return out;
}

function walk(defs: Definitions, schema: Schema, value: unknown, at: string, out: Failure[]): void {
  if (schema === true) return;
  if (schema === false) return fail(out, at, "falseSchema", "is not allowed");
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === "string") walk(defs, resolve(defs, s.$ref), value, at, out);
  if (Array.isArray(s.allOf)) for (const branch of s.allOf as Schema[]) walk(defs, branch, value, at, out);
  if (Array.isArray(s.anyOf)) {
    const branches = (s.anyOf as Schema[]).map((branch) => failures(defs, branch, value, at));
    if (!branches.some((b) => b.length === 0)) fail(out, at, "anyOf", "matches none of the allowed shapes", { branches });
  }
  if (Array.isArray(s.oneOf)) {
    const branches = (s.oneOf as Schema[]).map((branch) => failures(defs, branch, value, at));
    const valid = branches.filter((b) => b.length === 0).length;
    if (valid === 0) fail(out, at, "oneOf", "matches none of the allowed shapes", { branches });
    if (valid > 1) fail(out, at, "oneOf", "matches more than one of the allowed shapes");
  }
  if (s.type !== undefined) {
    const types = (Array.isArray(s.type) ? s.type : [s.type]) as string[];
    if (!types.some((type) => hasType(value, type))) {
      fail(out, at, "type", `must be of type ${[...types].sort().join(" or ")}`);
    }
  }
  if (Array.isArray(s.enum) && !s.enum.some((option) => equal(option, value))) {
    fail(out, at, "enum", `must be one of ${s.enum.map(json).join(", ")}`);
  }
  if ("const" in s && !equal(s.const, value)) fail(out, at, "const", `must be ${json(s.const)}`);
  if (typeof value === "string") strings(s, value, at, out);
  if (typeof value === "number") numbers(s, value, at, out);
  if (Array.isArray(value)) arrays(defs, s, value, at, out);
  if (isObject(value)) objects(defs, s, value, at, out);
  if (isObject(s["x-decimal"])) {
    const problem = decimalProblem(s["x-decimal"], value);
    if (problem !== undefined) fail(out, at, "x-decimal", problem);
  }
}

function strings(s: Record<string, unknown>, value: string, at: string, out: Failure[]): void {
  const length = [...value].length;
  if (typeof s.minLength === "number" && length < s.minLength) {
    fail(out, at, "minLength", `must be at least ${s.minLength} characters long`);
  }
  if (typeof s.maxLength === "number" && length > s.maxLength) {
    fail(out, at, "maxLength", `must be at most ${s.maxLength} characters long`);
  }
  if (typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(value)) {
    fail(out, at, "pattern", "does not have the expected form");
  }
  if (typeof s.format === "string" && checkFormat(s.format, value) === false) {
    fail(out, at, "format", `is not a valid ${s.format}`);
  }
}

function numbers(s: Record<string, unknown>, value: number, at: string, out: Failure[]): void {
  const bound = (key: string, words: string, broken: (limit: number) => boolean): void => {
    const limit = s[key];
    if (typeof limit === "number" && broken(limit)) fail(out, at, key, `must be ${words} ${limit}`);
  };
  bound("minimum", "at least", (limit) => value < limit);
  bound("maximum", "at most", (limit) => value > limit);
  bound("exclusiveMinimum", "more than", (limit) => value <= limit);
  bound("exclusiveMaximum", "less than", (limit) => value >= limit);
  if (typeof s.multipleOf === "number" && !Number.isInteger(value / s.multipleOf)) {
    fail(out, at, "multipleOf", `must be a multiple of ${s.multipleOf}`);
  }
}

function arrays(defs: Definitions, s: Record<string, unknown>, value: unknown[], at: string, out: Failure[]): void {
  if (s.items !== undefined) value.forEach((item, i) => walk(defs, s.items as Schema, item, `${at}/${i}`, out));
  if (typeof s.minItems === "number" && value.length < s.minItems) fail(out, at, "minItems", `must have at least ${s.minItems} items`);
  if (typeof s.maxItems === "number" && value.length > s.maxItems) fail(out, at, "maxItems", `must have at most ${s.maxItems} items`);
  if (s.uniqueItems === true && value.some((item, i) => value.slice(i + 1).some((other) => equal(item, other)))) {
    fail(out, at, "uniqueItems", "must not hold the same item twice");
  }
}

function objects(defs: Definitions, s: Record<string, unknown>, value: Record<string, Json>, at: string, out: Failure[]): void {
  const properties = (isObject(s.properties) ? s.properties : {}) as Record<string, Schema>;
  if (Array.isArray(s.required)) {
    for (const name of s.required as string[]) if (!(name in value)) fail(out, at, "required", "is required", { missing: name });
  }
  const keys = Object.keys(value);
  for (const name of keys) if (name in properties) walk(defs, properties[name] as Schema, value[name], `${at}/${escape(name)}`, out);
  const extra = keys.filter((name) => !(name in properties));
  if (s.additionalProperties === false && extra.length > 0) {
    fail(out, at, "additionalProperties", "", { unexpected: extra });
  } else if (isObject(s.additionalProperties)) {
    for (const name of extra) walk(defs, s.additionalProperties as Schema, value[name], `${at}/${escape(name)}`, out);
  }
  if (typeof s.minProperties === "number" && keys.length < s.minProperties) fail(out, at, "minProperties", `must have at least ${s.minProperties} members`);
  if (typeof s.maxProperties === "number" && keys.length > s.maxProperties) fail(out, at, "maxProperties", `must have at most ${s.maxProperties} members`);
}

// Turns one failure into field errors as the server does: a union's error is explained by the
// alternative whose errors lie deepest (the one the client aimed at), when exactly one does.
function explain(failure: Failure, readOnly: readonly string[], out: ValidationError[]): void {
  const { at, keyword } = failure;
  if (failure.missing !== undefined) {
    out.push({ pointer: `${at}/${escape(failure.missing)}`, detail: "is required", keyword });
  } else if (failure.unexpected !== undefined) {
    for (const name of failure.unexpected) {
      const detail = at === "" && readOnly.includes(name) ? "is read-only: the server sets it" : "is not a member of this schema";
      out.push({ pointer: `${at}/${escape(name)}`, detail, keyword });
    }
  } else if (failure.branches !== undefined) {
    const depth = (branch: Failure[]): number => (branch.length === 0 ? 0 : Math.min(...branch.map((f) => bytes(f.at))));
    const deeper = failure.branches.filter((branch) => branch.length > 0 && depth(branch) > bytes(at));
    const best = deeper.reduce<Failure[] | undefined>((found, branch) => (found === undefined || depth(branch) >= depth(found) ? branch : found), undefined);
    if (best !== undefined && failure.branches.filter((branch) => depth(branch) === depth(best)).length === 1) {
      for (const inner of best) explain(inner, readOnly, out);
    } else {
      out.push({ pointer: at, detail: failure.detail, keyword });
    }
  } else {
    out.push({ pointer: at, detail: failure.detail, keyword });
  }
}

const byPointer = (a: ValidationError, b: ValidationError): number =>
  a.pointer === b.pointer ? (a.detail < b.detail ? -1 : a.detail > b.detail ? 1 : 0) : a.pointer < b.pointer ? -1 : 1;

/** The pointer of the first string or member name holding a NUL, which the server refuses first. */
function nulAt(value: unknown, at: string): string | undefined {
  if (typeof value === "string") return value.includes("\u0000") ? at : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = nulAt(item, `${at}/${i}`);
      if (found !== undefined) return found;
    }
  } else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      const here = `${at}/${escape(key)}`;
      const found = key.includes("\u0000") ? here : nulAt(item, here);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Checks a body against its definition's rules: the app's generated `check` of `rules.ts`. */
export type RuleCheck<R> = (rules: readonly R[], body: unknown) => ValidationError[];

/**
 * The validator of an app's definitions: `validate(name, instance, readOnly)` gives the errors of
 * `instance` under the definition `name`: the schema's, sorted by pointer; or, when the schema
 * holds, the broken rules'. `[]` when the server would accept it. `readOnly` names the members
 * only the server sets.
 */
export function createValidator<R>(defs: Definitions, checkRules: RuleCheck<R>) {
  return function validate(name: string, instance: unknown, readOnly: readonly string[] = []): ValidationError[] {
    const schema = defs[name];
    if (schema === undefined) throw new Error(`\`${name}\` is not a definition of this app`);
    // No text column stores a NUL: the server refuses it before any schema.
    const nul = nulAt(instance, "");
    if (nul !== undefined) return [{ pointer: nul, detail: "may not contain the NUL character (U+0000)", keyword: "pattern" }];
    const errors: ValidationError[] = [];
    for (const failure of failures(defs, schema, instance, "")) explain(failure, readOnly, errors);
    errors.sort(byPointer);
    const unique = errors.filter((e, i) => i === 0 || byPointer(e, errors[i - 1] as ValidationError) !== 0 || e.keyword !== errors[i - 1]?.keyword);
    if (unique.length > 0) return unique.slice(0, MAX_ERRORS);
    const rules = isObject(schema) ? ((schema as Record<string, unknown>)["x-prefiq-rules"] as R[] | undefined) : undefined;
    return rules ? checkRules(rules, instance).slice(0, MAX_ERRORS) : [];
  };
}
