// EntityForm on its own, with a hand-made spec of an order: a list of line objects, tags and a
// nested object. Items are added and removed with their values moving up, a server error on an
// item lands on that item's field, and emptied lists go out as `[]` in a patch.
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import { userEvent } from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";

import { EntityForm } from "../src/index.js";
import type { FieldError, FieldSpec, WritableSpec } from "../src/index.js";

afterEach(cleanup);

interface Order {
  id: string;
  version: number;
  reference: string;
  tags?: string[];
  lines?: { sku: string; quantity: number }[];
}

const field = (name: string, label: string, kind: FieldSpec["kind"], more: Partial<FieldSpec> = {}): FieldSpec => ({
  name,
  label,
  kind,
  required: false,
  nullable: false,
  writable: true,
  sortable: false,
  filterable: false,
  column: true,
  ...more,
});

/** What the server would say of an order's lines: each needs a SKU and a positive quantity. */
function validate(body: unknown): FieldError[] {
  const lines = (body as Partial<Order>).lines ?? [];
  return lines.flatMap((line, i) => [
    ...(line.sku ? [] : [{ pointer: `/lines/${i}/sku`, detail: "is required", keyword: "required" }]),
    ...(typeof line.quantity === "number" && line.quantity > 0 ? [] : [{ pointer: `/lines/${i}/quantity`, detail: "must be at least 1" }]),
  ]);
}

function orderSpec(send: (variables: unknown) => Promise<Order>): WritableSpec<Order> {
  const mutation = { mutateAsync: send, isPending: false };
  return {
    name: "Order",
    plural: "Orders",
    path: "orders",
    fields: [
      field("reference", "Reference", "text", { required: true }),
      field("tags", "Tags", "tags"),
      field("lines", "Lines", "list", {
        column: false,
        fields: [field("sku", "SKU", "text", { required: true }), field("quantity", "Quantity", "integer", { required: true })],
      }),
    ],
    id: (row) => row.id,
    title: (row) => row.reference,
    etag: (row) => `"${row.version}"`,
    useList: () => ({ data: { items: [] }, error: null, isPending: false, refetch: () => undefined }),
    useRow: () => ({ data: undefined, error: null, isPending: true, refetch: () => undefined }),
    useCreate: () => mutation,
    useUpdate: () => mutation,
    useDelete: () => ({ mutateAsync: async () => undefined, isPending: false }),
    validateCreate: validate,
    validatePatch: validate,
  };
}

const item = (n: number) => screen.getByRole("group", { name: `Lines ${n}` });

test("items of a list are added, filled and removed, and the rest move up", async () => {
  const send = vi.fn(async (body: unknown): Promise<Order> => ({ ...(body as Omit<Order, "id" | "version">), id: "o-1", version: 1 }));
  render(<EntityForm spec={orderSpec(send)} />);
  await userEvent.type(screen.getByLabelText(/^Reference/), "PO-7");
  for (const [sku, quantity] of [["A-1", "2"], ["B-2", "5"], ["C-3", "1"]] as const) {
    await userEvent.click(screen.getByRole("button", { name: "Add to lines" }));
    const n = screen.getAllByRole("group", { name: /^Lines \d+$/ }).length;
    await userEvent.type(within(item(n)).getByLabelText(/^SKU/), sku);
    await userEvent.type(within(item(n)).getByLabelText(/^Quantity/), quantity);
  }
  await userEvent.click(within(item(1)).getByRole("button", { name: "Remove lines 1" }));
  expect(screen.getAllByRole("group", { name: /^Lines \d+$/ })).toHaveLength(2);
  expect((within(item(1)).getByLabelText(/^SKU/) as HTMLInputElement).value).toBe("B-2");
  await userEvent.click(screen.getByRole("button", { name: "Create order" }));
  await waitFor(() => expect(send).toHaveBeenCalledOnce());
  expect(send.mock.calls[0]?.[0]).toEqual({
    reference: "PO-7",
    lines: [
      { sku: "B-2", quantity: 5 },
      { sku: "C-3", quantity: 1 },
    ],
  });
});

test("an item's errors show on that item's fields, before sending and from the server", async () => {
  const send = vi.fn(async () => {
    throw Object.assign(new Error("Unprocessable Content"), {
      status: 422,
      body: { errors: [{ pointer: "/lines/1/sku", detail: "is not in the catalogue" }] },
    });
  });
  render(<EntityForm spec={orderSpec(send)} />);
  await userEvent.type(screen.getByLabelText(/^Reference/), "PO-8");
  await userEvent.click(screen.getByRole("button", { name: "Add to lines" }));
  await userEvent.type(within(item(1)).getByLabelText(/^Quantity/), "0");
  await userEvent.click(screen.getByRole("button", { name: "Create order" }));
  expect(within(item(1)).getByLabelText(/^SKU/).getAttribute("aria-invalid")).toBe("true");
  expect(within(item(1)).getByText("must be at least 1")).toBeTruthy();
  expect(send).not.toHaveBeenCalled();

  await userEvent.type(within(item(1)).getByLabelText(/^SKU/), "A-1");
  await userEvent.clear(within(item(1)).getByLabelText(/^Quantity/));
  await userEvent.type(within(item(1)).getByLabelText(/^Quantity/), "3");
  await userEvent.click(screen.getByRole("button", { name: "Add to lines" }));
  await userEvent.type(within(item(2)).getByLabelText(/^SKU/), "Z-9");
  await userEvent.type(within(item(2)).getByLabelText(/^Quantity/), "1");
  await userEvent.click(screen.getByRole("button", { name: "Create order" }));
  await waitFor(() => expect(within(item(2)).getByText("is not in the catalogue")).toBeTruthy());
  expect(within(item(1)).queryByRole("alert")).toBeNull();
});

test("emptying a list or the tags of a row sends them as empty arrays", async () => {
  const row: Order = { id: "o-2", version: 4, reference: "PO-9", tags: ["rush"], lines: [{ sku: "A-1", quantity: 2 }] };
  const send = vi.fn(async (variables: unknown) => ({ ...row, version: 5, ...(variables as { patch: Partial<Order> }).patch }));
  render(<EntityForm spec={orderSpec(send)} row={row} />);
  expect((within(item(1)).getByLabelText(/^SKU/) as HTMLInputElement).value).toBe("A-1");
  await userEvent.click(within(item(1)).getByRole("button", { name: "Remove lines 1" }));
  await userEvent.clear(screen.getByLabelText(/^Tags/));
  await userEvent.click(screen.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(send).toHaveBeenCalledOnce());
  expect(send.mock.calls[0]?.[0]).toMatchObject({ id: "o-2", ifMatch: '"4"', patch: { tags: [], lines: [] } });
});
