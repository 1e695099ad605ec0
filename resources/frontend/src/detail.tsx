// Every field of one row, as a description list.
import { toDraft } from "./convert.js";
import { ReferenceValue } from "./reference.js";
import type { EntitySpec, FieldSpec } from "./spec.js";

const show = (f: FieldSpec, text: string) => (text === "" ? "—" : f.kind === "reference" ? <ReferenceValue spec={f} id={text} /> : text);

export function EntityDetail<Row extends object>({ spec, row }: { spec: EntitySpec<Row>; row: Row }) {
  const values = row as Record<string, unknown>;
  return (
    <dl className="pq-detail">
      {spec.fields.map((f) => (
        <div key={f.name}>
          <dt>{f.label}</dt>
          <dd>{show(f, String(toDraft(f, values[f.name])))}</dd>
        </div>
      ))}
    </dl>
  );
}
