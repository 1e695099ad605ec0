// EntityTable on its own: sorting goes through the query, and the table of another entity (a
// page that changes entity, with the same component in place) starts without the old sort.
import { cleanup, render, screen, within } from "@testing-library/react";
import { userEvent } from "@testing-library/user-event";
import { afterEach, expect, test } from "vitest";

import { EntityTable } from "../src/index.js";
import type { EntitySpec, FieldSpec } from "../src/index.js";

afterEach(cleanup);

const column = (name: string, label: string): FieldSpec => ({
  name,
  label,
  kind: "text",
  required: false,
  nullable: false,
  writable: true,
  sortable: true,
  filterable: false,
  column: true,
});

/** A spec whose list records every query it is asked. */
function listing(path: string, queries: Record<string, string | number>[]): EntitySpec<{ id: string; name: string }> {
  const idle = { data: undefined, error: null, isPending: false, refetch: () => undefined };
  const mutation = { mutateAsync: async () => ({ id: "", name: "" }), isPending: false };
  return {
    name: path,
    plural: path,
    path,
    fields: [column("name", "Name")],
    id: (row) => row.id,
    title: (row) => row.name,
    useList: (query) => {
      queries.push(query);
      return { data: { items: [{ id: `${path}-1`, name: `${path} one` }] }, error: null, isPending: false, refetch: () => undefined };
    },
    useRow: () => idle,
    useCreate: () => mutation,
    useUpdate: () => mutation,
    useDelete: () => ({ mutateAsync: async () => undefined, isPending: false }),
    validateCreate: () => [],
    validatePatch: () => [],
  };
}

test("another entity's table starts without the sort of the last one", async () => {
  const queries: Record<string, string | number>[] = [];
  const { rerender } = render(<EntityTable spec={listing("parts", queries)} />);
  const header = screen.getByRole("columnheader", { name: /^Name/ });
  await userEvent.click(within(header).getByRole("button"));
  expect(queries.at(-1)).toEqual({ limit: 20, sort: "name" });
  expect(screen.getByRole("link", { name: "parts one" }).getAttribute("href")).toBe("#/parts/parts-1");

  rerender(<EntityTable spec={listing("tools", queries)} />);
  expect(queries.at(-1)).toEqual({ limit: 20 });
  expect(screen.getByRole("columnheader", { name: /^Name/ }).getAttribute("aria-sort")).toBeNull();
});
