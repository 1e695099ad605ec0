// Every field of one row, as a description list.
import { toDraft } from "./convert.js";
import type { EntitySpec } from "./spec.js";

export function EntityDetail<Row extends object>({ spec, row }: { spec: EntitySpec<Row>; row: Row }) {
  const values = row as Record<string, unknown>;
  return (
    <dl className="pq-detail">
      {spec.fields.map((f) => (
        <div key={f.name}>
          <dt>{f.label}</dt>
          <dd>{String(toDraft(f, values[f.name])) || "—"}</dd>
        </div>
      ))}
    </dl>
  );
}
