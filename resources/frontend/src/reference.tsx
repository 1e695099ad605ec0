// A reference shown by the title of the row it points at (the id until that row is read, or when
// it cannot be), linking to that row's page.
import type { FieldSpec } from "./spec.js";

export function ReferenceValue({ spec, id }: { spec: FieldSpec; id: string }) {
  const href = spec.target ? `#/${spec.target}/${encodeURIComponent(id)}` : undefined;
  if (id === "" || !spec.useLabel) return href && id ? <a href={href}>{id}</a> : <>{id}</>;
  return <Titled useLabel={spec.useLabel} id={id} href={href} />;
}

function Titled({ useLabel, id, href }: { useLabel: (id: string) => string | undefined; id: string; href: string | undefined }) {
  const title = useLabel(id) ?? id;
  return href ? <a href={href}>{title}</a> : <>{title}</>;
}
