// One field: its label, its control and its error, wired for screen readers (the error is the
// control's `aria-describedby`, and marks it `aria-invalid`).
import { useEffect, useId, useState } from "react";
import type { ReactNode } from "react";

import type { FieldSpec } from "./spec.js";

/** What a form holds for a field: text for most controls, a flag for a checkbox. */
export type Draft = string | boolean;

interface FieldProps {
  spec: FieldSpec;
  value: Draft;
  error?: string | undefined;
  onChange: (value: Draft) => void;
  onBlur: () => void;
}

/** A labelled control with its error text. */
export function Field({ spec, value, error, onChange, onBlur }: FieldProps) {
  const id = useId();
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const described = [spec.description ? hintId : "", error ? errorId : ""].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    name: spec.name,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": described,
    onBlur,
  } as const;
  let control: ReactNode;
  if (spec.kind === "boolean") {
    control = <input {...common} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />;
  } else if (spec.kind === "enum" || (spec.kind === "reference" && spec.useOptions)) {
    control = <Choice {...common} spec={spec} value={String(value)} onChange={onChange} />;
  } else if (spec.kind === "json") {
    control = <textarea {...common} rows={4} value={String(value)} onChange={(e) => onChange(e.target.value)} />;
  } else {
    control = (
      <input
        {...common}
        type={INPUT_TYPES[spec.kind] ?? "text"}
        inputMode={spec.kind === "decimal" ? "decimal" : undefined}
        step={spec.kind === "number" ? "any" : undefined}
        maxLength={spec.maxLength}
        required={spec.required}
        value={String(value)}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  }
  return (
    <div className={`pq-field${spec.kind === "boolean" ? " pq-field-check" : ""}`}>
      <label htmlFor={id}>
        {spec.label}
        {spec.required ? <span aria-hidden="true"> *</span> : null}
      </label>
      {control}
      {spec.description ? (
        <p id={hintId} className="pq-hint">
          {spec.description}
        </p>
      ) : null}
      {error ? (
        <p id={errorId} className="pq-error" role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

const INPUT_TYPES: Partial<Record<FieldSpec["kind"], string>> = {
  email: "email",
  url: "url",
  date: "date",
  datetime: "datetime-local",
  integer: "number",
  number: "number",
};

interface ChoiceProps {
  id: string;
  name: string;
  spec: FieldSpec;
  value: string;
  onChange: (value: Draft) => void;
  onBlur: () => void;
}

/** A select of an enum's values, or of the rows a reference may point at (with a search box
 * when there may be more than the first 100). */
function Choice({ spec, value, onChange, ...rest }: ChoiceProps) {
  const [search, setSearch] = useState("");
  const query = useSettled(search);
  const found = spec.kind === "reference" && spec.useOptions ? spec.useOptions(query) : (spec.options ?? []).map((v) => ({ value: v, label: v }));
  // The chosen row stays a choice while a search hides it.
  const options = value !== "" && !found.some((o) => o.value === value) ? [{ value, label: value }, ...found] : found;
  return (
    <>
      {spec.searchable ? (
        <input
          type="search"
          className="pq-find"
          aria-label={`Find ${spec.label.toLowerCase()}`}
          placeholder="Find…"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
      ) : null}
      <select {...rest} value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">{spec.required ? "Choose…" : "None"}</option>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </>
  );
}

/** `value` once it has stopped changing for `ms` (a search asks the server once typing pauses). */
function useSettled(value: string, ms = 250): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}
