// Vite for showcase: `vite` serves the pages and proxies /api to the app's server
// (PREFIQ_API, default http://127.0.0.1:8080); `vite build` writes a static bundle to dist/
// (or PREFIQ_OUT_DIR) that any server can host; `vitest run` runs the unit tests of tests/*.spec.tsx
// in a simulated DOM. Written once by `prefiq codegen`; yours to change.
/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));
const api = process.env.PREFIQ_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: here,
  base: "./",
  build: {
    outDir: process.env.PREFIQ_OUT_DIR ?? "dist",
    emptyOutDir: true,
    rolldownOptions: {
      // React Server Components' "use client" means nothing in a client-only bundle.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
  // The shared components live in resources/frontend, outside this folder.
  server: { proxy: { "/api": api }, fs: { allow: [fileURLToPath(new URL("../../../", import.meta.url))] } },
  preview: { proxy: { "/api": api } },
  test: { environment: "happy-dom", include: ["tests/**/*.spec.tsx"] },
});
