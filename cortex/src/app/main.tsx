// The browser entry of cortex: the API client, the query cache and the pages. Written once by
// `prefiq codegen`; yours to change.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { configure } from "../services/client.js";
import { App } from "./App.js";
import "../styles/app.css";

// The API is served from the same origin (`vite` proxies /api in development); the token is the
// one pasted on the home page.
configure({ baseUrl: "", token: localStorage.getItem("prefiq.token") ?? undefined });

const client = new QueryClient({ defaultOptions: { queries: { staleTime: 10_000, retry: 1 } } });
const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={client}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  );
}
