// The pages of showcase: a home page, a list and a detail/edit page per entity, under hash
// routes (`#/companies`, `#/companies/<id>`). Written once by `prefiq codegen`; yours to change.
import { useEffect, useState } from "react";

import { Account, EntityDetail, EntityForm, EntityTable, NotificationBell, ToastProvider, useToast, writable } from "@prefiq/frontend";
import type { EntitySpec, SessionOptions, SessionState } from "@prefiq/frontend";
import { configure } from "../services/client.js";
import { ENTITIES } from "../components/generated.js";

function useHash(): string {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const changed = () => setHash(window.location.hash);
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return hash;
}

export function App({ session }: { session: SessionState }) {
  const [, path = "", id] = useHash().split("/");
  const spec = ENTITIES.find((e) => e.path === path);
  return (
    <ToastProvider>
      <header className="app-header">
        <nav aria-label="Main">
          <a href="#/">Showcase</a>
          {ENTITIES.map((e) => (
            <a key={e.path} href={`#/${e.path}`} aria-current={e === spec ? "page" : undefined}>
              {e.plural}
            </a>
          ))}
          <NotificationBell />
        </nav>
      </header>
      <main className="app-main">
        {spec === undefined ? <Home session={session} /> : id ? <RowPage spec={spec} id={decodeURIComponent(id)} /> : <ListPage spec={spec} />}
      </main>
    </ToastProvider>
  );
}

/** How the page signs in: under Cortex, through its sign-in page (OAuth with PKCE). */
export const SESSION: SessionOptions = { clientId: "ui-showcase", onToken: (token) => configure({ token }) };

function Home({ session }: { session: SessionState }) {
  return (
    <>
      <h1>Showcase</h1>
      <ul>
        {ENTITIES.map((e) => (
          <li key={e.path}>
            <a href={`#/${e.path}`}>{e.plural}</a>
          </li>
        ))}
      </ul>
      <Account session={session} options={SESSION} />
    </>
  );
}

function ListPage({ spec }: { spec: EntitySpec<object> }) {
  const toast = useToast();
  return (
    <>
      <h1>{spec.plural}</h1>
      <EntityTable spec={spec} />
      {writable(spec) && (
        <>
          <h2>New {spec.name.toLowerCase()}</h2>
          <EntityForm spec={spec} onSaved={(row) => toast(`${spec.name} “${spec.title(row)}” created`)} />
        </>
      )}
    </>
  );
}

function RowPage({ spec, id }: { spec: EntitySpec<object>; id: string }) {
  const toast = useToast();
  const row = spec.useRow(id);
  if (row.isPending) return <p>Loading…</p>;
  if (row.data === undefined) {
    return (
      <p role="alert" className="pq-banner pq-banner-danger">
        This {spec.name.toLowerCase()} could not be read.
      </p>
    );
  }
  return (
    <>
      <h1>{spec.title(row.data)}</h1>
      <EntityDetail spec={spec} row={row.data} />
      {writable(spec) && (
        <>
          <h2>Edit</h2>
          {/* A new version (saved here, or reloaded after a 412) starts the form afresh. */}
          <EntityForm key={spec.etag?.(row.data) ?? ""} spec={spec} row={row.data} onSaved={() => toast("Saved")} onReload={() => row.refetch()} />
        </>
      )}
    </>
  );
}
