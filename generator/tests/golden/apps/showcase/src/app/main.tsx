// The browser entry of showcase: the API client, the session, the query cache and the pages.
// Written once by `prefiq codegen`; yours to change.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { pastedToken, startSession } from "@prefiq/frontend";
import { configure } from "../services/client.js";
import { App, SESSION } from "./App.js";
import "../styles/app.css";

// The API is served from the same origin (`vite` proxies /api in development). Under Cortex the
// user signs in there; against an app server alone, a token pasted on the home page is used.
configure({ baseUrl: "", token: pastedToken() });

const client = new QueryClient({ defaultOptions: { queries: { staleTime: 10_000, retry: 1 } } });
const root = document.getElementById("root");
if (root) {
  void startSession(SESSION).then((state) =>
    createRoot(root).render(
      <StrictMode>
        <QueryClientProvider client={client}>
          <App session={state} />
        </QueryClientProvider>
      </StrictMode>,
    ),
  );
}
