// One field: its label, its control and its error, wired for screen readers (the error is the
// control's `aria-describedby`, and marks it `aria-invalid`).
import { useId } from "react";
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

function Choice({ spec, value, onChange, ...rest }: ChoiceProps) {
  const options = spec.kind === "reference" && spec.useOptions ? spec.useOptions() : (spec.options ?? []).map((v) => ({ value: v, label: v }));
  return (
    <select {...rest} value={value} onChange={(e) => onChange(e.target.value)}>
      <option value="">{spec.required ? "Choose…" : "None"}</option>
      {options.map((o) => (
        <option key={o.value} value={o.value}>
          {o.label}
        </option>
      ))}
    </select>
  );
}
