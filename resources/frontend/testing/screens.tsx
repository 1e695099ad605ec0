// The checks every app's screens pass, in a simulated DOM (happy-dom) against a fake API, one
// block per entity: the table asks for a page and sorts through the query; the form labels every
// field, shows and refuses to send what the generated validators reject, and sends what they
// accept (entities the API writes). An app's scaffolded `src/tests/screens.spec.tsx` calls `testScreens`; the checks live
// here so that they improve for every app at once.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, within } from "@testing-library/react";
import { userEvent } from "@testing-library/user-event";
import type { ReactNode } from "react";
import { afterEach, describe, expect, test } from "vitest";

import { EntityForm, EntityTable, writable } from "../src/index.js";
import type { EntitySpec, FieldSpec } from "../src/index.js";

/** What an app's generated client takes to point it at an API (its `configure`). */
export type Configure = (config: { baseUrl?: string; token?: string; fetch?: typeof fetch }) => void;

/** Points the client at a fake API that records every request and finds no rows. */
function fakeApi(configure: Configure): Request[] {
  const requests: Request[] = [];
  configure({
    baseUrl: "http://api.test",
    token: "test-token",
    fetch: async (input, init) => {
      const request = new Request(input, init);
      requests.push(request);
      if (request.method === "GET") return Response.json({ items: [], next_cursor: null });
      return Response.json({ title: "Not found", status: 404 }, { status: 404, headers: { "content-type": "application/problem+json" } });
    },
  });
  return requests;
}

function show(ui: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(<QueryClientProvider client={client}>{ui}</QueryClientProvider>);
}

const exactly = (label: string) => new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}( \\*)?$`);
const plain = (f: FieldSpec) => f.writable && f.kind !== "object" && f.kind !== "union" && f.kind !== "list";
/** The control of a top-level field (a group's members may share its label). */
const controlOf = (form: HTMLElement, f: FieldSpec) => {
  const controls = within(form)
    .getAllByLabelText(exactly(f.label))
    .filter((control) => control.closest("fieldset") === null);
  expect(controls, `one control is labelled ${f.label}`).toHaveLength(1);
  return controls[0]!;
};
const lastQuery = (requests: Request[], spec: EntitySpec<object>) => {
  const lists = requests.filter((r) => r.method === "GET" && new URL(r.url).pathname.endsWith(`/${spec.path}`));
  expect(lists.length, "the table asked for a page").toBeGreaterThan(0);
  return new URL(lists[lists.length - 1]!.url).searchParams;
};

/**
 * One block of tests per entity of `entities` (an app's `ENTITIES`), with its client pointed at a
 * fake API through `configure`.
 */
export function testScreens(entities: readonly EntitySpec<object>[], configure: Configure): void {
  afterEach(cleanup);
  describe.each(entities.map((spec) => [spec.name, spec] as const))("%s", (_, spec) => {
    test("the table asks for a page, says it is empty, and sorts by its sortable columns", async () => {
      const requests = fakeApi(configure);
      show(<EntityTable spec={spec} />);
      expect(await screen.findByText(`No ${spec.plural.toLowerCase()}.`)).toBeTruthy();
      expect(lastQuery(requests, spec).get("limit")).toBe("20");
      const column = spec.fields.find((f) => f.column && f.sortable);
      if (column === undefined) return;
      const header = screen.getByRole("columnheader", { name: exactly(column.label) });
      await userEvent.click(within(header).getByRole("button"));
      expect(header.getAttribute("aria-sort")).toBe("ascending");
      await userEvent.click(within(header).getByRole("button"));
      expect(header.getAttribute("aria-sort")).toBe("descending");
      await screen.findByText(`No ${spec.plural.toLowerCase()}.`);
      expect(lastQuery(requests, spec).get("sort")).toBe(`-${column.name}`);
    });

    // A read-only entity (one the API only lists and reads) has no form.
    if (!writable(spec)) return;
    test("the form labels every field it sends and sends nothing its validators reject", async () => {
      const requests = fakeApi(configure);
      show(<EntityForm spec={spec} />);
      const form = screen.getByRole("form", { name: `New ${spec.name}` });
      for (const f of spec.fields.filter(plain)) {
        expect(controlOf(form, f).getAttribute("name")).toBe(f.name);
      }
      await userEvent.click(within(form).getByRole("button", { name: `Create ${spec.name.toLowerCase()}` }));
      const rejected = spec.validateCreate({});
      if (rejected.length > 0) {
        // Each refusal is shown, and the control it blames says so to a screen reader.
        expect(within(form).getAllByRole("alert").length).toBeGreaterThan(0);
        for (const error of rejected.filter((e) => e.pointer.split("/").length === 2)) {
          const f = spec.fields.find((f) => `/${f.name}` === error.pointer);
          if (f === undefined || !plain(f)) continue;
          const control = controlOf(form, f);
          expect(control.getAttribute("aria-invalid"), `${f.name} is marked invalid`).toBe("true");
          const described = (control.getAttribute("aria-describedby") ?? "").split(" ").map((id) => document.getElementById(id)?.textContent);
          expect(described, `${f.name}'s error is its description`).toContain(error.detail);
        }
        expect(requests.filter((r) => r.method === "POST")).toHaveLength(0);
      } else {
        expect(requests.filter((r) => r.method === "POST")).toHaveLength(1);
      }
    });
  });
}
